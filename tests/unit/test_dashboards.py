"""The generated Grafana dashboards: the committed JSON is what the code generates, and every panel
queries the Prometheus the dashboard's datasource variable selects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pgstack_dashboards.cli import main, rendered

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO_ROOT / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
VARIABLE = re.compile(r"\$\{?(\w+)")


def boards() -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in rendered().items()}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_committed_json_is_what_the_code_generates() -> None:
    committed = {p.name: p.read_text() for p in DASHBOARDS.glob("*.json")}
    assert committed == rendered(), "dashboards/ is out of date: run make dashboards"


def test_generation_is_deterministic() -> None:
    assert rendered() == rendered()


def test_check_fails_on_a_stale_file_and_passes_once_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--output-dir", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--output-dir", str(tmp_path)]) == 0
    assert main(["--output-dir", str(tmp_path), "--check"]) == 0
    (tmp_path / "redis.json").write_text("{}\n")
    assert main(["--output-dir", str(tmp_path), "--check"]) == 1


def test_the_seven_dashboards_have_stable_unique_uids() -> None:
    uids = {name: board["uid"] for name, board in boards().items()}
    assert uids == {
        "overview.json": "pgstack-overview",
        "postgresql.json": "pgstack-postgresql",
        "pgbouncer.json": "pgstack-pgbouncer",
        "redis.json": "pgstack-redis",
        "backups.json": "pgstack-backups",
        "cluster.json": "pgstack-cluster",
        "hosts.json": "pgstack-hosts",
    }


def test_the_hosts_board_repeats_its_row_for_every_host() -> None:
    rows = [p for p in boards()["hosts.json"]["panels"] if p["type"] == "row"]
    assert [row.get("repeat") for row in rows] == ["instance"]


@pytest.mark.parametrize("name", sorted(rendered()))
def test_every_board_has_a_prometheus_datasource_variable_and_label_values_variables(
    name: str,
) -> None:
    variables = boards()[name]["templating"]["list"]
    assert variables[0]["name"] == "datasource"
    assert variables[0]["type"] == "datasource"
    assert variables[0]["query"] == "prometheus"
    others = variables[1:]
    assert others, "a board filters by at least one label"
    for variable in others:
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        assert variable["query"]["query"].startswith("label_values(")
        assert variable["includeAll"] is True
        assert variable["allValue"] == ".*"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_every_panel_has_a_title_a_description_and_queries_on_the_datasource_variable(
    name: str,
) -> None:
    board = boards()[name]
    variables = {v["name"] for v in board["templating"]["list"]}
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert panels(board)
    for panel in panels(board):
        where = f"{name}: {panel.get('title')!r}"
        assert panel["title"], where
        assert panel["description"], where
        assert panel["datasource"] == DATASOURCE, where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["expr"].strip(), where
            assert target["datasource"] == DATASOURCE, where
            for used in VARIABLE.findall(target["expr"]):
                assert used == "__rate_interval" or used in variables, f"{where}: ${used}"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_panels_fit_the_grid(name: str) -> None:
    for panel in boards()[name]["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("name", sorted(rendered()))
def test_docs_describe_every_panel(name: str) -> None:
    docs = (REPO_ROOT / "docs/dashboards.md").read_text()
    board = boards()[name]
    assert f"`dashboards/{name}`" in docs
    missing = [
        p["title"] for p in panels(board) if f"| {p['title']} | {p['description']} |" not in docs
    ]
    assert missing == [], f"docs/dashboards.md lacks panels of {name}"

"""Static checks over the alert rules and the dashboards: every metric they name is in the
exporter's catalogue; the rules' runbooks and rule tests."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO_ROOT / "alerts").glob("*.rules.yml"))
TEST_FILES = sorted((REPO_ROOT / "tests/alerts").glob("*.test.yml"))
DASHBOARD_FILES = sorted((REPO_ROOT / "dashboards").glob("*.json"))
# The exporter's catalogue; PGSTACK_METRICS_CATALOGUE points at another copy of it.
CATALOGUE = Path(os.environ.get("PGSTACK_METRICS_CATALOGUE", REPO_ROOT / "docs/metrics.md"))
METRIC = re.compile(r"\bpgstack_[a-z0-9_]+\b")
SEVERITIES = {"warning", "critical"}


def rules() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.extend(rule for rule in group["rules"] if "alert" in rule)
    return out


ALERTS = sorted({rule["alert"] for rule in rules()})


def cases() -> dict[str, set[bool]]:
    """For each alert name, whether tests expect it to fire (True) and to stay quiet (False)."""
    seen: dict[str, set[bool]] = {}
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test") or []:
                seen.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    return seen


def test_there_are_rules_and_tests() -> None:
    assert RULE_FILES
    assert TEST_FILES
    assert ALERTS


def catalogue() -> set[str]:
    """The metric names of docs/metrics.md's tables (the exporter's catalogue)."""
    if not CATALOGUE.is_file():
        pytest.skip(f"{CATALOGUE} does not exist (the exporter's metrics catalogue)")
    names = set(re.findall(r"^\| `(pgstack_[a-z0-9_]+)`", CATALOGUE.read_text(), re.MULTILINE))
    assert names, f"{CATALOGUE}: no metric table rows found"
    return names


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expr) for every query of dashboards/*.json: panel targets and variable queries."""
    out: list[tuple[str, str]] = []
    for path in DASHBOARD_FILES:
        board = json.loads(path.read_text())
        for variable in board["templating"]["list"]:
            query = variable.get("query")
            if isinstance(query, dict):
                out.append((f"{path.name}: variable {variable['name']}", query["query"]))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((f"{path.name}: {panel['title']}", target["expr"]))
    return out


def expressions() -> list[tuple[str, str]]:
    """Every PromQL expression of the repository: alert rules, then dashboard queries."""
    return [(f"alert {rule['alert']}", rule["expr"]) for rule in rules()] + dashboard_expressions()


def test_there_are_dashboard_expressions() -> None:
    assert DASHBOARD_FILES
    assert dashboard_expressions()


def test_every_metric_is_in_the_exporter_catalogue() -> None:
    """Alert rules and dashboards name only metrics the exporter emits."""
    known = catalogue()
    used = {(where, name) for where, expr in expressions() for name in METRIC.findall(expr)}
    unknown = sorted(f"{where}: {name}" for where, name in used if name not in known)
    assert unknown == []


@pytest.mark.parametrize("rule", rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_rule_has_for_severity_and_annotations(rule: dict[str, Any]) -> None:
    assert "for" in rule
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"]
    assert annotations["description"]
    assert annotations["runbook_url"] == f"docs/runbooks/{rule['alert']}.md"


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_has_its_runbook(alert: str) -> None:
    runbook = REPO_ROOT / "docs/runbooks" / f"{alert}.md"
    assert runbook.is_file()
    text = runbook.read_text()
    assert text.startswith(f"# {alert}\n")
    assert "## Confirm" in text
    assert "## Fix" in text


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_has_a_firing_and_a_quiet_test_case(alert: str) -> None:
    assert cases().get(alert, set()) == {True, False}


def test_every_rule_file_is_tested() -> None:
    tested = {
        (path.parent / name).resolve()
        for path in TEST_FILES
        for name in yaml.safe_load(path.read_text())["rule_files"]
    }
    assert [p.name for p in RULE_FILES if p.resolve() not in tested] == []

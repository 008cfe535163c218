"""Static checks over the alert rules: metrics in the exporter's catalogue, runbooks, rule tests."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO_ROOT / "alerts").glob("*.rules.yml"))
TEST_FILES = sorted((REPO_ROOT / "tests/alerts").glob("*.test.yml"))
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


def test_every_rule_metric_is_in_the_exporter_catalogue() -> None:
    if not CATALOGUE.is_file():
        pytest.skip(f"{CATALOGUE} does not exist (the exporter's metrics catalogue)")
    catalogue = set(re.findall(r"^\| `(pgstack_[a-z0-9_]+)`", CATALOGUE.read_text(), re.MULTILINE))
    assert catalogue, f"{CATALOGUE}: no metric table rows found"
    used = {(rule["alert"], name) for rule in rules() for name in METRIC.findall(rule["expr"])}
    unknown = sorted(f"{alert}: {name}" for alert, name in used if name not in catalogue)
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

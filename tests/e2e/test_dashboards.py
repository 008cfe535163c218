"""The Grafana dashboards and the alert rules against the lab's data: every panel query of
dashboards/*.json, run on mon1's Prometheus with every template variable at "all", returns at least
one series, and so does every series an alert rule of alerts/ reads. Queries
without a series are retried for up to a minute, since other e2e modules stop services and block
ports. The restore_drill role takes the first drills at converge, so the drill panels have data
on a fresh lab too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from dashboard_queries import DASHBOARDS, PanelQuery, panel_queries, without_series

pytestmark = [pytest.mark.e2e, pytest.mark.release]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_there_are_dashboards_with_queries() -> None:
    assert len(DASHBOARDS) >= 5
    assert all(q.expr for q in panel_queries())


def test_every_panel_query_returns_a_series() -> None:
    queries = [q for q in panel_queries() if not q.needs_a_drill]
    failing = without_series(queries)
    assert not failing, "panel queries without a series on the lab:\n" + "\n".join(
        f"{q.key}: {count}: {q.expr}" for q, count in failing.items()
    )


def test_drill_panels_return_series() -> None:
    queries = [q for q in panel_queries() if q.needs_a_drill]
    assert queries
    failing = without_series(queries)
    assert not failing, "drill panel queries without a series on the lab:\n" + "\n".join(
        f"{q.key}: {count}: {q.expr}" for q, count in failing.items()
    )


# A series an alert rule reads: a name the exporters or Prometheus itself export, not a function.
RULE_SERIES = re.compile(
    r"\b((?:pgstack|node|prometheus|alertmanager)_[a-zA-Z0-9_:]*|up)\b(?!\s*\()"
)
# Series the lab cannot have: no streaming replica or replication slot on the lab's one database
# host, and the node exporter's timex collector fails inside a systemd-nspawn machine (docs/lab.md).
ABSENT_ON_THE_LAB = {
    "pgstack_postgresql_replication_lag_seconds",
    "pgstack_postgresql_replication_slot_retained_bytes",
    "node_timex_offset_seconds",
    "node_timex_sync_status",
    # Redis Sentinel's: the lab has no sentinel; tests/e2e/test_ha.py reads them on the HA lab.
    "pgstack_sentinel_master_info",
    "pgstack_sentinel_master_odown",
    "pgstack_sentinel_replicas_up",
    "pgstack_sentinel_quorum_reachable",
    "pgstack_sentinel_quorum",
}


def rule_series() -> dict[str, set[str]]:
    """{series name: the alerts whose expressions read it} over alerts/*.rules.yml."""
    out: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / "alerts").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                for name in RULE_SERIES.findall(rule["expr"]):
                    out.setdefault(name, set()).add(rule["alert"])
    return out


def test_every_series_an_alert_rule_reads_exists() -> None:
    """An alert whose series the release's exporters do not export would never fire: each name
    an expression reads has series on mon1's Prometheus (the drills' once the first ran)."""
    names = rule_series()
    assert set(names) >= ABSENT_ON_THE_LAB, "an exception names a series no rule reads"
    queries = [
        PanelQuery("alert rules", ", ".join(sorted(alerts)), name, f'count({{__name__="{name}"}})')
        for name, alerts in sorted(names.items())
        if name not in ABSENT_ON_THE_LAB
    ]
    failing = without_series(queries)
    assert not failing, "series read by alert rules, absent on the lab:\n" + "\n".join(
        f"{q.ref_id} ({q.panel}): {count}" for q, count in failing.items()
    )

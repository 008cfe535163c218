"""The Grafana dashboards against the lab's data: every panel query of dashboards/*.json, run on
mon1's Prometheus with every template variable at "all", returns at least one series.

All queries go in one program run on mon1 (one ssh round trip per attempt); queries without a
series are retried for up to a minute, since other e2e modules stop services and block ports.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import MON, lab_ssh, prometheus

pytestmark = pytest.mark.e2e

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "dashboards").glob("*.json"))
# $__rate_interval: Grafana makes it at least four scrape intervals (the lab scrapes every 10 s).
RATE_INTERVAL = "5m"
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
DRILL_METRIC = re.compile(r"\bpgstack_drill_\w+")
METRIC = re.compile(r"\bpgstack_\w+")
WAIT_SECONDS = 60

# Runs on mon1: read [[key, expr], ...] on stdin, print {key: series count or error}.
PROGRAM = """
import json, sys, urllib.parse, urllib.request
out = {}
for key, expr in json.load(sys.stdin):
    url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            out[key] = len(json.load(r)["data"]["result"])
    except Exception as e:
        out[key] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def key(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"

    @property
    def needs_a_drill(self) -> bool:
        """Only drill metrics: no series until a restore drill has written its status file."""
        names = set(METRIC.findall(self.expr))
        return bool(names) and all(DRILL_METRIC.fullmatch(name) for name in names)


def substituted(expr: str, variables: set[str]) -> str:
    """The query as Grafana sends it with every variable at "all" (a regex matching any value)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name == "__rate_interval":
            return RATE_INTERVAL
        assert name in variables, f"{expr}: ${name} is not a variable of the dashboard"
        return ".*"

    return VARIABLE.sub(value, expr)


def panel_queries() -> list[PanelQuery]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        variables = {v["name"] for v in board["templating"]["list"]}
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr = substituted(target["expr"], variables)
                out.append(PanelQuery(board["title"], panel["title"], target["refId"], expr))
    return out


def series_counts(queries: list[PanelQuery]) -> dict[str, int | str]:
    """Each query's number of series (or the error), from one program run on mon1."""
    stdin = json.dumps([[q.key, q.expr] for q in queries])
    result = lab_ssh(MON, f"python3 -c {shlex.quote(PROGRAM)}", stdin=stdin, timeout=120)
    assert result.returncode == 0, result.stderr
    counts: dict[str, int | str] = json.loads(result.stdout)
    return counts


def without_series(queries: list[PanelQuery]) -> dict[PanelQuery, int | str]:
    """The queries still without a series after waiting up to WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    pending = queries
    while True:
        counts = series_counts(pending)
        failing = {q: counts[q.key] for q in pending if not isinstance(counts[q.key], int)}
        failing |= {q: 0 for q in pending if counts[q.key] == 0}
        if not failing or time.monotonic() > deadline:
            return failing
        pending = list(failing)
        time.sleep(5)


def test_there_are_dashboards_with_queries() -> None:
    assert len(DASHBOARDS) >= 5
    assert all(q.expr for q in panel_queries())


def test_every_panel_query_returns_a_series() -> None:
    queries = [q for q in panel_queries() if not q.needs_a_drill]
    failing = without_series(queries)
    assert not failing, "panel queries without a series on the lab:\n" + "\n".join(
        f"{q.key}: {count}: {q.expr}" for q, count in failing.items()
    )


def test_drill_panels_return_series_once_a_drill_has_run() -> None:
    queries = [q for q in panel_queries() if q.needs_a_drill]
    assert queries
    if not prometheus("/api/v1/query?query=pgstack_drill_last_run_timestamp_seconds")["result"]:
        pytest.skip(
            "no restore drill status on the lab (no drill has run): "
            + ", ".join(sorted({f"{q.dashboard} / {q.panel}" for q in queries}))
        )
    failing = without_series(queries)
    assert not failing, "drill panel queries without a series on the lab:\n" + "\n".join(
        f"{q.key}: {count}: {q.expr}" for q, count in failing.items()
    )

"""The panel queries of the Grafana dashboards (dashboards/*.json) as Grafana sends them, with every
template variable at "all", and their series counts on mon1's Prometheus. All queries go in one
program run on mon1 (one ssh round trip per attempt).
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from helpers import MON, lab_ssh

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

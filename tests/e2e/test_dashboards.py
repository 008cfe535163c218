"""The Grafana dashboards against the lab's data: every panel query of dashboards/*.json, run on
mon1's Prometheus with every template variable at "all", returns at least one series. Queries
without a series are retried for up to a minute, since other e2e modules stop services and block
ports. The restore_drill role takes the first drills at converge, so the drill panels have data
on a fresh lab too.
"""

from __future__ import annotations

import pytest
from dashboard_queries import DASHBOARDS, panel_queries, without_series

pytestmark = [pytest.mark.e2e, pytest.mark.release]


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

"""docs/metrics.md lists every metric the exporter can emit (type and labels), and no other."""

from __future__ import annotations

import re
from pathlib import Path

from pgstack_exporter import (
    exporter,
    pgbackrest,
    pgbouncer,
    postgresql,
    redis_target,
    status_files,
    tls,
)
from pgstack_exporter.exporter import ALL_METRICS
from pgstack_exporter.metrics import MetricSpec

CATALOGUE = Path(__file__).resolve().parents[2] / "docs/metrics.md"
ROW = re.compile(r"^\| `(pgstack_[a-z0-9_]+)` \| (gauge|counter) \| ([^|]+) \|")


def catalogue() -> dict[str, tuple[str, tuple[str, ...]]]:
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in CATALOGUE.read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, kind, labels = match.groups()
            assert name not in rows, f"{name} is listed twice"
            rows[name] = (kind, tuple(re.findall(r"`([a-z_]+)`", labels)))
    return rows


def test_the_catalogue_matches_the_code() -> None:
    code = {spec.exposed_name: (spec.kind, spec.labels) for spec in ALL_METRICS}
    docs = catalogue()
    assert sorted(set(code) - set(docs)) == [], "emitted but not in docs/metrics.md"
    assert sorted(set(docs) - set(code)) == [], "in docs/metrics.md but never emitted"
    assert {n: v for n, v in code.items() if docs[n] != v} == {}, "type or labels differ"


def test_counters_end_in_total_and_nothing_else_does() -> None:
    for spec in ALL_METRICS:
        assert spec.exposed_name.endswith("_total") == (spec.kind == "counter"), spec.exposed_name
        assert spec.name == spec.name.lower(), spec.name
        assert not spec.name.endswith("_total"), spec.name


def test_every_spec_a_module_defines_is_in_its_metrics_tuple() -> None:
    """Collectors build families from METRICS only, so a spec outside it could never be emitted."""
    for module in (exporter, postgresql, pgbouncer, redis_target, status_files, pgbackrest, tls):
        defined = {v for v in vars(module).values() if isinstance(v, MetricSpec)}
        assert defined <= set(module.METRICS), module.__name__
    assert len({s.exposed_name for s in ALL_METRICS}) == len(ALL_METRICS)

"""docs/metrics.md lists every metric the exporter can emit (type and labels), and no other."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from pgstack_exporter import collectors, exporter, status_files
from pgstack_exporter.collectors import REGISTRY
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


def test_every_spec_a_module_defines_is_in_its_metrics() -> None:
    """Families are built from a collector's metrics only: a spec outside them is never emitted."""
    for info in pkgutil.iter_modules(collectors.__path__):
        module = importlib.import_module(f"{collectors.__name__}.{info.name}")
        defined = {v for v in vars(module).values() if isinstance(v, MetricSpec)}
        assert defined <= set(module.COLLECTOR.metrics), module.__name__
    defined = {v for v in vars(exporter).values() if isinstance(v, MetricSpec)}
    assert defined <= set(exporter.METRICS)
    assert {v for v in vars(status_files).values() if isinstance(v, MetricSpec)} <= set(ALL_METRICS)
    assert len({s.exposed_name for s in ALL_METRICS}) == len(ALL_METRICS)


def test_every_collector_module_is_in_the_registry() -> None:
    names = {info.name for info in pkgutil.iter_modules(collectors.__path__)}
    assert {spec.factory.__module__.rsplit(".", 1)[1] for spec in REGISTRY} == names

"""/metrics is rendered by exposition.render: the bytes of prometheus-client's generate_latest
for the same registry, whatever the installed prometheus-client (0.16 on Debian 12, 0.21 on
Debian 13, the venv's)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from test_exporter_collectors import (
    PG,
    PG_ANSWERS,
    PGB,
    PGBOUNCER_ANSWERS,
    REDIS,
    REDIS_INFO,
    config,
    registry_of,
)
from test_exporter_support import FakeRedisConnector, FakeSqlSession

from pgstack_exporter.exposition import render
from pgstack_exporter.metrics import build_families, counter, gauge, per_row, sample
from pgstack_exporter.sql import SqlParams


class Families(Collector):
    def __init__(self, make: Any) -> None:
        self._make = make

    def collect(self) -> Iterator[Metric]:
        yield from self._make()


def registry_of_families(make: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families(make))
    return registry


VALUES = [
    0.0,
    -0.0,
    1.0,
    0.5,
    1e-7,
    123456.7,
    999999.9,
    1e6,
    1234567.0,
    7.0744629248e10,
    1e20,
    -5e6,
    -1234567.5,
    math.inf,
    -math.inf,
    math.nan,
    3,
    2**53,
]
AWKWARD = ["plain", 'a "quoted" name', "back\\slash", "new\nline", "ünïcode", ""]


def test_the_exporters_own_scrape_renders_as_generate_latest() -> None:
    def sql(params: SqlParams) -> FakeSqlSession:
        return FakeSqlSession(PGBOUNCER_ANSWERS if params.dbname == "pgbouncer" else PG_ANSWERS)

    exporter, reg = registry_of(
        config(postgresql=[PG], pgbouncer=[PGB], redis=[REDIS]),
        sql=sql,
        redis=FakeRedisConnector(REDIS_INFO),
    )
    exporter.start_round()
    # The scrape's families, collected once: both renderings read the same ones.
    families = list(reg.collect())
    fixed = registry_of_families(lambda: families)
    body = render(fixed)
    assert body == generate_latest(fixed)
    for name in ("postgresql_commits_total", "pgbouncer_binds_total", "redis_db_keys"):
        assert f"\npgstack_{name}{{".encode() in body, name
    assert b"pgstack_collector_success{" in body
    assert b'collector_success{collector="postgresql",target="db1"} 1.0' in body


def test_values_labels_and_help_render_as_generate_latest() -> None:
    def make() -> Iterable[Metric]:
        shared = {"target": "db1", "database": 'x"y'}
        g = GaugeMetricFamily(
            "pgstack_g", "help with \\ and\nnewline", labels=["target", "database"]
        )
        c = CounterMetricFamily("pgstack_c", "a counter", labels=["target", "database"])
        for value in VALUES:
            g.add_metric(["db1", str(value)], value)
        for text in AWKWARD:
            c.add_metric(["db1", text], 1.0)
        # One labels dict shared by samples of two families (as per_row shares them).
        g.samples.append(g.samples[0]._replace(labels=shared))
        c.samples.append(c.samples[0]._replace(name="pgstack_c_total", labels=shared))
        return [
            g,
            c,
            GaugeMetricFamily("pgstack_empty", "no samples"),
            GaugeMetricFamily("pgstack_one", "no labels", value=2.5),
        ]

    reg = registry_of_families(make)
    assert render(reg) == generate_latest(reg)


def test_families_outside_the_fast_path_are_left_to_generate_latest() -> None:
    def make() -> Iterable[Metric]:
        created = CounterMetricFamily("pgstack_created", "with _created", labels=["a"])
        created.add_metric(["x"], 3.0, created=1_800_000_000.0)
        stamped = GaugeMetricFamily("pgstack_stamped", "with a timestamp", labels=["a"])
        stamped.add_metric(["x"], 1.0, timestamp=1_800_000_000.5)
        histogram = HistogramMetricFamily("pgstack_h", "a histogram", labels=["a"])
        histogram.add_metric(["x"], [("1.0", 2.0), ("+Inf", 3.0)], 4.5)
        info = InfoMetricFamily("pgstack_i", "an info", labels=["a"])
        info.add_metric(["x"], {"version": "1"})
        return [created, stamped, histogram, info, GaugeMetricFamily("pgstack_after", "x", 1.0)]

    reg = registry_of_families(make)
    assert render(reg) == generate_latest(reg)


def test_labels_are_never_mixed_up_between_dicts_made_and_freed_during_a_render() -> None:
    def make() -> Iterator[Metric]:
        # A fresh dict per family, dropped with it: its id may come back for the next one.
        for i in range(300):
            family = GaugeMetricFamily(f"pgstack_f{i}", "x", labels=["n"])
            family.add_metric([str(i)], float(i))
            yield family

    reg = registry_of_families(make)
    assert render(reg) == generate_latest(reg)


def test_samples_per_row_share_their_labels_and_render_alike() -> None:
    spec_a = counter("a", "a", "target", "database")
    spec_b = gauge("b", "b", "target", "database")
    rows = [{"datname": f"db{i}", "a": i, "b": None} for i in range(50)]
    samples = per_row(
        ((spec_a, "a"), (spec_b, "b")),
        rows,
        lambda row: {"target": "t", "database": row["datname"]},
    )
    assert samples[0].labels is samples[1].labels
    assert [s.value for s in samples[:4]] == [0.0, 0.0, 1.0, 0.0]
    families = list(build_families([spec_a, spec_b], samples))
    reg = registry_of_families(lambda: families)
    assert render(reg) == generate_latest(reg)


def test_per_row_refuses_labels_its_metrics_do_not_have() -> None:
    spec = gauge("b", "b", "target", "database")
    with pytest.raises(ValueError, match="missing"):
        per_row(((spec, "b"),), [{"b": 1}], lambda row: {"target": "t"})
    with pytest.raises(ValueError, match="different labels"):
        per_row(((spec, "b"), (gauge("c", "c", "target"), "c")), [], lambda row: {})
    with pytest.raises(ValueError, match="unknown"):
        sample(spec, 1.0, target="t", database="d", extra="x")

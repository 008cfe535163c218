"""Metric specifications and the fresh families built from them on every scrape.

Every metric the exporter can emit is a ``MetricSpec`` listed in the ``metrics`` of a collector
(``collectors/``) or in the exporter's own ``METRICS``; docs/metrics.md is checked against them
(tests/unit/test_exporter_catalogue.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample as FamilySample

NAMESPACE = "pgstack"
Kind = Literal["gauge", "counter"]


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    name: str  # without the namespace and, for counters, without "_total"
    kind: Kind
    help: str
    labels: tuple[str, ...]

    @property
    def family_name(self) -> str:
        return f"{NAMESPACE}_{self.name}"

    @property
    def exposed_name(self) -> str:
        """The sample name Prometheus sees (CounterMetricFamily appends ``_total``)."""
        suffix = "_total" if self.kind == "counter" else ""
        return self.family_name + suffix


def gauge(name: str, help_text: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "gauge", help_text, labels)


def counter(name: str, help_text: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "counter", help_text, labels)


class Sample(NamedTuple):
    """One value of a metric. A tuple rather than a frozen dataclass: a scrape of a cluster with
    a thousand databases makes thousands of them, and a tuple is made several times faster."""

    spec: MetricSpec
    labels: dict[str, str]  # exactly the spec's labels; may be shared by the samples of a row
    value: float


def _check_labels(spec: MetricSpec, labels: Mapping[str, str]) -> None:
    missing = set(spec.labels) - set(labels)
    extra = set(labels) - set(spec.labels)
    if missing or extra:
        raise ValueError(
            f"{spec.exposed_name}: labels {sorted(missing)} missing, {sorted(extra)} unknown"
        )


def sample(spec: MetricSpec, value: float, **labels: str) -> Sample:
    _check_labels(spec, labels)
    return Sample(spec, labels, float(value))


def per_row(
    columns: Sequence[tuple[MetricSpec, str]],
    rows: Iterable[Mapping[str, Any]],
    labels: Callable[[Mapping[str, Any]], dict[str, str]],
) -> list[Sample]:
    """The samples of several metrics read from the columns of each row (``(metric, column)``,
    the value through ``number()``), every metric with the same labels, ``labels(row)``: made
    once per row and shared by its samples (the exposition renders them once). For the views
    with a row per database, where one ``sample()`` per value would cost most of a scrape."""
    expected = {frozenset(spec.labels) for spec, _column in columns}
    if len(expected) != 1:
        raise ValueError(f"per_row: metrics with different labels: {columns}")
    names = expected.pop()
    out: list[Sample] = []
    for row in rows:
        row_labels = labels(row)
        if row_labels.keys() != names:
            _check_labels(columns[0][0], row_labels)
        out += [Sample(spec, row_labels, number(row[column])) for spec, column in columns]
    return out


def _family(spec: MetricSpec) -> GaugeMetricFamily | CounterMetricFamily:
    if spec.kind == "counter":
        return CounterMetricFamily(spec.family_name, spec.help, labels=list(spec.labels))
    return GaugeMetricFamily(spec.family_name, spec.help, labels=list(spec.labels))


def empty_families(specs: Iterable[MetricSpec]) -> list[Metric]:
    """Families without samples: what ``describe()`` returns, so registration never connects."""
    return [_family(spec) for spec in specs]


def build_families(specs: Sequence[MetricSpec], samples: Iterable[Sample]) -> Iterator[Metric]:
    """Fresh families for one scrape holding ``samples`` (of listed specs only).

    The samples go straight into each family's list, as ``add_metric`` would put them (the
    exposed name, the labels, the value) but without its per-sample list and dict copies: the
    labels dict of a sample already has exactly the family's labels (``sample()`` and
    ``per_row()`` check them), and nothing changes it afterwards.
    """
    families = {spec.name: _family(spec) for spec in specs}
    targets = {spec.name: (families[spec.name].samples, spec.exposed_name) for spec in specs}
    for item in samples:
        target = targets.get(item.spec.name)
        if target is None:
            raise KeyError(f"{item.spec.exposed_name} is not a metric of this collector")
        target[0].append(FamilySample(target[1], item.labels, item.value))
    yield from families.values()


def number(value: Any) -> float:
    """A column or field as a float; NULL (None) reads as 0."""
    return 0.0 if value is None else float(value)

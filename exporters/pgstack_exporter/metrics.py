"""Metric specifications and the fresh families built from them on every scrape.

Every metric the exporter can emit is a ``MetricSpec`` listed in the ``metrics`` of a collector
(``collectors/``) or in the exporter's own ``METRICS``; docs/metrics.md is checked against them
(tests/unit/test_exporter_catalogue.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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


@dataclasses.dataclass(frozen=True)
class Sample:
    spec: MetricSpec
    labels: Mapping[str, str]
    value: float


def sample(spec: MetricSpec, value: float, **labels: str) -> Sample:
    missing = set(spec.labels) - set(labels)
    extra = set(labels) - set(spec.labels)
    if missing or extra:
        raise ValueError(
            f"{spec.exposed_name}: labels {sorted(missing)} missing, {sorted(extra)} unknown"
        )
    return Sample(spec, labels, float(value))


def _family(spec: MetricSpec) -> GaugeMetricFamily | CounterMetricFamily:
    if spec.kind == "counter":
        return CounterMetricFamily(spec.family_name, spec.help, labels=list(spec.labels))
    return GaugeMetricFamily(spec.family_name, spec.help, labels=list(spec.labels))


def empty_families(specs: Iterable[MetricSpec]) -> list[Metric]:
    """Families without samples: what ``describe()`` returns, so registration never connects."""
    return [_family(spec) for spec in specs]


def build_families(specs: Sequence[MetricSpec], samples: Iterable[Sample]) -> Iterator[Metric]:
    """Fresh families for one scrape holding ``samples`` (of listed specs only)."""
    families = {spec.family_name: _family(spec) for spec in specs}
    for item in samples:
        family = families.get(item.spec.family_name)
        if family is None:
            raise KeyError(f"{item.spec.exposed_name} is not a metric of this collector")
        values = [item.labels[name] for name in item.spec.labels]
        family.add_metric(values, item.value)
    yield from families.values()


def number(value: Any) -> float:
    """A column or field as a float; NULL (None) reads as 0."""
    return 0.0 if value is None else float(value)

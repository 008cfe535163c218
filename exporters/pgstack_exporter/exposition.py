"""The /metrics body: the Prometheus text format (0.0.4), byte for byte what prometheus-client's
``generate_latest`` writes for the same registry, at a fraction of its cost per sample.

``generate_latest`` formats every sample on its own: it sorts and escapes the labels and runs
``floatToGoString`` on the value. At a thousand databases that is ~8,000 samples and most of a
scrape's CPU. Here a labels dict shared by several samples (``metrics.per_row`` shares one per
database) is rendered once, and a value that formats the same through ``repr`` (finite, below
10**6 in magnitude) skips ``floatToGoString``. Gauges and counters with plain names take this
path; any other family (a histogram, a sample with a timestamp or an OpenMetrics suffix, a name
outside the legacy character set) is handed to ``generate_latest`` whole, so the output stays
the installed prometheus-client's (tests/unit/test_exporter_exposition.py compares them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import cast

from prometheus_client import utils
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

# Names every prometheus-client version writes unchanged (newer ones escape others).
LEGACY_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# The installed prometheus-client's own value formatting (untyped there).
float_to_go_string = cast(Callable[[float], str], utils.floatToGoString)
# generate_latest moves samples named <family><suffix> after the family's own.
OPENMETRICS_SUFFIXES = ("_created", "_gsum", "_gcount")


class _Other(Exception):
    """A family the fast path does not render: generate_latest does."""


class _One(Collector):
    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterable[Metric]:
        return [self._family]


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    parts = []
    for name, value in sorted(labels.items()):
        if not LEGACY_LABEL.match(name):
            raise _Other(name)
        escaped = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        parts.append(f'{name}="{escaped}"')
    return "{" + ",".join(parts) + "}"


def _family_lines(family: Metric, rendered: dict[int, tuple[dict[str, str], str]]) -> list[str]:
    """The lines of a gauge or counter, as generate_latest writes them; _Other for the rest."""
    if family.type not in ("gauge", "counter") or not LEGACY_NAME.match(family.name):
        raise _Other(family.name)
    name = family.name + "_total" if family.type == "counter" else family.name
    reserved = {family.name + suffix for suffix in OPENMETRICS_SUFFIXES}
    lines = [f"# HELP {name} {_help(family.documentation)}\n# TYPE {name} {family.type}\n"]
    append, known_labels = lines.append, rendered.get
    for item in family.samples:
        sample_name, labels, value = item.name, item.labels, item.value
        if item.timestamp is not None or sample_name in reserved:
            raise _Other(sample_name)
        if sample_name != name and not LEGACY_NAME.match(sample_name):
            raise _Other(sample_name)
        known = known_labels(id(labels))
        if known is None or known[0] is not labels:
            # The dict is kept with its text, so its id cannot be reused during this call.
            known = (labels, _labels(labels))
            rendered[id(labels)] = known
        if value.__class__ is float and -1e6 < value < 1e6:
            append(f"{sample_name}{known[1]} {value!r}\n")
        else:
            append(f"{sample_name}{known[1]} {float_to_go_string(value)}\n")
    return lines


def render(registry: Collector) -> bytes:
    """The registry's families in the text format, as ``generate_latest(registry)``."""
    out: list[str] = []
    rendered: dict[int, tuple[dict[str, str], str]] = {}
    for family in registry.collect():
        try:
            out += _family_lines(family, rendered)
        except _Other:
            out.append(generate_latest(_One(family)).decode("utf-8"))
    return "".join(out).encode("utf-8")

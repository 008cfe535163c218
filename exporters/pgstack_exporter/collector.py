"""What a collector is, declared once per module in ``collectors/`` and listed in its REGISTRY.

A collector runs inside the scrape of a target of its ``kind`` (a PostgreSQL server, a PgBouncer,
the status directory, ...): on every scrape the target hands each of its collectors the same input
(an open SQL session, a directory listing, ...) and records the collector's success and duration
(``pgstack_collector_success``, ``pgstack_collector_duration_seconds``) under its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from pgstack_exporter.metrics import MetricSpec, Sample
from pgstack_exporter.runtime import Clock

SettingsT = TypeVar("SettingsT")  # the settings of one target (its section of the configuration)
InputT = TypeVar("InputT")  # what the target hands its collectors on each scrape

# One collector bound to one target: the input of a scrape in, the samples out; it raises when its
# queries fail (the target records the failure and goes on with its other collectors).
Collect = Callable[[InputT], list[Sample]]


@dataclasses.dataclass(frozen=True)
class CollectorSpec(Generic[SettingsT, InputT]):
    """A collector: everything the exporter, the command line and the catalogue know of it."""

    name: str  # --[no-]collector.<name>, and the collector label of its success and duration
    kind: str  # the kind of target it runs on (the kind label of pgstack_up)
    metrics: tuple[MetricSpec, ...]  # every metric it can emit
    # Called once per target with the target's settings; None when they switch it off there.
    factory: Callable[[SettingsT, Clock], Collect[InputT] | None]
    default: bool = True  # on unless --no-collector.<name>
    # The collector it was split from: --no-collector.<part_of> switches it off too, and
    # pgstack_collector_success{collector="<part_of>"} (and the duration) sums up its parts.
    part_of: str | None = None


@dataclasses.dataclass(frozen=True)
class Bound(Generic[InputT]):
    """A collector bound to one target."""

    name: str
    collect: Collect[InputT]


def bind(
    specs: Iterable[CollectorSpec[SettingsT, InputT]], settings: SettingsT, clock: Clock
) -> list[Bound[InputT]]:
    """The collectors of ``specs`` that the target's ``settings`` leave on, bound to it."""
    out: list[Bound[InputT]] = []
    for spec in specs:
        collect = spec.factory(settings, clock)
        if collect is not None:
            out.append(Bound(spec.name, collect))
    return out


AnySpec = CollectorSpec[Any, Any]

"""Every collector of the exporter: one module each, listed once in REGISTRY.

The exporter, the command line (``--[no-]collector.<name>``) and the metrics catalogue all read
REGISTRY; the order here is the order of the collectors on a target and of their metrics.
"""

from __future__ import annotations

from collections.abc import Iterable

from pgstack_exporter.collector import AnySpec
from pgstack_exporter.collectors import (
    activity,
    archiver,
    databases,
    drills,
    dumps,
    filesystem,
    pgbackrest,
    pgbouncer,
    recovery,
    redis,
    replication,
    sentinel,
    server,
    settings,
    sizes,
    slots,
    tls,
)

REGISTRY: tuple[AnySpec, ...] = (
    server.COLLECTOR,
    settings.COLLECTOR,
    activity.COLLECTOR,
    databases.COLLECTOR,
    replication.COLLECTOR,
    recovery.COLLECTOR,
    slots.COLLECTOR,
    sizes.COLLECTOR,
    filesystem.COLLECTOR,
    archiver.COLLECTOR,
    pgbouncer.COLLECTOR,
    redis.COLLECTOR,
    sentinel.COLLECTOR,
    dumps.COLLECTOR,
    drills.COLLECTOR,
    pgbackrest.COLLECTOR,
    tls.COLLECTOR,
)


def switch_names() -> tuple[str, ...]:
    """Every name --[no-]collector.<name> takes: each collector's, and before the first of its
    parts the name of a collector they were split from (which switches them all)."""
    names: list[str] = []
    for spec in REGISTRY:
        if spec.part_of is not None and spec.part_of not in names:
            names.append(spec.part_of)
        names.append(spec.name)
    return tuple(names)


SWITCHES = switch_names()
# The switches that are on without a flag: all but those of collectors off by default.
DEFAULT_ON = tuple(
    name for name in SWITCHES if name not in {s.name for s in REGISTRY if not s.default}
)


def selected(enabled: Iterable[str]) -> tuple[AnySpec, ...]:
    """The collectors that run when the switches ``on`` are on: a collector runs when its own
    switch, that of the collector it was split from, and that of its kind of target (where the
    kind has one, as ``postgresql`` does) are all on. ``--no-collector.postgresql`` so switches
    off every PostgreSQL collector, archiver included."""
    on = set(enabled)
    unknown = sorted(on - set(SWITCHES))
    if unknown:
        raise ValueError(f"unknown collectors: {', '.join(unknown)}")
    return tuple(
        spec
        for spec in REGISTRY
        if spec.name in on
        and (spec.part_of is None or spec.part_of in on)
        and (spec.kind not in SWITCHES or spec.kind in on)
    )

"""slots: the replication slots of a server, whether each is in use, and the WAL each keeps."""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, gauge, number, sample
from pgstack_exporter.postgresql import CURRENT_LSN, KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

RETAINED = gauge(
    "postgresql_replication_slot_retained_bytes",
    "WAL bytes a replication slot keeps.",
    "target",
    "slot",
    "slot_type",
)
ACTIVE = gauge(
    "postgresql_replication_slot_active",
    "1 while a consumer (a standby's WAL receiver) uses a replication slot.",
    "target",
    "slot",
    "slot_type",
)
SLOTS = gauge("postgresql_replication_slots", "Replication slots on this server.", "target")

QUERY = f"""
SELECT slot_name, slot_type, active,
       coalesce(pg_wal_lsn_diff({CURRENT_LSN}, restart_lsn), 0) AS retained
  FROM pg_replication_slots
"""  # noqa: S608 (built from constants only)


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession]:
    def collect(session: SqlSession) -> list[Sample]:
        rows = session.query("slots", QUERY)
        out = [sample(SLOTS, len(rows), target=config.name)]
        for row in rows:
            labels = {
                "target": config.name,
                "slot": str(row["slot_name"]),
                "slot_type": str(row["slot_type"]),
            }
            out.append(sample(RETAINED, number(row["retained"]), **labels))
            out.append(sample(ACTIVE, 1.0 if row["active"] else 0.0, **labels))
        return out

    return collect


COLLECTOR = CollectorSpec(
    name="slots",
    kind=KIND,
    metrics=(RETAINED, ACTIVE, SLOTS),
    factory=factory,
    part_of="postgresql",
)

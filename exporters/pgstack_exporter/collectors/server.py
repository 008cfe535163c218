"""server: whether a PostgreSQL server is a standby, when it started, and its WAL position."""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, counter, gauge, number, sample
from pgstack_exporter.postgresql import CURRENT_LSN, KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

IN_RECOVERY = gauge(
    "postgresql_in_recovery", "1 on a standby (in recovery), 0 on a primary.", "target"
)
START_TIME = gauge(
    "postgresql_start_time_seconds", "When the server started (Unix time).", "target"
)
WAL_BYTES = counter(
    "postgresql_wal_bytes",
    "WAL position in bytes (written on a primary, replayed on a standby).",
    "target",
)

QUERY = f"""
SELECT pg_is_in_recovery() AS in_recovery,
       extract(epoch FROM pg_postmaster_start_time()) AS start_time,
       coalesce(pg_wal_lsn_diff({CURRENT_LSN}, '0/0'), 0) AS wal_bytes
"""  # noqa: S608 (built from constants only)


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession]:
    def collect(session: SqlSession) -> list[Sample]:
        row = session.query("server", QUERY)[0]
        return [
            sample(IN_RECOVERY, 1.0 if row["in_recovery"] else 0.0, target=config.name),
            sample(START_TIME, number(row["start_time"]), target=config.name),
            sample(WAL_BYTES, number(row["wal_bytes"]), target=config.name),
        ]

    return collect


COLLECTOR = CollectorSpec(
    name="server",
    kind=KIND,
    metrics=(IN_RECOVERY, START_TIME, WAL_BYTES),
    factory=factory,
    part_of="postgresql",
)

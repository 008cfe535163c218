"""replication: the standbys streaming from a server and how far behind they are."""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, gauge, number, sample
from pgstack_exporter.postgresql import CURRENT_LSN, KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

LAG_SECONDS = gauge(
    "postgresql_replication_lag_seconds",
    "Replay lag of a standby as the primary sees it (0 when caught up).",
    "target",
    "standby",
    "client_addr",
)
LAG_BYTES = gauge(
    "postgresql_replication_lag_bytes",
    "WAL bytes a standby has not replayed yet.",
    "target",
    "standby",
    "client_addr",
)
STANDBYS = gauge(
    "postgresql_replication_standbys", "Standbys streaming from this server.", "target"
)

QUERY = f"""
SELECT coalesce(application_name, '') AS standby,
       coalesce(host(client_addr), 'local') AS client_addr,
       coalesce(extract(epoch FROM replay_lag), 0) AS lag_seconds,
       coalesce(pg_wal_lsn_diff({CURRENT_LSN}, replay_lsn), 0) AS lag_bytes
  FROM pg_stat_replication
"""  # noqa: S608 (built from constants only)


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession]:
    def collect(session: SqlSession) -> list[Sample]:
        rows = session.query("replication", QUERY)
        out = [sample(STANDBYS, len(rows), target=config.name)]
        for row in rows:
            labels = {
                "target": config.name,
                "standby": str(row["standby"]),
                "client_addr": str(row["client_addr"]),
            }
            out.append(sample(LAG_SECONDS, number(row["lag_seconds"]), **labels))
            out.append(sample(LAG_BYTES, number(row["lag_bytes"]), **labels))
        return out

    return collect


COLLECTOR = CollectorSpec(
    name="replication",
    kind=KIND,
    metrics=(LAG_SECONDS, LAG_BYTES, STANDBYS),
    factory=factory,
    part_of="postgresql",
)

"""databases: per-database statistics (pg_stat_database) and transaction ID age.

A row per database, so a cluster of a thousand makes seven thousand samples per scrape: the rows
come as one JSON value (``query_many``) and each row's labels are made once (``per_row``).
"""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, counter, gauge, per_row
from pgstack_exporter.postgresql import KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

D = ("target", "database")
COMMITS = counter("postgresql_commits", "Transactions committed.", *D)
ROLLBACKS = counter("postgresql_rollbacks", "Transactions rolled back.", *D)
BLOCKS_HIT = counter("postgresql_blocks_hit", "Blocks found in shared buffers.", *D)
BLOCKS_READ = counter("postgresql_blocks_read", "Blocks read from disk (or the OS cache).", *D)
DEADLOCKS = counter("postgresql_deadlocks", "Deadlocks detected.", *D)
TEMP_BYTES = counter("postgresql_temp_bytes", "Bytes written to temporary files.", *D)
XID_AGE = gauge(
    "postgresql_xid_age",
    "Transactions since the database's datfrozenxid (wraparound at 2^31).",
    *D,
)

QUERY = """
SELECT d.datname, s.xact_commit, s.xact_rollback, s.blks_hit, s.blks_read, s.deadlocks,
       s.temp_bytes, age(d.datfrozenxid) AS xid_age
  FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
 WHERE d.datallowconn
"""
COLUMNS = (
    (COMMITS, "xact_commit"),
    (ROLLBACKS, "xact_rollback"),
    (BLOCKS_HIT, "blks_hit"),
    (BLOCKS_READ, "blks_read"),
    (DEADLOCKS, "deadlocks"),
    (TEMP_BYTES, "temp_bytes"),
    (XID_AGE, "xid_age"),
)


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession]:
    target = config.name

    def collect(session: SqlSession) -> list[Sample]:
        rows = session.query_many("databases", QUERY)
        return per_row(
            COLUMNS, rows, lambda row: {"target": target, "database": str(row["datname"])}
        )

    return collect


COLLECTOR = CollectorSpec(
    name="databases",
    kind=KIND,
    metrics=tuple(spec for spec, _column in COLUMNS),
    factory=factory,
    part_of="postgresql",
)

"""PostgreSQL: activity, databases, replication, sizes, WAL, archiver, data filesystem."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import MetricSpec, Sample, counter, gauge, sample
from pgstack_exporter.runtime import (
    Clock,
    Executor,
    Health,
    PartRecorder,
    ScrapeResult,
)
from pgstack_exporter.sql import Row, SqlConnector, SqlParams, SqlSession, SqlTarget

log = logging.getLogger(__name__)

T = ("target",)
CONNECTIONS = gauge(
    "postgresql_connections", "Backends by state and backend type.", *T, "state", "backend_type"
)
MAX_CONNECTIONS = gauge("postgresql_max_connections", "The max_connections setting.", *T)
RESERVED = gauge(
    "postgresql_reserved_connections",
    "Connections reserved for superusers (and pg_use_reserved_connections).",
    *T,
)
COMMITS = counter("postgresql_commits", "Transactions committed.", *T, "database")
ROLLBACKS = counter("postgresql_rollbacks", "Transactions rolled back.", *T, "database")
BLOCKS_HIT = counter("postgresql_blocks_hit", "Blocks found in shared buffers.", *T, "database")
BLOCKS_READ = counter(
    "postgresql_blocks_read", "Blocks read from disk (or the OS cache).", *T, "database"
)
DEADLOCKS = counter("postgresql_deadlocks", "Deadlocks detected.", *T, "database")
TEMP_BYTES = counter("postgresql_temp_bytes", "Bytes written to temporary files.", *T, "database")
OLDEST_XACT = gauge(
    "postgresql_oldest_transaction_seconds",
    "Age of the oldest open transaction of a client backend (0: none).",
    *T,
)
LONGEST_QUERY = gauge(
    "postgresql_longest_query_seconds", "Run time of the longest active query (0: none).", *T
)
LONGEST_IDLE_XACT = gauge(
    "postgresql_longest_idle_in_transaction_seconds",
    "Longest time a session has been idle in transaction, since its state change (0: none).",
    *T,
)
BLOCKED = gauge(
    "postgresql_blocked_backends", "Client backends waiting for a lock held by another backend.", *T
)
IN_RECOVERY = gauge("postgresql_in_recovery", "1 on a standby (in recovery), 0 on a primary.", *T)
REPL_LAG_SECONDS = gauge(
    "postgresql_replication_lag_seconds",
    "Replay lag of a standby as the primary sees it (0 when caught up).",
    *T,
    "standby",
    "client_addr",
)
REPL_LAG_BYTES = gauge(
    "postgresql_replication_lag_bytes",
    "WAL bytes a standby has not replayed yet.",
    *T,
    "standby",
    "client_addr",
)
STANDBYS = gauge("postgresql_replication_standbys", "Standbys streaming from this server.", *T)
SLOT_RETAINED = gauge(
    "postgresql_replication_slot_retained_bytes",
    "WAL bytes a replication slot keeps.",
    *T,
    "slot",
    "slot_type",
)
SLOTS = gauge("postgresql_replication_slots", "Replication slots on this server.", *T)
DB_SIZE = gauge(
    "postgresql_database_size_bytes",
    "Size of a database (cached, see postgresql_database_size_age_seconds).",
    *T,
    "database",
)
DB_SIZE_AGE = gauge("postgresql_database_size_age_seconds", "Age of the cached database sizes.", *T)
XID_AGE = gauge(
    "postgresql_xid_age",
    "Transactions since the database's datfrozenxid (wraparound at 2^31).",
    *T,
    "database",
)
PENDING_RESTART = gauge(
    "postgresql_settings_pending_restart",
    "Settings changed in the configuration that need a restart.",
    *T,
)
START_TIME = gauge("postgresql_start_time_seconds", "When the server started (Unix time).", *T)
WAL_BYTES = counter(
    "postgresql_wal_bytes",
    "WAL position in bytes (written on a primary, replayed on a standby).",
    *T,
)
FS_FREE = gauge(
    "postgresql_data_directory_free_bytes",
    "Bytes available to PostgreSQL on the data directory's filesystem.",
    *T,
)
FS_SIZE = gauge(
    "postgresql_data_directory_size_bytes", "Size of the data directory's filesystem.", *T
)
ARCHIVED = counter("postgresql_archiver_archived", "WAL files archived successfully.", *T)
ARCHIVE_FAILED = counter("postgresql_archiver_failed", "Failed attempts to archive a WAL file.", *T)
LAST_ARCHIVED = gauge(
    "postgresql_archiver_last_archived_timestamp_seconds",
    "When the last WAL file was archived (0: never).",
    *T,
)
LAST_FAILED = gauge(
    "postgresql_archiver_last_failed_timestamp_seconds",
    "When archiving last failed (0: never).",
    *T,
)
READY = gauge(
    "postgresql_archiver_ready_segments", "WAL segments waiting to be archived (.ready files).", *T
)
ARCHIVE_MODE = gauge("postgresql_archive_mode", "1 for the archive_mode in effect.", *T, "mode")

METRICS: tuple[MetricSpec, ...] = (
    CONNECTIONS,
    MAX_CONNECTIONS,
    RESERVED,
    COMMITS,
    ROLLBACKS,
    BLOCKS_HIT,
    BLOCKS_READ,
    DEADLOCKS,
    TEMP_BYTES,
    OLDEST_XACT,
    LONGEST_QUERY,
    LONGEST_IDLE_XACT,
    BLOCKED,
    IN_RECOVERY,
    REPL_LAG_SECONDS,
    REPL_LAG_BYTES,
    STANDBYS,
    SLOT_RETAINED,
    SLOTS,
    DB_SIZE,
    DB_SIZE_AGE,
    XID_AGE,
    PENDING_RESTART,
    START_TIME,
    WAL_BYTES,
    FS_FREE,
    FS_SIZE,
    ARCHIVED,
    ARCHIVE_FAILED,
    LAST_ARCHIVED,
    LAST_FAILED,
    READY,
    ARCHIVE_MODE,
)

# The WAL position of this server: written (primary) or replayed (standby).
_LSN = "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END"

Q_SERVER = f"""
SELECT pg_is_in_recovery() AS in_recovery,
       extract(epoch FROM pg_postmaster_start_time()) AS start_time,
       coalesce(pg_wal_lsn_diff({_LSN}, '0/0'), 0) AS wal_bytes
"""  # noqa: S608 (built from constants only)
Q_SETTINGS = """
SELECT name, setting, pending_restart FROM pg_settings
 WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections',
                'archive_mode', 'data_directory') OR pending_restart
"""
Q_ACTIVITY = """
SELECT coalesce(state, 'none') AS state, coalesce(backend_type, 'unknown') AS backend_type,
       count(*) AS backends
  FROM pg_stat_activity GROUP BY 1, 2
"""
Q_TIMES = """
SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) AS oldest_xact,
       coalesce(max(extract(epoch FROM now() - query_start)) FILTER (WHERE state = 'active'), 0)
         AS longest_query,
       coalesce(max(extract(epoch FROM now() - state_change))
         FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')), 0)
         AS longest_idle_xact,
       count(*) FILTER (WHERE cardinality(pg_blocking_pids(pid)) > 0) AS blocked
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""
Q_DATABASES = """
SELECT d.datname, s.xact_commit, s.xact_rollback, s.blks_hit, s.blks_read, s.deadlocks,
       s.temp_bytes, age(d.datfrozenxid) AS xid_age
  FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
 WHERE d.datallowconn
"""
Q_REPLICATION = f"""
SELECT coalesce(application_name, '') AS standby,
       coalesce(host(client_addr), 'local') AS client_addr,
       coalesce(extract(epoch FROM replay_lag), 0) AS lag_seconds,
       coalesce(pg_wal_lsn_diff({_LSN}, replay_lsn), 0) AS lag_bytes
  FROM pg_stat_replication
"""  # noqa: S608 (built from constants only)
Q_SLOTS = f"""
SELECT slot_name, slot_type, coalesce(pg_wal_lsn_diff({_LSN}, restart_lsn), 0) AS retained
  FROM pg_replication_slots
"""  # noqa: S608 (built from constants only)
Q_SIZES = "SELECT datname, pg_database_size(oid) AS size FROM pg_database WHERE datallowconn"
Q_ARCHIVER = """
SELECT archived_count, failed_count,
       coalesce(extract(epoch FROM last_archived_time), 0) AS last_archived,
       coalesce(extract(epoch FROM last_failed_time), 0) AS last_failed
  FROM pg_stat_archiver
"""
Q_READY = "SELECT count(*) AS ready FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"


def _f(value: Any) -> float:
    return float(value) if value is not None else 0.0


class PostgresTarget(SqlTarget):
    kind = "postgresql"

    def __init__(
        self,
        config: PostgresConfig,
        connect: SqlConnector,
        clock: Clock,
        executor: Executor,
        archiver: bool = True,
    ) -> None:
        super().__init__(config.name, config.timeout_seconds, connect, clock, executor)
        self.config = config
        self._archiver = archiver and config.archiver
        self._sizes: list[Row] = []
        self._sizes_at: float | None = None  # monotonic
        self._settings: dict[str, str] = {}

    def params(self) -> SqlParams:
        c = self.config
        return SqlParams(
            host=c.host,
            port=c.port,
            user=c.user,
            dbname=c.dbname,
            sslmode=c.sslmode,
            sslrootcert=c.sslrootcert,
            password_file=c.password_file,
            connect_timeout=max(2, int(c.timeout_seconds)),
            statement_timeout_ms=c.statement_timeout_ms,
            lock_timeout_ms=c.lock_timeout_ms,
        )

    def scrape(self) -> ScrapeResult:
        recorder = PartRecorder(self.clock, self.name)
        start = self.clock.monotonic()
        try:
            session = self.session()
            server = session.query("server", Q_SERVER)[0]
        except Exception as error:
            return self.down(recorder, "postgresql", start, error)
        latency_ms = (self.clock.monotonic() - start) * 1000
        steps: list[Callable[[SqlSession], list[Sample]]] = [
            lambda _s: self._server(server),
            self._settings_samples,
            self._activity,
            self._times,
            self._databases,
            self._replication,
            self._slots,
            self._database_sizes,
            self._filesystem,
        ]
        for step in steps:
            recorder.run("postgresql", lambda step=step: step(session))  # type: ignore[misc]
        if self._archiver:
            recorder.run("archiver", lambda: self._archiver_samples(session))
        self.close_if_broken()
        return ScrapeResult(
            up=True,
            samples=tuple(recorder.samples),
            parts=recorder.parts,
            health=Health(up=True, latency_ms=round(latency_ms, 1)),
        )

    def _s(self, spec: MetricSpec, value: Any, **labels: str) -> Sample:
        return sample(spec, _f(value), target=self.name, **labels)

    def _server(self, row: Row) -> list[Sample]:
        return [
            self._s(IN_RECOVERY, 1 if row["in_recovery"] else 0),
            self._s(START_TIME, row["start_time"]),
            self._s(WAL_BYTES, row["wal_bytes"]),
        ]

    def _settings_samples(self, session: SqlSession) -> list[Sample]:
        rows = session.query("settings", Q_SETTINGS)
        self._settings = {row["name"]: str(row["setting"]) for row in rows}
        reserved = sum(
            int(self._settings.get(name, "0"))
            for name in ("superuser_reserved_connections", "reserved_connections")
        )
        out = [
            self._s(MAX_CONNECTIONS, int(self._settings.get("max_connections", "0"))),
            self._s(RESERVED, reserved),
            self._s(PENDING_RESTART, sum(1 for row in rows if row["pending_restart"])),
        ]
        mode = self._settings.get("archive_mode")
        if mode is not None and self._archiver:
            out.append(self._s(ARCHIVE_MODE, 1, mode=mode))
        return out

    def _activity(self, session: SqlSession) -> list[Sample]:
        return [
            self._s(
                CONNECTIONS, row["backends"], state=row["state"], backend_type=row["backend_type"]
            )
            for row in session.query("activity", Q_ACTIVITY)
        ]

    def _times(self, session: SqlSession) -> list[Sample]:
        row = session.query("times", Q_TIMES)[0]
        return [
            self._s(OLDEST_XACT, row["oldest_xact"]),
            self._s(LONGEST_QUERY, row["longest_query"]),
            self._s(LONGEST_IDLE_XACT, row["longest_idle_xact"]),
            self._s(BLOCKED, row["blocked"]),
        ]

    def _databases(self, session: SqlSession) -> list[Sample]:
        out: list[Sample] = []
        columns = (
            (COMMITS, "xact_commit"),
            (ROLLBACKS, "xact_rollback"),
            (BLOCKS_HIT, "blks_hit"),
            (BLOCKS_READ, "blks_read"),
            (DEADLOCKS, "deadlocks"),
            (TEMP_BYTES, "temp_bytes"),
            (XID_AGE, "xid_age"),
        )
        for row in session.query("databases", Q_DATABASES):
            out += [self._s(spec, row[col], database=row["datname"]) for spec, col in columns]
        return out

    def _replication(self, session: SqlSession) -> list[Sample]:
        rows = session.query("replication", Q_REPLICATION)
        out = [self._s(STANDBYS, len(rows))]
        for row in rows:
            labels = {"standby": row["standby"], "client_addr": row["client_addr"]}
            out.append(self._s(REPL_LAG_SECONDS, row["lag_seconds"], **labels))
            out.append(self._s(REPL_LAG_BYTES, row["lag_bytes"], **labels))
        return out

    def _slots(self, session: SqlSession) -> list[Sample]:
        rows = session.query("slots", Q_SLOTS)
        out = [self._s(SLOTS, len(rows))]
        out += [
            self._s(
                SLOT_RETAINED, row["retained"], slot=row["slot_name"], slot_type=row["slot_type"]
            )
            for row in rows
        ]
        return out

    def _database_sizes(self, session: SqlSession) -> list[Sample]:
        now = self.clock.monotonic()
        interval = self.config.database_size_interval_seconds
        if self._sizes_at is None or now - self._sizes_at >= interval:
            self._sizes = session.query("sizes", Q_SIZES)
            self._sizes_at = now
        out = [self._s(DB_SIZE, row["size"], database=row["datname"]) for row in self._sizes]
        out.append(self._s(DB_SIZE_AGE, now - self._sizes_at))
        return out

    def _filesystem(self, _session: SqlSession) -> list[Sample]:
        directory = self._settings.get("data_directory")
        if not self.config.filesystem or not directory:
            return []
        stat = os.statvfs(directory)
        return [
            self._s(FS_FREE, stat.f_bavail * stat.f_frsize),
            self._s(FS_SIZE, stat.f_blocks * stat.f_frsize),
        ]

    def _archiver_samples(self, session: SqlSession) -> list[Sample]:
        row = session.query("archiver", Q_ARCHIVER)[0]
        ready = session.query("ready", Q_READY)[0]
        return [
            self._s(ARCHIVED, row["archived_count"]),
            self._s(ARCHIVE_FAILED, row["failed_count"]),
            self._s(LAST_ARCHIVED, row["last_archived"]),
            self._s(LAST_FAILED, row["last_failed"]),
            self._s(READY, ready["ready"]),
        ]

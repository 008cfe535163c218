"""server: whether a PostgreSQL server is a standby (and so its role), when it started, its WAL
position, and who writes its shared buffers out (checkpoints, the background writer, backends).

The checkpoint and background writer figures moved between releases, and are read where the
server's version (``server_version_num``) keeps them, under the same metric names everywhere:

- before 17, ``pg_stat_bgwriter`` holds them all, backends' writes and fsyncs included;
- from 17, ``pg_stat_checkpointer`` holds the checkpointer's (renamed, with restartpoints) and
  ``pg_stat_bgwriter`` keeps the background writer's and ``buffers_alloc``; the backends' writes
  are gone from both;
- from 16, ``pg_stat_io`` counts writes and fsyncs by backend type (summed over its objects
  and contexts here).

A figure a version lacks has no series there. Times are in seconds (the views count ms).
"""

from __future__ import annotations

import logging

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import MetricSpec, Sample, counter, gauge, number, sample
from pgstack_exporter.postgresql import CURRENT_LSN, KIND
from pgstack_exporter.runtime import Clock, Failed, first_line
from pgstack_exporter.sql import Row, SqlSession

log = logging.getLogger(__name__)

IN_RECOVERY = gauge(
    "postgresql_in_recovery", "1 on a standby (in recovery), 0 on a primary.", "target"
)
# The same fact as a label, to join other series on (a Patroni member's role changes at failover).
ROLE = gauge(
    "postgresql_role",
    "1 for the server's role: primary, or replica while in recovery.",
    "target",
    "role",
)
START_TIME = gauge(
    "postgresql_start_time_seconds", "When the server started (Unix time).", "target"
)
WAL_BYTES = counter(
    "postgresql_wal_bytes",
    "WAL position in bytes (written on a primary, replayed on a standby).",
    "target",
)
CHECKPOINTS_TIMED = counter(
    "postgresql_checkpoints_timed",
    "Checkpoints scheduled by checkpoint_timeout (skipped ones on an idle server included).",
    "target",
)
CHECKPOINTS_REQUESTED = counter(
    "postgresql_checkpoints_requested",
    "Checkpoints requested (max_wal_size reached, CHECKPOINT, a backup, ...).",
    "target",
)
CHECKPOINT_WRITE_TIME = counter(
    "postgresql_checkpoint_write_time_seconds",
    "Time checkpoints and restartpoints spent writing files out.",
    "target",
)
CHECKPOINT_SYNC_TIME = counter(
    "postgresql_checkpoint_sync_time_seconds",
    "Time checkpoints and restartpoints spent syncing files to disk.",
    "target",
)
CHECKPOINT_BUFFERS = counter(
    "postgresql_checkpoint_buffers_written",
    "Shared buffers written by checkpoints and restartpoints.",
    "target",
)
RESTARTPOINTS_TIMED = counter(
    "postgresql_restartpoints_timed",
    "Restartpoints scheduled by checkpoint_timeout or after a failed one.",
    "target",
)
RESTARTPOINTS_REQUESTED = counter(
    "postgresql_restartpoints_requested", "Restartpoints requested.", "target"
)
RESTARTPOINTS_DONE = counter("postgresql_restartpoints_done", "Restartpoints performed.", "target")
BGWRITER_BUFFERS = counter(
    "postgresql_bgwriter_buffers_written",
    "Shared buffers written by the background writer.",
    "target",
)
BGWRITER_MAXWRITTEN = counter(
    "postgresql_bgwriter_maxwritten_clean",
    "Times the background writer stopped a cleaning scan at bgwriter_lru_maxpages.",
    "target",
)
BUFFERS_ALLOCATED = counter("postgresql_buffers_allocated", "Shared buffers allocated.", "target")
BACKEND_BUFFERS = counter(
    "postgresql_backend_buffers_written",
    "Shared buffers written by backends themselves (pg_stat_bgwriter; see postgresql_io_writes).",
    "target",
)
BACKEND_FSYNCS = counter(
    "postgresql_backend_fsyncs",
    "Times a backend had to fsync a file itself (pg_stat_bgwriter; see postgresql_io_fsyncs).",
    "target",
)
IO_WRITES = counter(
    "postgresql_io_writes",
    "Write operations by backend type (pg_stat_io).",
    "target",
    "backend_type",
)
IO_FSYNCS = counter(
    "postgresql_io_fsyncs",
    "Fsync calls by backend type (pg_stat_io).",
    "target",
    "backend_type",
)

QUERY = f"""
SELECT pg_is_in_recovery() AS in_recovery,
       extract(epoch FROM pg_postmaster_start_time()) AS start_time,
       coalesce(pg_wal_lsn_diff({CURRENT_LSN}, '0/0'), 0) AS wal_bytes,
       current_setting('server_version_num')::int AS version_num
"""  # noqa: S608 (built from constants only)

# server_version_num from which a view has the columns read here.
CHECKPOINTER_VIEW = 170000
IO_VIEW = 160000

# Both queries name their columns alike, after the figure (and so the metric) they give.
Q_BGWRITER = """
SELECT checkpoints_timed, checkpoints_req AS checkpoints_requested,
       checkpoint_write_time, checkpoint_sync_time, buffers_checkpoint AS checkpoint_buffers,
       buffers_clean AS bgwriter_buffers, maxwritten_clean, buffers_alloc,
       buffers_backend AS backend_buffers, buffers_backend_fsync AS backend_fsyncs
  FROM pg_stat_bgwriter
"""
Q_CHECKPOINTER = """
SELECT c.num_timed AS checkpoints_timed, c.num_requested AS checkpoints_requested,
       c.write_time AS checkpoint_write_time, c.sync_time AS checkpoint_sync_time,
       c.buffers_written AS checkpoint_buffers, c.restartpoints_timed,
       c.restartpoints_req AS restartpoints_requested, c.restartpoints_done,
       b.buffers_clean AS bgwriter_buffers, b.maxwritten_clean, b.buffers_alloc
  FROM pg_stat_checkpointer c CROSS JOIN pg_stat_bgwriter b
"""
# NULL where an operation does not apply to a backend type (its sum too: no series then).
Q_IO = """
SELECT backend_type, sum(writes) AS writes, sum(fsyncs) AS fsyncs
  FROM pg_stat_io GROUP BY backend_type
"""
# Column, metric, scale (times in milliseconds).
WRITES: tuple[tuple[str, MetricSpec, float], ...] = (
    ("checkpoints_timed", CHECKPOINTS_TIMED, 1.0),
    ("checkpoints_requested", CHECKPOINTS_REQUESTED, 1.0),
    ("checkpoint_write_time", CHECKPOINT_WRITE_TIME, 1e-3),
    ("checkpoint_sync_time", CHECKPOINT_SYNC_TIME, 1e-3),
    ("checkpoint_buffers", CHECKPOINT_BUFFERS, 1.0),
    ("restartpoints_timed", RESTARTPOINTS_TIMED, 1.0),
    ("restartpoints_requested", RESTARTPOINTS_REQUESTED, 1.0),
    ("restartpoints_done", RESTARTPOINTS_DONE, 1.0),
    ("bgwriter_buffers", BGWRITER_BUFFERS, 1.0),
    ("maxwritten_clean", BGWRITER_MAXWRITTEN, 1.0),
    ("buffers_alloc", BUFFERS_ALLOCATED, 1.0),
    ("backend_buffers", BACKEND_BUFFERS, 1.0),
    ("backend_fsyncs", BACKEND_FSYNCS, 1.0),
)
IO = (("writes", IO_WRITES), ("fsyncs", IO_FSYNCS))


def writes(session: SqlSession, version: int, target: str) -> list[Sample]:
    """Checkpoint, background writer and backend write figures, from the views ``version``
    has: a column the view lacks gives no sample."""
    query = Q_CHECKPOINTER if version >= CHECKPOINTER_VIEW else Q_BGWRITER
    row: Row = session.query("bgwriter", query)[0]
    out = [
        sample(spec, number(row[column]) * scale, target=target)
        for column, spec, scale in WRITES
        if column in row
    ]
    if version >= IO_VIEW:
        for io in session.query("io", Q_IO):
            backend_type = str(io["backend_type"])
            out += [
                sample(spec, number(io[column]), target=target, backend_type=backend_type)
                for column, spec in IO
                if io[column] is not None
            ]
    return out


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession]:
    def collect(session: SqlSession) -> list[Sample]:
        row = session.query("server", QUERY)[0]
        role = "replica" if row["in_recovery"] else "primary"
        out = [
            sample(IN_RECOVERY, 1.0 if row["in_recovery"] else 0.0, target=config.name),
            sample(ROLE, 1.0, target=config.name, role=role),
            sample(START_TIME, number(row["start_time"]), target=config.name),
            sample(WAL_BYTES, number(row["wal_bytes"]), target=config.name),
        ]
        # A failing statistics query fails the collector; the server's own figures still show.
        try:
            out += writes(session, int(row["version_num"]), config.name)
        except Exception as error:
            log.warning("server statistics on %s failed: %s", config.name, first_line(error))
            raise Failed(first_line(error), out) from error
        return out

    return collect


COLLECTOR = CollectorSpec(
    name="server",
    kind=KIND,
    metrics=(
        IN_RECOVERY,
        ROLE,
        START_TIME,
        WAL_BYTES,
        CHECKPOINTS_TIMED,
        CHECKPOINTS_REQUESTED,
        CHECKPOINT_WRITE_TIME,
        CHECKPOINT_SYNC_TIME,
        CHECKPOINT_BUFFERS,
        RESTARTPOINTS_TIMED,
        RESTARTPOINTS_REQUESTED,
        RESTARTPOINTS_DONE,
        BGWRITER_BUFFERS,
        BGWRITER_MAXWRITTEN,
        BUFFERS_ALLOCATED,
        BACKEND_BUFFERS,
        BACKEND_FSYNCS,
        IO_WRITES,
        IO_FSYNCS,
    ),
    factory=factory,
    part_of="postgresql",
)

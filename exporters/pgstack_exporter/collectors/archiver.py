"""archiver: WAL archiving (pg_stat_archiver), the segments waiting for it, and archive_mode.

Off for a server whose configuration says ``archiver: false``.
"""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, counter, gauge, number, sample
from pgstack_exporter.postgresql import KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

ARCHIVED = counter("postgresql_archiver_archived", "WAL files archived successfully.", "target")
FAILED = counter("postgresql_archiver_failed", "Failed attempts to archive a WAL file.", "target")
LAST_ARCHIVED = gauge(
    "postgresql_archiver_last_archived_timestamp_seconds",
    "When the last WAL file was archived (0: never).",
    "target",
)
LAST_FAILED = gauge(
    "postgresql_archiver_last_failed_timestamp_seconds",
    "When archiving last failed (0: never).",
    "target",
)
READY = gauge(
    "postgresql_archiver_ready_segments",
    "WAL segments waiting to be archived (.ready files).",
    "target",
)
ARCHIVE_MODE = gauge(
    "postgresql_archive_mode", "1 for the archive_mode in effect.", "target", "mode"
)

# NULL times (nothing archived or failed yet) read as 0.
Q_ARCHIVER = """
SELECT archived_count, failed_count,
       coalesce(extract(epoch FROM last_archived_time), 0) AS last_archived,
       coalesce(extract(epoch FROM last_failed_time), 0) AS last_failed,
       current_setting('archive_mode') AS archive_mode
  FROM pg_stat_archiver
"""
Q_READY = "SELECT count(*) AS ready FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession] | None:
    if not config.archiver:
        return None

    def collect(session: SqlSession) -> list[Sample]:
        row = session.query("archiver", Q_ARCHIVER)[0]
        ready = session.query("ready", Q_READY)[0]
        t = config.name
        return [
            sample(ARCHIVED, number(row["archived_count"]), target=t),
            sample(FAILED, number(row["failed_count"]), target=t),
            sample(LAST_ARCHIVED, number(row["last_archived"]), target=t),
            sample(LAST_FAILED, number(row["last_failed"]), target=t),
            sample(READY, number(ready["ready"]), target=t),
            sample(ARCHIVE_MODE, 1.0, target=t, mode=str(row["archive_mode"])),
        ]

    return collect


COLLECTOR = CollectorSpec(
    name="archiver",
    kind=KIND,
    metrics=(ARCHIVED, FAILED, LAST_ARCHIVED, LAST_FAILED, READY, ARCHIVE_MODE),
    factory=factory,
)

"""filesystem: free and total bytes of the filesystem holding a local server's data directory.

Off for a server whose configuration says ``filesystem: false`` (a server on another host).
"""

from __future__ import annotations

import os

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, gauge, sample
from pgstack_exporter.postgresql import KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

FREE = gauge(
    "postgresql_data_directory_free_bytes",
    "Bytes available to PostgreSQL on the data directory's filesystem.",
    "target",
)
SIZE = gauge(
    "postgresql_data_directory_size_bytes", "Size of the data directory's filesystem.", "target"
)

# data_directory is readable by pg_read_all_settings, a member of pg_monitor.
QUERY = "SELECT current_setting('data_directory') AS data_directory"


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession] | None:
    if not config.filesystem:
        return None

    def collect(session: SqlSession) -> list[Sample]:
        directory = session.query("data_directory", QUERY)[0]["data_directory"]
        if not directory:
            return []
        stat = os.statvfs(str(directory))
        return [
            sample(FREE, stat.f_bavail * stat.f_frsize, target=config.name),
            sample(SIZE, stat.f_blocks * stat.f_frsize, target=config.name),
        ]

    return collect


COLLECTOR = CollectorSpec(
    name="filesystem", kind=KIND, metrics=(FREE, SIZE), factory=factory, part_of="postgresql"
)

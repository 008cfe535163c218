"""sizes: the size of every database, measured at most every database_size_interval_seconds."""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, gauge, per_row, sample
from pgstack_exporter.postgresql import KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

SIZE = gauge(
    "postgresql_database_size_bytes",
    "Size of a database (cached, see postgresql_database_size_age_seconds).",
    "target",
    "database",
)
AGE = gauge("postgresql_database_size_age_seconds", "Age of the cached database sizes.", "target")

COLUMNS = ((SIZE, "size"),)
QUERY = "SELECT datname, pg_database_size(oid) AS size FROM pg_database WHERE datallowconn"


def factory(config: PostgresConfig, clock: Clock) -> Collect[SqlSession]:
    # pg_database_size() walks every file of a database: measured again only once the cached
    # answer is older than the interval (a failed measurement keeps the previous one). The
    # samples of the sizes are kept with them: only their age changes between measurements.
    target = config.name
    sizes: list[Sample] = []
    measured_at: float | None = None  # monotonic

    def collect(session: SqlSession) -> list[Sample]:
        nonlocal sizes, measured_at
        now = clock.monotonic()
        if measured_at is None or now - measured_at >= config.database_size_interval_seconds:
            rows = session.query_many("sizes", QUERY)
            sizes = per_row(
                COLUMNS, rows, lambda row: {"target": target, "database": row["datname"]}
            )
            measured_at = now
        return [*sizes, sample(AGE, now - measured_at, target=target)]

    return collect


COLLECTOR = CollectorSpec(
    name="sizes", kind=KIND, metrics=(SIZE, AGE), factory=factory, part_of="postgresql"
)

"""PostgreSQL: one connection per server, and the scrape that runs its collectors on it.

The collectors (server, settings, activity, databases, replication, recovery, slots, sizes,
filesystem, archiver) live in ``collectors/``; each runs its own queries on the session handed
to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pgstack_exporter.collector import Bound
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.runtime import Clock, Executor, Health, PartRecorder, ScrapeResult
from pgstack_exporter.sql import SqlConnector, SqlParams, SqlSession, SqlTarget

log = logging.getLogger(__name__)

KIND = "postgresql"

# The WAL position of this server: written (primary) or replayed (standby).
CURRENT_LSN = (
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END"
)
# Whether the server answers at all: pgstack_up and the latency /health reports.
Q_PROBE = "SELECT 1 AS ok"


class PostgresTarget(SqlTarget):
    kind = KIND

    def __init__(
        self,
        config: PostgresConfig,
        connect: SqlConnector,
        clock: Clock,
        executor: Executor,
        collectors: Sequence[Bound[SqlSession]],
    ) -> None:
        super().__init__(config.name, config.timeout_seconds, connect, clock, executor)
        self.config = config
        self.collectors = tuple(collectors)

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
            session.query("probe", Q_PROBE)
        except Exception as error:
            return self.down(recorder, (c.name for c in self.collectors), start, error)
        latency_ms = (self.clock.monotonic() - start) * 1000
        for collector in self.collectors:
            recorder.run(collector.name, lambda c=collector: c.collect(session))  # type: ignore[misc]
        self.close_if_broken()
        return ScrapeResult(
            up=True,
            samples=tuple(recorder.samples),
            parts=recorder.parts,
            health=Health(up=True, latency_ms=round(latency_ms, 1)),
        )

"""PgBouncer through its admin console (simple query protocol): one connection per PgBouncer, and
the scrape that runs its collectors (``collectors/pgbouncer.py``) on it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pgstack_exporter.collector import Bound
from pgstack_exporter.config import PgBouncerTarget as PgBouncerConfig
from pgstack_exporter.runtime import Clock, Executor, Health, PartRecorder, ScrapeResult
from pgstack_exporter.sql import SqlConnector, SqlParams, SqlSession, SqlTarget

log = logging.getLogger(__name__)

KIND = "pgbouncer"
# Whether the admin console answers: pgstack_up and the latency /health reports.
Q_PROBE = "SHOW VERSION"


class PgBouncerTarget(SqlTarget):
    kind = KIND

    def __init__(
        self,
        config: PgBouncerConfig,
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
            dbname="pgbouncer",
            sslmode=c.sslmode,
            sslrootcert=c.sslrootcert,
            password_file=c.password_file,
            connect_timeout=max(2, int(c.timeout_seconds)),
            simple_protocol=True,
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

"""activity: backends by state, the oldest transaction and query, and blocked backends."""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, gauge, number, sample
from pgstack_exporter.postgresql import KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

CONNECTIONS = gauge(
    "postgresql_connections",
    "Backends by state and backend type.",
    "target",
    "state",
    "backend_type",
)
OLDEST_XACT = gauge(
    "postgresql_oldest_transaction_seconds",
    "Age of the oldest open transaction of a client backend (0: none).",
    "target",
)
LONGEST_QUERY = gauge(
    "postgresql_longest_query_seconds", "Run time of the longest active query (0: none).", "target"
)
LONGEST_IDLE_XACT = gauge(
    "postgresql_longest_idle_in_transaction_seconds",
    "Longest time a session has been idle in transaction, since its state change (0: none).",
    "target",
)
BLOCKED = gauge(
    "postgresql_blocked_backends",
    "Client backends waiting for a lock held by another backend.",
    "target",
)

Q_BACKENDS = """
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


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession]:
    def collect(session: SqlSession) -> list[Sample]:
        out = [
            sample(
                CONNECTIONS,
                number(row["backends"]),
                target=config.name,
                state=str(row["state"]),
                backend_type=str(row["backend_type"]),
            )
            for row in session.query("activity", Q_BACKENDS)
        ]
        times = session.query("times", Q_TIMES)[0]
        for spec, column in (
            (OLDEST_XACT, "oldest_xact"),
            (LONGEST_QUERY, "longest_query"),
            (LONGEST_IDLE_XACT, "longest_idle_xact"),
            (BLOCKED, "blocked"),
        ):
            out.append(sample(spec, number(times[column]), target=config.name))
        return out

    return collect


COLLECTOR = CollectorSpec(
    name="activity",
    kind=KIND,
    metrics=(CONNECTIONS, OLDEST_XACT, LONGEST_QUERY, LONGEST_IDLE_XACT, BLOCKED),
    factory=factory,
    part_of="postgresql",
)

"""recovery: a standby's own view of its replication: whether its WAL receiver streams from the
primary (``pg_stat_wal_receiver``, which shows its status to ``pg_read_all_stats``, a member of
``pg_monitor``), and how far replay is behind the WAL it has received.

Every server reports the three, a primary (not in recovery) with 0 for each: it receives and
replays nothing. The primary's view of its standbys is the ``replication`` collector's.
"""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, gauge, number, sample
from pgstack_exporter.postgresql import KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

STREAMING = gauge(
    "postgresql_wal_receiver_streaming",
    "1 while this standby's WAL receiver streams from the primary; 0 otherwise, and on a primary.",
    "target",
)
REPLAY_LAG_SECONDS = gauge(
    "postgresql_replay_lag_seconds",
    "Age of the last transaction this standby replayed while received WAL waits for replay "
    "(0 when replay has caught up, and on a primary).",
    "target",
)
REPLAY_LAG_BYTES = gauge(
    "postgresql_replay_lag_bytes",
    "WAL bytes this standby has received and not replayed yet (0 on a primary).",
    "target",
)

# On a primary the receive and replay positions and the replay time are NULL, and there is no
# WAL receiver (no row: NULL status).
QUERY = """
SELECT pg_is_in_recovery() AS in_recovery,
       (SELECT status FROM pg_stat_wal_receiver) AS receiver_status,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) AS unreplayed_bytes,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp()) AS last_replay_age
"""


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession]:
    def collect(session: SqlSession) -> list[Sample]:
        row = session.query("recovery", QUERY)[0]
        standby = bool(row["in_recovery"])
        unreplayed = max(0.0, number(row["unreplayed_bytes"])) if standby else 0.0
        # Caught up with what it received, a standby has no lag however old its last transaction
        # is (the primary may simply be idle); behind, the lag is that transaction's age.
        lag = max(0.0, number(row["last_replay_age"])) if unreplayed > 0 else 0.0
        streaming = standby and row["receiver_status"] == "streaming"
        t = config.name
        return [
            sample(STREAMING, 1.0 if streaming else 0.0, target=t),
            sample(REPLAY_LAG_SECONDS, lag, target=t),
            sample(REPLAY_LAG_BYTES, unreplayed, target=t),
        ]

    return collect


COLLECTOR = CollectorSpec(
    name="recovery",
    kind=KIND,
    metrics=(STREAMING, REPLAY_LAG_SECONDS, REPLAY_LAG_BYTES),
    factory=factory,
    part_of="postgresql",
)

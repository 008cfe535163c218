"""The primary and its streaming standby (pg_basebackup from it, in the stack): the role each
reports, the standby's WAL receiver and its replay lag, and the primary's slot and view of the
standby, while replay is paused and while the standby has no primary to stream from. Each test
leaves the standby streaming and caught up, as it found it."""

from __future__ import annotations

import time
from collections.abc import Callable

from exporter_servers import Postgres
from exporter_stack import ExporterProcess, Stack
from test_exporter_metrics import Metrics, value

PRIMARY = {"target": "primary"}
STANDBY = {"target": "standby"}
# The slot pg_basebackup -C -S made for the standby on the primary.
SLOT = {"target": "primary", "slot": "standby1", "slot_type": "physical"}


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def scrape_until(
    exporter: ExporterProcess, what: str, check: Callable[[Metrics], bool], timeout: float = 30
) -> Metrics:
    found: list[Metrics] = []

    def scraped() -> bool:
        found[:] = [exporter.metrics()]
        return check(found[0])

    wait_for(what, scraped, timeout)
    return found[0]


def one(pg: Postgres, sql: str) -> str:
    return pg.psql(sql).strip()


def caught_up(stack: Stack) -> bool:
    """The standby has replayed everything the primary has written."""
    written = one(stack.primary, "SELECT pg_current_wal_lsn()")
    return one(stack.standby, f"SELECT pg_last_wal_replay_lsn() >= '{written}'") == "t"


def roles(metrics: Metrics) -> dict[str, str]:
    """{target: role} of the role series (each is 1)."""
    found = {}
    for (name, labels), number in metrics.items():
        if name == "pgstack_postgresql_role":
            assert number == 1
            label = dict(labels)
            assert label["target"] not in found, f"two roles for {label['target']}"
            found[label["target"]] = label["role"]
    return found


def test_the_primary_and_the_standby_report_their_roles(
    stack: Stack, exporter: ExporterProcess
) -> None:
    metrics = exporter.metrics()
    assert roles(metrics) == {"primary": "primary", "standby": "replica"}
    assert value(metrics, "pgstack_postgresql_wal_receiver_streaming", **STANDBY) == 1
    assert value(metrics, "pgstack_postgresql_wal_receiver_streaming", **PRIMARY) == 0
    for metric in ("pgstack_postgresql_replay_lag_seconds", "pgstack_postgresql_replay_lag_bytes"):
        assert value(metrics, metric, **PRIMARY) == 0
    assert value(metrics, "pgstack_postgresql_replication_slot_active", **SLOT) == 1
    assert value(metrics, "pgstack_postgresql_replication_standbys", **PRIMARY) == 1


def test_replay_paused_on_the_standby_shows_as_its_lag(
    stack: Stack, exporter: ExporterProcess
) -> None:
    standby = stack.standby
    # A transaction the standby replays, then one it receives but does not replay (an xid and
    # its commit record are all either writes).
    stack.primary.psql("SELECT pg_current_xact_id()")
    wait_for("the standby caught up", lambda: caught_up(stack))
    before = time.time()
    standby.psql("SELECT pg_wal_replay_pause()")
    try:
        wait_for(
            "replay paused",
            lambda: one(standby, "SELECT pg_get_wal_replay_pause_state()") == "paused",
        )
        time.sleep(2)
        stack.primary.psql("SELECT pg_current_xact_id()")
        wait_for(
            "the standby received WAL it has not replayed",
            lambda: (
                one(standby, "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()") == "t"
            ),
        )
        metrics = scrape_until(
            exporter,
            "a replay lag in bytes",
            lambda m: value(m, "pgstack_postgresql_replay_lag_bytes", **STANDBY) > 0,
        )
        # The lag is the age of the last transaction replayed, the one before the pause.
        lag = value(metrics, "pgstack_postgresql_replay_lag_seconds", **STANDBY)
        assert 2 <= lag <= time.time() - before + 1
        assert value(metrics, "pgstack_postgresql_wal_receiver_streaming", **STANDBY) == 1
        # The primary sees the same standby behind, by what it has not replayed.
        assert value(metrics, "pgstack_postgresql_replication_lag_bytes", **PRIMARY) > 0
        assert value(metrics, "pgstack_postgresql_replay_lag_bytes", **PRIMARY) == 0
    finally:
        standby.psql("SELECT pg_wal_replay_resume()")
    wait_for("the standby caught up again", lambda: caught_up(stack))
    metrics = scrape_until(
        exporter,
        "no replay lag",
        lambda m: value(m, "pgstack_postgresql_replay_lag_bytes", **STANDBY) == 0,
    )
    assert value(metrics, "pgstack_postgresql_replay_lag_seconds", **STANDBY) == 0


def test_a_standby_without_a_primary_to_stream_from_is_not_streaming(
    stack: Stack, exporter: ExporterProcess
) -> None:
    standby = stack.standby
    conninfo = one(standby, "SHOW primary_conninfo")
    assert conninfo
    standby.psql("ALTER SYSTEM SET primary_conninfo = ''")
    standby.psql("SELECT pg_reload_conf()")
    try:
        metrics = scrape_until(
            exporter,
            "the WAL receiver stopped",
            lambda m: value(m, "pgstack_postgresql_wal_receiver_streaming", **STANDBY) == 0,
        )
        assert roles(metrics)["standby"] == "replica"
        metrics = scrape_until(
            exporter,
            "the standby's slot unused on the primary",
            lambda m: value(m, "pgstack_postgresql_replication_slot_active", **SLOT) == 0,
        )
        assert value(metrics, "pgstack_postgresql_replication_standbys", **PRIMARY) == 0
    finally:
        quoted = conninfo.replace("'", "''")
        standby.psql(f"ALTER SYSTEM SET primary_conninfo = '{quoted}'")
        standby.psql("SELECT pg_reload_conf()")
    metrics = scrape_until(
        exporter,
        "the WAL receiver streaming again",
        lambda m: value(m, "pgstack_postgresql_wal_receiver_streaming", **STANDBY) == 1,
    )
    assert value(metrics, "pgstack_postgresql_replication_slot_active", **SLOT) == 1
    wait_for("the standby caught up again", lambda: caught_up(stack))

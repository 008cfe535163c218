"""Collectors with fakes behind the seams, read through a private registry like Prometheus would."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from prometheus_client.registry import CollectorRegistry
from test_exporter_support import BySql, FakeClock, FakeRedisConnector, FakeSqlConnector

from pgstack_exporter.collectors.server import CHECKPOINTER_VIEW, IO_VIEW
from pgstack_exporter.config import Config, parse
from pgstack_exporter.exporter import COLLECTORS, Exporter, Seams
from pgstack_exporter.sql import Row
from release import all_facts

# The supported Debian releases and the versions they ship (roles/preflight/vars): the fakes
# answer as each release's PostgreSQL and PgBouncer would.
RELEASES = all_facts()
NEWEST = max(RELEASES.values(), key=lambda facts: int(facts["postgresql"]))


def version_num(facts: dict[str, str]) -> int:
    """server_version_num of the release's PostgreSQL major (its first minor release)."""
    return int(facts["postgresql"]) * 10000


def server_row(facts: dict[str, str]) -> dict[str, Any]:
    return {
        "in_recovery": False,
        "start_time": Decimal("1799990000.500000"),
        "wal_bytes": Decimal(50_331_648),
        "version_num": version_num(facts),
    }


# The checkpoint and background writer figures, the same on every version where a view has
# them, from the columns (aliased alike) of the query for each version: pg_stat_bgwriter alone
# before pg_stat_checkpointer existed, then pg_stat_checkpointer with the reduced
# pg_stat_bgwriter.
BGWRITER_ROW = {
    "checkpoints_timed": 40,
    "checkpoints_requested": 3,
    "checkpoint_write_time": 12_345.0,
    "checkpoint_sync_time": 67.0,
    "checkpoint_buffers": 1500,
    "bgwriter_buffers": 200,
    "maxwritten_clean": 1,
    "buffers_alloc": 9000,
    "backend_buffers": 700,
    "backend_fsyncs": 2,
}
CHECKPOINTER_ROW = {
    "checkpoints_timed": 40,
    "checkpoints_requested": 3,
    "checkpoint_write_time": 12_345.0,
    "checkpoint_sync_time": 67.0,
    "checkpoint_buffers": 1500,
    "restartpoints_timed": 5,
    "restartpoints_requested": 1,
    "restartpoints_done": 4,
    "bgwriter_buffers": 200,
    "maxwritten_clean": 1,
    "buffers_alloc": 9000,
}
# pg_stat_io summed by backend type (sum() of bigint is numeric); NULL where PostgreSQL counts
# no such operation for the backend type.
IO_ROWS = [
    {"backend_type": "client backend", "writes": Decimal(650), "fsyncs": Decimal(0)},
    {"backend_type": "checkpointer", "writes": Decimal(1500), "fsyncs": Decimal(90)},
    {"backend_type": "autovacuum launcher", "writes": Decimal(0), "fsyncs": None},
]
STATS_ANSWERS: dict[str, Any] = {
    "bgwriter": BySql(
        {"pg_stat_checkpointer": [CHECKPOINTER_ROW], "pg_stat_bgwriter": [BGWRITER_ROW]}
    ),
    "io": IO_ROWS,
}

PG_ANSWERS: dict[str, Any] = {
    "probe": [{"ok": 1}],
    "server": [server_row(NEWEST)],
    **STATS_ANSWERS,
    "settings": [
        {"name": "max_connections", "setting": "100", "pending_restart": False},
        {"name": "superuser_reserved_connections", "setting": "3", "pending_restart": False},
        {"name": "shared_buffers", "setting": "16384", "pending_restart": True},
    ],
    "activity": [
        {"state": "active", "backend_type": "client backend", "backends": 2},
        {"state": "none", "backend_type": "checkpointer", "backends": 1},
    ],
    "times": [{"oldest_xact": 12.5, "longest_query": 3.0, "longest_idle_xact": 7.0, "blocked": 1}],
    "databases": [
        {
            "datname": "app",
            "xact_commit": 10,
            "xact_rollback": 1,
            "blks_hit": 100,
            "blks_read": 5,
            "deadlocks": 0,
            "temp_bytes": 8192,
            "xid_age": 1234,
        },
    ],
    "replication": [
        {"standby": "db2", "client_addr": "10.0.0.2", "lag_seconds": 0.5, "lag_bytes": 4096}
    ],
    # A primary: no WAL receiver, and NULL receive and replay positions and replay time.
    "recovery": [
        {
            "in_recovery": False,
            "receiver_status": None,
            "unreplayed_bytes": None,
            "last_replay_age": None,
        }
    ],
    "slots": [
        {"slot_name": "db2", "slot_type": "physical", "active": True, "retained": 16_777_216}
    ],
    "sizes": [{"datname": "app", "size": 7_000_000}],
    # No WAL archived or failed yet: PostgreSQL reports NULL times (the query maps them to 0).
    "archiver": [
        {
            "archived_count": 0,
            "failed_count": 0,
            "last_archived": None,
            "last_failed": None,
            "archive_mode": "on",
        }
    ],
    "data_directory": [{"data_directory": "/"}],
    "ready": [{"ready": 3}],
}

# What each release's PgBouncer answers, column for column as its source writes them (SHOW
# POOLS and DATABASES in src/admin.c, SHOW STATS in src/stats.c, at pgbouncer_1_18_0 and
# pgbouncer_1_24_1): text, int4 and, for SHOW STATS, numeric columns. Keyed by the pgbouncer
# version of the release variables.
CONFIG_ROWS = [{"key": "max_client_conn", "value": "500", "default": "100", "changeable": "yes"}]
POOL = {
    "database": "app",
    "user": "app",
    "cl_active": 4,
    "cl_waiting": 2,
    "cl_active_cancel_req": 0,
    "cl_waiting_cancel_req": 0,
    "sv_active": 3,
    "sv_active_cancel": 0,
    "sv_being_canceled": 0,
    "sv_idle": 1,
    "sv_used": 0,
    "sv_tested": 0,
    "sv_login": 1,
    "maxwait": 1,
    "maxwait_us": 250000,
    "pool_mode": "transaction",
}
TOTALS = {
    "total_xact_count": Decimal(20),
    "total_query_count": Decimal(40),
    "total_received": Decimal(1000),
    "total_sent": Decimal(2000),
    "total_xact_time": Decimal(3_000_000),
    "total_query_time": Decimal(2_000_000),
    "total_wait_time": Decimal(500_000),
}
AVERAGES = {
    "avg_xact_count": Decimal(1),
    "avg_query_count": Decimal(2),
    "avg_recv": Decimal(10),
    "avg_sent": Decimal(20),
    "avg_xact_time": Decimal(5),
    "avg_query_time": Decimal(4),
    "avg_wait_time": Decimal(1),
}
PGBOUNCER_ROWS: dict[str, dict[str, list[Row]]] = {
    "1.18": {
        "probe": [{"version": "PgBouncer 1.18.0"}],
        "pools": [POOL],
        "stats": [{"database": "app", **TOTALS, **AVERAGES}],
        "config": CONFIG_ROWS,
        "databases": [
            {
                "name": "app",
                "host": "db1",
                "port": 5432,
                "database": "app",
                "force_user": None,
                "pool_size": 20,
                "min_pool_size": 0,
                "reserve_pool": 5,
                "pool_mode": None,
                "max_connections": 0,
                "current_connections": 4,
                "paused": 0,
                "disabled": 0,
            }
        ],
    },
    "1.24": {
        "probe": [{"version": "PgBouncer 1.24.1"}],
        "pools": [{**POOL, "load_balance_hosts": None}],
        "stats": [
            {
                "database": "app",
                "total_server_assignment_count": Decimal(20),
                **TOTALS,
                "total_client_parse_count": Decimal(6),
                "total_server_parse_count": Decimal(2),
                "total_bind_count": Decimal(30),
                "avg_server_assignment_count": Decimal(1),
                **AVERAGES,
                "avg_client_parse_count": Decimal(0),
                "avg_server_parse_count": Decimal(0),
                "avg_bind_count": Decimal(1),
            }
        ],
        "config": CONFIG_ROWS,
        "databases": [
            {
                "name": "app",
                "host": "db1",
                "port": 5432,
                "database": "app",
                "force_user": None,
                "pool_size": 20,
                "min_pool_size": 0,
                "reserve_pool_size": 5,
                "server_lifetime": 3600,
                "pool_mode": None,
                "load_balance_hosts": None,
                "max_connections": 0,
                "current_connections": 4,
                "max_client_connections": 0,
                "current_client_connections": 6,
                "paused": 1,
                "disabled": 0,
            }
        ],
    },
}
# The newest release's PgBouncer, for the tests that need one.
PGBOUNCER_ANSWERS = PGBOUNCER_ROWS[NEWEST["pgbouncer"]]

REDIS_INFO: dict[str, Any] = {
    "used_memory": 800,
    "maxmemory": 1000,
    "evicted_keys": 3,
    "expired_keys": 9,
    "connected_clients": 5,
    "blocked_clients": 1,
    "maxclients": 10000,
    "rejected_connections": 0,
    "total_commands_processed": 77,
    "rdb_last_save_time": 1_799_999_000,
    "rdb_last_bgsave_status": "ok",
    "db0": {"keys": 12, "expires": 2, "avg_ttl": 0},
}


def config(**sections: Any) -> Config:
    return parse({"version": 1, **sections})


PG = {"name": "db1", "host": "db1.test", "user": "mon", "tls_probe": False}
PGB = {"name": "db1", "host": "db1.test", "user": "mon", "tls_probe": False}
REDIS = {"name": "db1", "host": "db1.test", "username": "monitoring", "tls_probe": False}


def registry_of(cfg: Config, **seams: Any) -> tuple[Exporter, CollectorRegistry]:
    seams.setdefault("clock", FakeClock())
    exporter = Exporter(cfg, seams=Seams(**seams))
    return exporter, exporter.registry()


def test_postgresql_metrics_from_its_views() -> None:
    sql = FakeSqlConnector(PG_ANSWERS)
    _exp, reg = registry_of(config(postgresql=[PG]), sql=sql)
    t = {"target": "db1"}
    v = reg.get_sample_value
    assert v("pgstack_up", {"kind": "postgresql", "target": "db1"}) == 1
    assert (
        v(
            "pgstack_postgresql_connections",
            {**t, "state": "active", "backend_type": "client backend"},
        )
        == 2
    )
    assert v("pgstack_postgresql_max_connections", t) == 100
    assert v("pgstack_postgresql_reserved_connections", t) == 3
    assert v("pgstack_postgresql_settings_pending_restart", t) == 1
    assert v("pgstack_postgresql_commits_total", {**t, "database": "app"}) == 10
    assert v("pgstack_postgresql_temp_bytes_total", {**t, "database": "app"}) == 8192
    assert v("pgstack_postgresql_xid_age", {**t, "database": "app"}) == 1234
    assert v("pgstack_postgresql_longest_idle_in_transaction_seconds", t) == 7
    assert v("pgstack_postgresql_blocked_backends", t) == 1
    assert v("pgstack_postgresql_in_recovery", t) == 0
    assert v("pgstack_postgresql_role", {**t, "role": "primary"}) == 1
    assert v("pgstack_postgresql_role", {**t, "role": "replica"}) is None
    # A primary receives and replays nothing.
    assert v("pgstack_postgresql_wal_receiver_streaming", t) == 0
    assert v("pgstack_postgresql_replay_lag_seconds", t) == 0
    assert v("pgstack_postgresql_replay_lag_bytes", t) == 0
    assert (
        v(
            "pgstack_postgresql_replication_lag_bytes",
            {**t, "standby": "db2", "client_addr": "10.0.0.2"},
        )
        == 4096
    )
    assert (
        v(
            "pgstack_postgresql_replication_slot_retained_bytes",
            {**t, "slot": "db2", "slot_type": "physical"},
        )
        == 16_777_216
    )
    assert (
        v(
            "pgstack_postgresql_replication_slot_active",
            {**t, "slot": "db2", "slot_type": "physical"},
        )
        == 1
    )
    assert v("pgstack_postgresql_wal_bytes_total", t) == 50_331_648
    assert v("pgstack_postgresql_database_size_bytes", {**t, "database": "app"}) == 7_000_000
    assert v("pgstack_postgresql_data_directory_free_bytes", t) > 0
    assert v("pgstack_postgresql_archive_mode", {**t, "mode": "on"}) == 1
    assert v("pgstack_collector_success", {"collector": "postgresql", "target": "db1"}) == 1
    assert v("pgstack_collector_success", {"collector": "archiver", "target": "db1"}) == 1
    assert (
        v("pgstack_collector_duration_seconds", {"collector": "postgresql", "target": "db1"})
        is not None
    )


def test_archiver_before_any_archive_reports_zero_times() -> None:
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(PG_ANSWERS))
    t = {"target": "db1"}
    assert (
        reg.get_sample_value("pgstack_postgresql_archiver_last_archived_timestamp_seconds", t) == 0
    )
    assert reg.get_sample_value("pgstack_postgresql_archiver_last_failed_timestamp_seconds", t) == 0
    assert reg.get_sample_value("pgstack_postgresql_archiver_archived_total", t) == 0
    assert reg.get_sample_value("pgstack_postgresql_archiver_ready_segments", t) == 3


def test_no_standby_and_no_slot_give_zero_counts_and_no_lag_series() -> None:
    answers = {**PG_ANSWERS, "replication": [], "slots": []}
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(answers))
    assert reg.get_sample_value("pgstack_postgresql_replication_standbys", {"target": "db1"}) == 0
    assert reg.get_sample_value("pgstack_postgresql_replication_slots", {"target": "db1"}) == 0
    names = {s.name for m in reg.collect() for s in m.samples}
    assert "pgstack_postgresql_replication_lag_seconds" not in names


def standby_answers(status: str | None, unreplayed: float | None, age: float) -> dict[str, Any]:
    """A standby's answers: in recovery, its WAL receiver in ``status`` (None: no receiver),
    ``unreplayed`` bytes received and not replayed, its last replayed transaction ``age`` s old."""
    recovery = {
        "in_recovery": True,
        "receiver_status": status,
        "unreplayed_bytes": None if unreplayed is None else Decimal(unreplayed),
        "last_replay_age": Decimal(age),
    }
    return {
        **PG_ANSWERS,
        "server": [{**PG_ANSWERS["server"][0], "in_recovery": True}],
        "recovery": [recovery],
        "replication": [],
    }


def test_a_standby_is_a_replica_and_reports_its_receiver_and_replay_lag() -> None:
    answers = standby_answers("streaming", 8192, 12.5)
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(answers))
    t = {"target": "db1"}
    v = reg.get_sample_value
    assert v("pgstack_postgresql_in_recovery", t) == 1
    assert v("pgstack_postgresql_role", {**t, "role": "replica"}) == 1
    assert v("pgstack_postgresql_role", {**t, "role": "primary"}) is None
    assert v("pgstack_postgresql_wal_receiver_streaming", t) == 1
    assert v("pgstack_postgresql_replay_lag_seconds", t) == 12.5
    assert v("pgstack_postgresql_replay_lag_bytes", t) == 8192


def test_a_standby_that_replayed_all_it_received_has_no_lag() -> None:
    """However old its last transaction: the primary may simply have written nothing since."""
    answers = standby_answers("streaming", 0, 3600)
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(answers))
    t = {"target": "db1"}
    assert reg.get_sample_value("pgstack_postgresql_replay_lag_seconds", t) == 0
    assert reg.get_sample_value("pgstack_postgresql_replay_lag_bytes", t) == 0


@pytest.mark.parametrize(
    ("status", "unreplayed"),
    [(None, None), ("waiting", 0), ("starting", 0), ("stopping", 4096)],
    ids=["no-receiver", "waiting", "starting", "stopping"],
)
def test_a_standby_whose_receiver_does_not_stream(status: str | None, unreplayed: float) -> None:
    """No WAL receiver (nothing to connect to, or replaying from an archive), or one that is not
    streaming yet or any more: 0; a receive position it never had reads as nothing to replay."""
    answers = standby_answers(status, unreplayed, 60)
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(answers))
    t = {"target": "db1"}
    assert reg.get_sample_value("pgstack_postgresql_wal_receiver_streaming", t) == 0
    lag = reg.get_sample_value("pgstack_postgresql_replay_lag_seconds", t)
    assert lag == (60 if unreplayed else 0)
    assert reg.get_sample_value("pgstack_postgresql_replay_lag_bytes", t) == (unreplayed or 0)


def test_an_unused_slot_is_inactive() -> None:
    slot = {"slot_name": "db2", "slot_type": "physical", "active": False, "retained": 0}
    answers = {**PG_ANSWERS, "slots": [slot]}
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(answers))
    labels = {"target": "db1", "slot": "db2", "slot_type": "physical"}
    assert reg.get_sample_value("pgstack_postgresql_replication_slot_active", labels) == 0


def test_one_failing_query_fails_its_collector_but_not_the_target() -> None:
    answers = {
        **PG_ANSWERS,
        "ready": psycopg.errors.QueryCanceled("canceling statement due to lock timeout"),
    }
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(answers))
    assert reg.get_sample_value("pgstack_up", {"kind": "postgresql", "target": "db1"}) == 1
    assert (
        reg.get_sample_value(
            "pgstack_collector_success", {"collector": "archiver", "target": "db1"}
        )
        == 0
    )
    assert (
        reg.get_sample_value(
            "pgstack_collector_success", {"collector": "postgresql", "target": "db1"}
        )
        == 1
    )
    assert reg.get_sample_value("pgstack_postgresql_max_connections", {"target": "db1"}) == 100


def test_database_sizes_are_cached_and_their_age_exposed() -> None:
    clock = FakeClock()
    sql = FakeSqlConnector(PG_ANSWERS)
    _exp, reg = registry_of(
        config(postgresql=[{**PG, "database_size_interval_seconds": 60}]), sql=sql, clock=clock
    )
    reg.get_sample_value("pgstack_up", {"kind": "postgresql", "target": "db1"})
    clock.advance(30)
    assert (
        reg.get_sample_value("pgstack_postgresql_database_size_age_seconds", {"target": "db1"})
        == 30
    )
    clock.advance(31)
    assert (
        reg.get_sample_value("pgstack_postgresql_database_size_age_seconds", {"target": "db1"}) == 0
    )
    assert sql.sessions[0].queries.count("sizes") == 2


def test_a_target_that_raises_is_down_and_the_others_still_report() -> None:
    sql = FakeSqlConnector(PG_ANSWERS)
    sql.fail = psycopg.OperationalError("connection refused")
    redis = FakeRedisConnector(REDIS_INFO)
    _exp, reg = registry_of(config(postgresql=[PG], redis=[REDIS]), sql=sql, redis=redis)
    assert reg.get_sample_value("pgstack_up", {"kind": "postgresql", "target": "db1"}) == 0
    assert (
        reg.get_sample_value(
            "pgstack_collector_success", {"collector": "postgresql", "target": "db1"}
        )
        == 0
    )
    assert reg.get_sample_value("pgstack_up", {"kind": "redis", "target": "db1"}) == 1
    assert reg.get_sample_value("pgstack_redis_memory_used_bytes", {"target": "db1"}) == 800


def test_one_connection_is_reused_and_reopened_after_a_failure() -> None:
    sql = FakeSqlConnector(PG_ANSWERS)
    _exp, reg = registry_of(config(postgresql=[PG]), sql=sql)
    for _ in range(3):
        assert reg.get_sample_value("pgstack_up", {"kind": "postgresql", "target": "db1"}) == 1
    assert len(sql.sessions) == 1
    sql.sessions[0].is_broken = True
    assert reg.get_sample_value("pgstack_up", {"kind": "postgresql", "target": "db1"}) == 1
    assert len(sql.sessions) == 2
    assert sql.sessions[0].closed


def test_statement_and_lock_timeouts_are_sent_to_postgresql_only() -> None:
    sql = FakeSqlConnector({**PG_ANSWERS, **PGBOUNCER_ANSWERS, "probe": [{"ok": 1}]})
    _exp, reg = registry_of(config(postgresql=[PG], pgbouncer=[PGB]), sql=sql)
    reg.get_sample_value("pgstack_up", {"kind": "postgresql", "target": "db1"})
    pg, bouncer = sorted(sql.params, key=lambda p: p.dbname, reverse=True)
    assert (pg.statement_timeout_ms, pg.lock_timeout_ms, pg.simple_protocol) == (1500, 500, False)
    assert bouncer.dbname == "pgbouncer"
    assert bouncer.simple_protocol
    assert (bouncer.statement_timeout_ms, bouncer.lock_timeout_ms) == (None, None)


@pytest.mark.parametrize("codename", sorted(RELEASES))
def test_pgbouncer_columns_are_read_by_name(codename: str) -> None:
    answers = PGBOUNCER_ROWS[RELEASES[codename]["pgbouncer"]]
    sql = FakeSqlConnector(answers)
    _exp, reg = registry_of(config(pgbouncer=[PGB]), sql=sql)
    pool = {"target": "db1", "database": "app", "user": "app"}
    db = {"target": "db1", "database": "app"}
    v = reg.get_sample_value
    assert v("pgstack_up", {"kind": "pgbouncer", "target": "db1"}) == 1
    assert v("pgstack_pgbouncer_pool_client_connections", {**pool, "state": "waiting"}) == 2
    assert v("pgstack_pgbouncer_pool_server_connections", {**pool, "state": "login"}) == 1
    assert v("pgstack_pgbouncer_pool_max_wait_seconds", pool) == 1.25
    assert v("pgstack_pgbouncer_transactions_total", db) == 20
    assert v("pgstack_pgbouncer_query_time_seconds_total", db) == 2.0
    assert v("pgstack_pgbouncer_client_wait_time_seconds_total", db) == 0.5
    assert v("pgstack_pgbouncer_max_client_connections", {"target": "db1"}) == 500
    assert v("pgstack_pgbouncer_database_pool_size", db) == 20
    assert v("pgstack_pgbouncer_database_reserve_pool_size", db) == 5
    assert v("pgstack_pgbouncer_database_paused", db) == answers["databases"][0]["paused"]
    assert v("pgstack_collector_success", {"collector": "pgbouncer", "target": "db1"}) == 1
    # The counters of later releases (max_prepared_statements at work): there when SHOW STATS
    # has them, no series where it does not.
    stats = answers["stats"][0]
    later = {
        "pgstack_pgbouncer_server_assignments_total": "total_server_assignment_count",
        "pgstack_pgbouncer_client_parses_total": "total_client_parse_count",
        "pgstack_pgbouncer_server_parses_total": "total_server_parse_count",
        "pgstack_pgbouncer_binds_total": "total_bind_count",
    }
    for metric, column in later.items():
        expected = float(stats[column]) if column in stats else None
        assert v(metric, db) == expected, metric


def test_the_release_fixtures_cover_every_supported_release() -> None:
    assert {facts["pgbouncer"] for facts in RELEASES.values()} <= set(PGBOUNCER_ROWS)
    assert len(RELEASES) >= 2


@pytest.mark.parametrize("codename", sorted(RELEASES))
def test_checkpoint_figures_have_the_same_names_on_every_release(codename: str) -> None:
    facts = RELEASES[codename]
    version = version_num(facts)
    sql = FakeSqlConnector({**PG_ANSWERS, "server": [server_row(facts)]})
    _exp, reg = registry_of(config(postgresql=[PG]), sql=sql)
    t = {"target": "db1"}
    v = reg.get_sample_value
    assert v("pgstack_collector_success", {"collector": "server", "target": "db1"}) == 1
    assert v("pgstack_postgresql_checkpoints_timed_total", t) == 40
    assert v("pgstack_postgresql_checkpoints_requested_total", t) == 3
    assert v("pgstack_postgresql_checkpoint_write_time_seconds_total", t) == pytest.approx(12.345)
    assert v("pgstack_postgresql_checkpoint_sync_time_seconds_total", t) == pytest.approx(0.067)
    assert v("pgstack_postgresql_checkpoint_buffers_written_total", t) == 1500
    assert v("pgstack_postgresql_bgwriter_buffers_written_total", t) == 200
    assert v("pgstack_postgresql_bgwriter_maxwritten_clean_total", t) == 1
    assert v("pgstack_postgresql_buffers_allocated_total", t) == 9000
    # pg_stat_checkpointer: restartpoints, and no backend writes in pg_stat_bgwriter any more.
    checkpointer = version >= CHECKPOINTER_VIEW
    assert (v("pgstack_postgresql_restartpoints_done_total", t) == 4) is checkpointer
    assert (v("pgstack_postgresql_restartpoints_timed_total", t) is None) is not checkpointer
    assert (v("pgstack_postgresql_backend_buffers_written_total", t) == 700) is not checkpointer
    assert (v("pgstack_postgresql_backend_fsyncs_total", t) is None) is checkpointer
    # pg_stat_io: writes and fsyncs by backend type; none where PostgreSQL counts none.
    io = version >= IO_VIEW
    assert ("io" in sql.sessions[0].queries) is io
    client = {**t, "backend_type": "client backend"}
    launcher = {**t, "backend_type": "autovacuum launcher"}
    assert (v("pgstack_postgresql_io_writes_total", client) == 650) is io
    assert (
        v("pgstack_postgresql_io_fsyncs_total", {**t, "backend_type": "checkpointer"}) == 90
    ) is io
    assert (v("pgstack_postgresql_io_writes_total", launcher) == 0) is io
    assert v("pgstack_postgresql_io_fsyncs_total", launcher) is None


def test_a_failing_statistics_query_keeps_the_servers_own_figures() -> None:
    answers = {**PG_ANSWERS, "bgwriter": psycopg.errors.InsufficientPrivilege("permission denied")}
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(answers))
    t = {"target": "db1"}
    assert reg.get_sample_value("pgstack_collector_success", {"collector": "server", **t}) == 0
    assert reg.get_sample_value("pgstack_postgresql_in_recovery", t) == 0
    assert reg.get_sample_value("pgstack_postgresql_wal_bytes_total", t) == 50_331_648
    assert reg.get_sample_value("pgstack_postgresql_checkpoints_timed_total", t) is None


def test_redis_metrics_and_maxclients_from_config_get_when_info_lacks_it() -> None:
    info = {k: val for k, val in REDIS_INFO.items() if k != "maxclients"}
    _exp, reg = registry_of(
        config(redis=[REDIS]), redis=FakeRedisConnector(info, {"maxclients": "128"})
    )
    t = {"target": "db1"}
    assert reg.get_sample_value("pgstack_redis_max_clients", t) == 128
    assert reg.get_sample_value("pgstack_redis_db_keys", {**t, "db": "db0"}) == 12
    assert reg.get_sample_value("pgstack_redis_evicted_keys_total", t) == 3
    assert reg.get_sample_value("pgstack_redis_rdb_last_bgsave_success", t) == 1
    assert reg.get_sample_value("pgstack_redis_ping_seconds", t) is not None


def test_registration_never_connects() -> None:
    sql = FakeSqlConnector(PG_ANSWERS)
    redis = FakeRedisConnector(REDIS_INFO)
    exporter = Exporter(
        config(postgresql=[PG], redis=[REDIS]), seams=Seams(clock=FakeClock(), sql=sql, redis=redis)
    )
    exporter.registry()
    assert sql.params == []
    assert redis.connects == 0


def test_disabled_collectors_emit_nothing() -> None:
    sql = FakeSqlConnector(PG_ANSWERS)
    exporter = Exporter(
        config(postgresql=[PG]),
        enabled=[n for n in COLLECTORS if n != "archiver"],
        seams=Seams(clock=FakeClock(), sql=sql),
    )
    reg = exporter.registry()
    assert reg.get_sample_value("pgstack_up", {"kind": "postgresql", "target": "db1"}) == 1
    assert (
        reg.get_sample_value("pgstack_postgresql_archiver_ready_segments", {"target": "db1"})
        is None
    )
    assert "ready" not in sql.sessions[0].queries


def test_a_hanging_target_is_down_within_its_timeout_and_is_aborted() -> None:
    release = threading.Event()

    def hang() -> list[dict[str, Any]]:
        release.wait(10)
        raise psycopg.OperationalError("server closed the connection")

    sql = FakeSqlConnector({**PG_ANSWERS, "probe": hang})
    redis = FakeRedisConnector(REDIS_INFO)
    cfg = config(
        postgresql=[{**PG, "timeout_seconds": 1, "statement_timeout_ms": 500}], redis=[REDIS]
    )
    exporter = Exporter(cfg, seams=Seams(sql=sql, redis=redis))
    reg = exporter.registry()
    try:
        start = time.monotonic()
        exporter.start_round()
        assert reg.get_sample_value("pgstack_up", {"kind": "postgresql", "target": "db1"}) == 0
        assert reg.get_sample_value("pgstack_up", {"kind": "redis", "target": "db1"}) == 1
        assert time.monotonic() - start < 1.5
        assert sql.sessions[0].aborted.wait(1)
        assert exporter.health()["services"]["postgresql"]["status"] == "down"
    finally:
        release.set()
        exporter.close()


def test_concurrent_scrapes_share_one_connection() -> None:
    sql = FakeSqlConnector(
        {**PG_ANSWERS, "probe": lambda: (time.sleep(0.05), PG_ANSWERS["probe"])[1]}
    )
    exporter = Exporter(config(postgresql=[PG]), seams=Seams(sql=sql))
    reg = exporter.registry()
    try:
        with ThreadPoolExecutor(20) as pool:
            values = list(
                pool.map(
                    lambda _: reg.get_sample_value(
                        "pgstack_up", {"kind": "postgresql", "target": "db1"}
                    ),
                    range(20),
                )
            )
        assert values == [1] * 20
        assert len(sql.sessions) == 1
    finally:
        exporter.close()


def test_redis_db0_is_reported_as_zero_when_redis_holds_no_key() -> None:
    # INFO's keyspace section lists only databases that hold keys.
    info = {k: val for k, val in REDIS_INFO.items() if not k.startswith("db")}
    _exp, reg = registry_of(config(redis=[REDIS]), redis=FakeRedisConnector(info))
    assert reg.get_sample_value("pgstack_redis_db_keys", {"target": "db1", "db": "db0"}) == 0

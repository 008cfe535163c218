"""The collector registry: one declaration per collector, the switches it gives, per-collector
success and duration, and the scrape threads derived from the targets it builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from test_exporter_collectors import (
    BGWRITER_ROW,
    CHECKPOINTER_ROW,
    PG,
    PG_ANSWERS,
    PGB,
    PGBOUNCER_ANSWERS,
    REDIS,
    REDIS_INFO,
    config,
    registry_of,
)
from test_exporter_support import (
    BySql,
    FakeClock,
    FakeRedisConnector,
    FakeSqlConnector,
    FakeSqlSession,
)

from pgstack_exporter.cli import parser
from pgstack_exporter.collectors import DEFAULT_ON, REGISTRY, SWITCHES, selected
from pgstack_exporter.exporter import KINDS, Exporter, Seams
from pgstack_exporter.metrics import number

ROLE_SPECS = Path(__file__).resolve().parents[2] / "roles/exporter/meta/argument_specs.yml"
POSTGRESQL_PARTS = [s.name for s in REGISTRY if s.part_of == "postgresql"]
S = "pgstack_collector_success"
D = "pgstack_collector_duration_seconds"


def test_every_collector_is_declared_once_and_runs_on_a_known_kind() -> None:
    names = [spec.name for spec in REGISTRY]
    assert len(set(names)) == len(names)
    assert all(spec.kind in KINDS for spec in REGISTRY)
    groups = {spec.part_of for spec in REGISTRY} - {None}
    assert groups == {"postgresql"}
    assert not groups & set(names), "a group's series would collide with a collector's"
    assert all(spec.metrics for spec in REGISTRY)


def test_the_switches_keep_every_earlier_name() -> None:
    earlier = ["postgresql", "archiver", "pgbouncer", "redis", "dumps", "drills", "pgbackrest"]
    assert set([*earlier, "tls"]) <= set(SWITCHES)
    assert set(DEFAULT_ON) == set(SWITCHES)


def test_the_role_accepts_exactly_the_switches() -> None:
    specs = yaml.safe_load(ROLE_SPECS.read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert options["exporter_disabled_collectors"]["choices"] == list(SWITCHES)


def test_postgresql_switches_off_every_postgresql_collector_archiver_included() -> None:
    on = set(DEFAULT_ON) - {"postgresql"}
    assert not [s.name for s in selected(on) if s.kind == "postgresql"]
    sql = FakeSqlConnector(PG_ANSWERS)
    exporter = Exporter(config(postgresql=[PG]), on, Seams(clock=FakeClock(), sql=sql))
    assert exporter.targets == []
    assert exporter.health()["services"] == {}


def test_an_unknown_collector_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown collectors: nope"):
        selected(["nope"])


def test_one_part_switched_off_runs_no_query_and_leaves_the_others() -> None:
    sql = FakeSqlConnector(PG_ANSWERS)
    on = set(DEFAULT_ON) - {"sizes"}
    reg = Exporter(config(postgresql=[PG]), on, Seams(clock=FakeClock(), sql=sql)).registry()
    assert reg.get_sample_value(S, {"collector": "postgresql", "target": "db1"}) == 1
    assert reg.get_sample_value(S, {"collector": "sizes", "target": "db1"}) is None
    assert reg.get_sample_value("pgstack_postgresql_database_size_bytes", {}) is None
    assert "sizes" not in sql.sessions[0].queries


def test_the_no_collector_flag_of_a_part_and_of_its_group() -> None:
    args = parser().parse_args(["--no-collector.postgresql", "--no-collector.slots"])
    assert not args.collector_postgresql
    assert not args.collector_slots
    assert args.collector_activity
    assert args.collector_archiver


@pytest.mark.parametrize(
    ("query", "collector"),
    [
        ("server", "server"),
        ("bgwriter", "server"),
        ("io", "server"),
        ("settings", "settings"),
        ("activity", "activity"),
        ("times", "activity"),
        ("databases", "databases"),
        ("replication", "replication"),
        ("recovery", "recovery"),
        ("slots", "slots"),
        ("sizes", "sizes"),
        ("data_directory", "filesystem"),
    ],
)
def test_a_failing_query_fails_its_collector_and_its_group_only(query: str, collector: str) -> None:
    answers = {**PG_ANSWERS, query: psycopg.errors.QueryCanceled("canceling statement")}
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(answers))
    t = {"target": "db1"}
    assert reg.get_sample_value("pgstack_up", {"kind": "postgresql", **t}) == 1
    for name in [*POSTGRESQL_PARTS, "archiver"]:
        expected = 0 if name == collector else 1
        assert reg.get_sample_value(S, {"collector": name, **t}) == expected, name
    assert reg.get_sample_value(S, {"collector": "postgresql", **t}) == 0


def test_a_group_lasts_as_long_as_its_parts_together() -> None:
    _exp, reg = registry_of(config(postgresql=[PG]), sql=FakeSqlConnector(PG_ANSWERS))
    t = {"target": "db1"}
    group = reg.get_sample_value(D, {"collector": "postgresql", **t})
    parts = [reg.get_sample_value(D, {"collector": name, **t}) for name in POSTGRESQL_PARTS]
    assert group is not None
    assert None not in parts
    assert group == pytest.approx(sum(p for p in parts if p is not None))


def test_a_server_that_is_down_fails_every_collector_on_it() -> None:
    sql = FakeSqlConnector(PG_ANSWERS)
    sql.fail = psycopg.OperationalError("connection refused")
    _exp, reg = registry_of(config(postgresql=[PG]), sql=sql)
    for name in [*POSTGRESQL_PARTS, "archiver", "postgresql"]:
        assert reg.get_sample_value(S, {"collector": name, "target": "db1"}) == 0, name


def test_settings_off_in_the_configuration_leave_their_collector_out() -> None:
    cfg = config(postgresql=[{**PG, "archiver": False, "filesystem": False}])
    sql = FakeSqlConnector(PG_ANSWERS)
    _exp, reg = registry_of(cfg, sql=sql)
    assert reg.get_sample_value(S, {"collector": "archiver", "target": "db1"}) is None
    assert reg.get_sample_value(S, {"collector": "filesystem", "target": "db1"}) is None
    assert {"archiver", "ready", "data_directory"}.isdisjoint(sql.sessions[0].queries)


def test_one_scrape_thread_per_target() -> None:
    cfg = config(
        postgresql=[PG, {**PG, "name": "db2", "tls_probe": True}],
        pgbouncer=[PGB],
        redis=[REDIS],
        status_files={"directory": "/nonexistent"},
        pgbackrest={},
        tls={"probes": [{"name": "repo", "host": "db1.test", "port": 8432}]},
    )
    exporter = Exporter(cfg, seams=Seams(clock=FakeClock()))
    try:
        kinds = sorted(t.kind for t in exporter.targets)
        assert kinds == [
            "pgbackrest",
            "pgbouncer",
            "postgresql",
            "postgresql",
            "redis",
            "status_files",
            "tls",
            "tls",
        ]
        assert exporter.workers == len(exporter.targets)
    finally:
        exporter.close()


def bound(name: str, settings: Any) -> Any:
    spec = next(s for s in REGISTRY if s.name == name)
    collect = spec.factory(settings, FakeClock())
    assert collect is not None
    return spec, collect


@pytest.mark.parametrize("name", [*POSTGRESQL_PARTS, "archiver"])
def test_a_postgresql_collector_emits_only_its_own_metrics(name: str) -> None:
    spec, collect = bound(name, config(postgresql=[PG]).postgresql[0])
    samples = collect(FakeSqlSession(PG_ANSWERS))
    assert samples
    assert {s.spec for s in samples} <= set(spec.metrics)


# NULL in every numeric column PostgreSQL may leave empty reads as 0.
NULLS = {
    "server": [
        {**PG_ANSWERS["server"][0], "in_recovery": None, "start_time": None, "wal_bytes": None}
    ],
    "bgwriter": BySql(
        {
            "pg_stat_checkpointer": [dict.fromkeys(CHECKPOINTER_ROW)],
            "pg_stat_bgwriter": [dict.fromkeys(BGWRITER_ROW)],
        }
    ),
    "io": [{"backend_type": "client backend", "writes": None, "fsyncs": None}],
    "times": [
        {"oldest_xact": None, "longest_query": None, "longest_idle_xact": None, "blocked": 0}
    ],
    "databases": [
        {
            "datname": "app",
            **dict.fromkeys(
                ["xact_commit", "xact_rollback", "blks_hit", "blks_read", "deadlocks"], None
            ),
            "temp_bytes": None,
            "xid_age": None,
        }
    ],
    "replication": [
        {"standby": "db2", "client_addr": "local", "lag_seconds": None, "lag_bytes": None}
    ],
    "recovery": [
        {
            "in_recovery": None,
            "receiver_status": None,
            "unreplayed_bytes": None,
            "last_replay_age": None,
        }
    ],
    "slots": [{"slot_name": "s", "slot_type": "logical", "active": None, "retained": None}],
    "sizes": [{"datname": "app", "size": None}],
}


@pytest.mark.parametrize(
    "name", ["server", "activity", "databases", "replication", "recovery", "slots", "sizes"]
)
def test_null_values_read_as_zero(name: str) -> None:
    _spec, collect = bound(name, config(postgresql=[PG]).postgresql[0])
    samples = collect(FakeSqlSession({**PG_ANSWERS, **NULLS}))
    # Row counts and the sizes' age are never NULL; the role is 1 for the one it names.
    counts = {
        "postgresql_connections",
        "postgresql_replication_standbys",
        "postgresql_replication_slots",
        "postgresql_database_size_age_seconds",
        "postgresql_role",
    }
    values = [s.value for s in samples if s.spec.name not in counts]
    assert values
    assert set(values) == {0.0}, samples


def test_number_reads_null_as_zero() -> None:
    assert number(None) == 0.0
    assert number(3) == 3.0


def test_pgbouncer_shows_what_it_read_when_one_command_fails() -> None:
    answers = {
        "probe": PGBOUNCER_ANSWERS["probe"],
        "pools": [],
        "stats": psycopg.errors.ProtocolViolation("unknown command"),
        "config": [{"key": "max_client_conn", "value": "500"}],
        "databases": [],
    }
    _exp, reg = registry_of(config(pgbouncer=[PGB]), sql=FakeSqlConnector(answers))
    assert reg.get_sample_value(S, {"collector": "pgbouncer", "target": "db1"}) == 0
    assert (
        reg.get_sample_value("pgstack_pgbouncer_max_client_connections", {"target": "db1"}) == 500
    )


def test_redis_collector_on_its_own_target() -> None:
    _exp, reg = registry_of(config(redis=[REDIS]), redis=FakeRedisConnector(REDIS_INFO))
    assert reg.get_sample_value(S, {"collector": "redis", "target": "db1"}) == 1

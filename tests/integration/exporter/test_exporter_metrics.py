"""Every metric of docs/metrics.md, from real servers, with a plausible value."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import psycopg
from exporter_servers import ADMIN_USER
from exporter_stack import REPO, ExporterProcess, Stack

ROW = re.compile(r"^\| `(pgstack_[a-z0-9_]+)` \|")
CATALOGUE = [
    m.group(1)
    for line in (REPO / "docs/metrics.md").read_text().splitlines()
    if (m := ROW.match(line))
]
Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]
# Metrics whose source only some versions have (docs/metrics.md says which): the view and
# column of PostgreSQL, or the SHOW STATS column of PgBouncer, each is read from.
POSTGRESQL_SOURCES = {
    "pgstack_postgresql_restartpoints_timed_total": ("pg_stat_checkpointer", "restartpoints_timed"),
    "pgstack_postgresql_restartpoints_requested_total": (
        "pg_stat_checkpointer",
        "restartpoints_req",
    ),
    "pgstack_postgresql_restartpoints_done_total": ("pg_stat_checkpointer", "restartpoints_done"),
    "pgstack_postgresql_backend_buffers_written_total": ("pg_stat_bgwriter", "buffers_backend"),
    "pgstack_postgresql_backend_fsyncs_total": ("pg_stat_bgwriter", "buffers_backend_fsync"),
    "pgstack_postgresql_io_writes_total": ("pg_stat_io", "writes"),
    "pgstack_postgresql_io_fsyncs_total": ("pg_stat_io", "fsyncs"),
}
PGBOUNCER_SOURCES = {
    "pgstack_pgbouncer_server_assignments_total": "total_server_assignment_count",
    "pgstack_pgbouncer_client_parses_total": "total_client_parse_count",
    "pgstack_pgbouncer_server_parses_total": "total_server_parse_count",
    "pgstack_pgbouncer_binds_total": "total_bind_count",
}
# Metrics of targets this stack has none of: the module named checks each of them.
ELSEWHERE = {"pgstack_sentinel_": "test_exporter_sentinel_servers.py"}


def value(metrics: Metrics, name: str, **labels: str) -> float:
    matches = [v for (n, ls), v in metrics.items() if n == name and set(labels.items()) <= ls]
    assert len(matches) == 1, f"{name}{labels}: {len(matches)} series"
    return matches[0]


def wait_for_pgbackrest(exporter: ExporterProcess, timeout: float = 30) -> Metrics:
    deadline = time.monotonic() + timeout
    while True:
        metrics = exporter.metrics()
        if (
            metrics.get(("pgstack_pgbackrest_info_success", frozenset())) == 1
            or time.monotonic() > deadline
        ):
            return metrics
        time.sleep(0.5)


def missing_sources(stack: Stack) -> set[str]:
    """The versioned metrics whose source the stack's PostgreSQL or PgBouncer lacks."""
    missing = set()
    for metric, (view, column) in POSTGRESQL_SOURCES.items():
        found = stack.primary.psql(
            "SELECT count(*) FROM pg_attribute"
            f" WHERE attrelid = to_regclass('pg_catalog.{view}') AND attname = '{column}'"
        )
        if found.strip() == "0":
            missing.add(metric)
    with (
        psycopg.connect(
            host="127.0.0.1",
            port=stack.pgbouncer.port,
            dbname="pgbouncer",
            user=ADMIN_USER,
            password=stack.pgbouncer.admin_password,
            sslmode="require",
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,
        ) as admin,
        admin.cursor() as cursor,
    ):
        cursor.execute("SHOW STATS")
        columns = {c.name for c in cursor.description or ()}
    missing |= {m for m, column in PGBOUNCER_SOURCES.items() if column not in columns}
    return missing


def test_every_catalogued_metric_appears_with_a_plausible_value(
    stack: Stack, exporter: ExporterProcess
) -> None:
    metrics = wait_for_pgbackrest(exporter)
    names = {name for name, _labels in metrics}
    assert len(CATALOGUE) > 80
    # A metric whose source the servers' versions lack has no series (and only such a one).
    absent = missing_sources(stack)
    expected = {name for name in CATALOGUE if not name.startswith(tuple(ELSEWHERE))} - absent
    assert sorted(expected - names) == [], "catalogued metrics missing from /metrics"
    assert sorted(absent & names) == [], "metrics of views or columns the servers lack"
    assert {n for n in names if n.startswith("pgstack_")} <= set(CATALOGUE)
    assert all(math.isfinite(v) and v >= 0 for v in metrics.values())
    now = time.time()
    for kind, target in [
        ("postgresql", "primary"),
        ("postgresql", "standby"),
        ("pgbouncer", "bouncer"),
        ("redis", "cache"),
        ("pgbackrest", "repository"),
        ("status_files", str(stack.status_dir)),
        ("tls", "postgresql/primary"),
        ("tls", "pgbouncer/bouncer"),
        ("tls", "redis/cache"),
        ("tls", "pgbackrest/local"),
    ]:
        assert value(metrics, "pgstack_up", kind=kind, target=target) == 1, (kind, target)
    assert {v for (n, _l), v in metrics.items() if n == "pgstack_collector_success"} == {1.0}
    primary = {"target": "primary"}
    assert value(metrics, "pgstack_postgresql_in_recovery", **primary) == 0
    assert value(metrics, "pgstack_postgresql_in_recovery", target="standby") == 1
    assert value(metrics, "pgstack_postgresql_max_connections", **primary) == 100
    assert now - 3600 < value(metrics, "pgstack_postgresql_start_time_seconds", **primary) < now
    assert value(metrics, "pgstack_postgresql_wal_bytes_total", **primary) > 16 * 2**20
    # The backup and the standby's base backup each asked for a checkpoint.
    assert value(metrics, "pgstack_postgresql_checkpoints_requested_total", **primary) >= 1
    assert value(metrics, "pgstack_postgresql_checkpoint_buffers_written_total", **primary) > 0
    assert value(metrics, "pgstack_postgresql_buffers_allocated_total", **primary) > 0
    assert value(metrics, "pgstack_postgresql_archiver_archived_total", **primary) >= 1
    assert (
        now - 3600
        < value(metrics, "pgstack_postgresql_archiver_last_archived_timestamp_seconds", **primary)
        <= now
    )
    assert value(metrics, "pgstack_postgresql_replication_standbys", **primary) == 1
    assert (
        value(
            metrics,
            "pgstack_postgresql_replication_slot_retained_bytes",
            slot="standby1",
            **primary,
        )
        >= 0
    )
    assert (
        value(metrics, "pgstack_postgresql_database_size_bytes", database="postgres", **primary)
        > 2**20
    )
    assert value(metrics, "pgstack_postgresql_data_directory_free_bytes", **primary) > 0
    assert value(metrics, "pgstack_pgbouncer_max_client_connections", target="bouncer") == 200
    assert (
        value(metrics, "pgstack_pgbouncer_database_pool_size", target="bouncer", database="app")
        == 5
    )
    assert value(metrics, "pgstack_redis_memory_max_bytes", target="cache") == 64 * 2**20
    assert value(metrics, "pgstack_redis_db_keys", target="cache", db="db0") >= 1
    assert value(metrics, "pgstack_redis_ping_seconds", target="cache") < 1
    stanza = {"stanza": "main"}
    assert (
        now - 3600
        < value(
            metrics,
            "pgstack_pgbackrest_last_backup_completion_timestamp_seconds",
            type="full",
            **stanza,
        )
        < now
    )
    assert value(metrics, "pgstack_pgbackrest_repository_size_bytes", **stanza) > 0
    wal_max = value(metrics, "pgstack_pgbackrest_archive_wal_position_bytes", bound="max", **stanza)
    assert 0 < wal_max <= value(metrics, "pgstack_postgresql_wal_bytes_total", **primary)
    for endpoint in ("postgresql/primary", "pgbouncer/bouncer", "redis/cache", "pgbackrest/local"):
        not_after = value(
            metrics, "pgstack_tls_certificate_not_after_timestamp_seconds", endpoint=endpoint
        )
        assert now + 6 * 86400 < not_after < now + 8 * 86400, (
            endpoint
        )  # the test certificate: 7 days
    assert value(metrics, "pgstack_drill_rpo_seconds", drill="pitr") == 6


def test_a_failed_dump_status_file_shows(stack: Stack, exporter: ExporterProcess) -> None:
    path: Path = stack.status_dir / "pg_dump-db1-shop.json"
    path.write_text(
        '{"version": 1, "kind": "pg_dump", "cluster": "db1", "database": "shop",'
        ' "last_attempt": {"started_at": "2026-11-24T03:00:00Z",'
        ' "finished_at": "2026-11-24T03:00:02Z", "duration_seconds": 2.0,'
        ' "exit_status": "failed", "error": "pg_dump exited 1", "path": null,'
        ' "size_bytes": null}, "last_success": null}'
    )
    try:
        metrics = exporter.metrics()
        shop = {"cluster": "db1", "database": "shop"}
        assert value(metrics, "pgstack_dump_last_attempt_status", status="failed", **shop) == 1
        assert value(metrics, "pgstack_dump_last_success_timestamp_seconds", **shop) == 0
        assert (
            value(
                metrics,
                "pgstack_dump_last_attempt_status",
                status="success",
                cluster="db1",
                database="app",
            )
            == 1
        )
    finally:
        path.unlink()

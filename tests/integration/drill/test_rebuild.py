"""Rebuild drills against the session's primary, over TLS as pgstack_backup, as on the backup host.

The primary stands in for the rebuilt host: the drill only reads it. A standby made from it with
pg_basebackup stands in for a host left in recovery.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from drill_helpers import (
    BIN,
    CLUSTER,
    MAJOR,
    DrillDirs,
    Primary,
    as_postgres,
    free_port,
    owned_dir,
    stop_postmaster,
)

from pgstack_drill.cli import main
from pgstack_drill.status import format_time


def dbname(primary: Primary, passfile: Path, port: int | None = None, user: str = "") -> str:
    return (
        f"host=127.0.0.1 port={port or primary.port} dbname=postgres "
        f"user={user or 'pgstack_backup'} passfile={passfile} "
        f"sslmode=verify-full sslrootcert={primary.cert}"
    )


def rebuild(dirs: DrillDirs, conninfo: str, started: datetime, *extra: str) -> int:
    return main(
        [
            "rebuild",
            "--cluster",
            CLUSTER,
            "--reports-dir",
            str(dirs.reports),
            "--status-dir",
            str(dirs.status),
            "--no-progress",
            "--dbname",
            conninfo,
            "--started-at",
            format_time(started),
            *extra,
        ]
    )


def server_now(primary: Primary) -> datetime:
    moment: datetime = primary.execute("SELECT now()")[0][0]
    return moment.replace(microsecond=0)


def beat(primary: Primary, at: datetime) -> None:
    primary.execute(
        "CREATE TABLE IF NOT EXISTS pgstack_heartbeat (id smallint PRIMARY KEY "
        "DEFAULT 1 CHECK (id = 1), beat_at timestamptz NOT NULL)"
    )
    primary.execute(
        f"INSERT INTO pgstack_heartbeat VALUES (1, '{at.isoformat()}') "
        "ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at"
    )


def test_a_rebuilt_primary_passes_with_rto_rpo_and_phases(
    primary: Primary, backup_passfile: Path, drill_dirs: DrillDirs
) -> None:
    table = f"rebuilt_{secrets.token_hex(4)}"
    primary.execute(f"CREATE TABLE {table} AS SELECT g AS id FROM generate_series(1, 3) g")
    started = server_now(primary) - timedelta(seconds=20)
    beat(primary, started - timedelta(seconds=12))

    def at(seconds: int) -> str:
        return format_time(started + timedelta(seconds=seconds))

    code = rebuild(
        drill_dirs,
        dbname(primary, backup_passfile),
        started,
        "--phase",
        f"restore={at(2)}/{at(10)}",
        "--phase",
        f"converge={at(10)}/{at(15)}",
        "--expect-table",
        f"postgres:public.{table}",
        "--check",
        f"postgres:SELECT count(*) = 3 FROM {table}",
        "--check",
        "postgres:SELECT current_setting('transaction_read_only') = 'on'",
    )

    report = drill_dirs.report()
    assert code == 0, report["error"]
    phases = {p["name"]: p for p in report["phases"]}
    assert list(phases) == ["restore", "converge", "verify"]
    assert (phases["restore"]["start_seconds"], phases["restore"]["duration_seconds"]) == (2, 8)
    assert phases["verify"]["start_seconds"] >= 20
    assert 20 <= report["rto_seconds"] < 30
    assert report["rto_seconds"] == pytest.approx(
        phases["verify"]["start_seconds"] + phases["verify"]["duration_seconds"], abs=0.01
    )
    assert report["rpo_seconds"] == pytest.approx(12.0)
    assert report["verification"]["tables"] == [
        {"table": f"postgres:public.{table}", "rows": 3, "ok": True}
    ]
    assert [c["ok"] for c in report["verification"]["checks"]] == [True, True]
    identifier = primary.execute("SELECT system_identifier::text FROM pg_control_system()")
    assert report["source"]["system_identifier"] == identifier[0][0]
    assert report["source"]["timeline"] == 1
    assert report["source"]["host"] == "127.0.0.1"
    assert report["source"]["server_version"].startswith(f"{MAJOR}.")
    status = drill_dirs.status_file("rebuild")
    assert status["last_success"]["started_at"] == format_time(started)
    assert status["last_success"]["rto_seconds"] == pytest.approx(report["rto_seconds"], abs=0.1)
    assert status["last_success"]["rpo_seconds"] == 12.0
    assert (
        drill_dirs.reports / f"{format_time(started).replace('-', '').replace(':', '')}"
        "-rebuild.html"
    ).is_file()


def test_no_heartbeat_fails(primary: Primary, backup_passfile: Path, drill_dirs: DrillDirs) -> None:
    database = "rebuild_without_heartbeat"
    if not primary.execute(f"SELECT 1 FROM pg_database WHERE datname = '{database}'"):
        primary.execute(f"CREATE DATABASE {database}")
    started = server_now(primary)
    code = rebuild(
        drill_dirs,
        dbname(primary, backup_passfile),
        started,
        "--heartbeat-database",
        database,
    )
    assert code == 1
    report = drill_dirs.report()
    assert report["error"] == f"RPO not measured: no pgstack_heartbeat row in database {database}"
    assert drill_dirs.status_file("rebuild")["last_attempt"]["result"] == "failed"


def test_a_failed_check_fails_naming_it(
    primary: Primary, backup_passfile: Path, drill_dirs: DrillDirs
) -> None:
    started = server_now(primary)
    beat(primary, started - timedelta(seconds=5))
    query = "SELECT count(*) = 0 FROM pg_database"
    code = rebuild(
        drill_dirs, dbname(primary, backup_passfile), started, "--check", f"postgres:{query}"
    )
    assert code == 1
    assert drill_dirs.report()["error"] == f"verification: check on postgres is not true: {query}"


def refused(dirs: DrillDirs, conninfo: str, primary: Primary, port: int) -> str:
    """Run a drill that cannot connect: exit 3, an error, the libpq message it gives."""
    assert rebuild(dirs, conninfo, server_now(primary)) == 3
    assert dirs.status_file("rebuild")["last_attempt"]["result"] == "error"
    error: str = dirs.report()["error"]
    assert error.startswith(f"cannot connect to 127.0.0.1:{port}: ")
    return error


def test_an_unreachable_port_is_a_precondition(
    primary: Primary, backup_passfile: Path, drill_dirs: DrillDirs
) -> None:
    port = free_port()
    error = refused(drill_dirs, dbname(primary, backup_passfile, port), primary, port)
    assert "Connection refused" in error


def test_a_refused_login_is_a_precondition(
    primary: Primary, backup_passfile: Path, drill_dirs: DrillDirs
) -> None:
    conninfo = dbname(primary, backup_passfile, user="pgstack_nobody")
    error = refused(drill_dirs, conninfo, primary, primary.port)
    assert "no password supplied" in error


@pytest.fixture
def standby(primary: Primary) -> Iterator[int]:
    """A hot standby of the primary (pg_basebackup -R), listening on 127.0.0.1 with TLS."""
    data = owned_dir(primary.base / f"standby-{secrets.token_hex(4)}")
    as_postgres(
        [
            str(BIN / "pg_basebackup"),
            "-h",
            str(primary.socket_dir),
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ]
    )
    port = free_port()
    settings = f"-p {port} -c unix_socket_directories='{data}' -c archive_mode=off"
    as_postgres(
        [
            str(BIN / "pg_ctl"),
            "start",
            "-w",
            "-D",
            str(data),
            "-l",
            str(data / "log"),
            "-o",
            settings,
        ],
        cwd=str(primary.base),
    )
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    try:
        yield port
    finally:
        stop_postmaster(data, pid)
        shutil.rmtree(data, ignore_errors=True)


def test_a_standby_fails(
    primary: Primary, backup_passfile: Path, drill_dirs: DrillDirs, standby: int
) -> None:
    started = server_now(primary)
    beat(primary, started - timedelta(seconds=5))
    passfile = drill_dirs.status.parent / "pgpass"
    passfile.write_text(backup_passfile.read_text().replace(f":{primary.port}:", f":{standby}:"))
    passfile.chmod(0o600)
    code = rebuild(drill_dirs, dbname(primary, passfile, standby), started)
    assert code == 1
    report = drill_dirs.report()
    assert report["error"].startswith(
        f"verification: 127.0.0.1:{standby} is in recovery (a standby), not a primary"
    )
    assert report["source"]["in_recovery"] is True

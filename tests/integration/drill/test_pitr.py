"""PITR drills against the session's pgBackRest repository (one full backup, WAL archived since)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from drill_helpers import REPO_ROOT, STANZA, DrillDirs, Primary

from pgstack_drill.cli import main


def pitr(primary: Primary, dirs: DrillDirs, *extra: str) -> int:
    return main(
        [
            "pitr",
            *dirs.common(),
            "--no-progress",
            "--stanza",
            STANZA,
            "--pgbackrest-config",
            str(primary.repo_config),
            *extra,
        ]
    )


def test_a_restore_point_before_a_drop_brings_the_table_back(
    primary: Primary, drill_dirs: DrillDirs
) -> None:
    table = f"precious_{secrets.token_hex(4)}"
    point = f"before-drop-{table}"
    primary.execute(
        f"CREATE TABLE {table} AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 500) g"
    )
    primary.execute(f"SELECT pg_create_restore_point('{point}')")
    primary.execute(f"DROP TABLE {table}")
    primary.pgbackrest("check")  # switches WAL and waits until the segment is archived

    code = pitr(
        primary,
        drill_dirs,
        "--target-name",
        point,
        "--expect-table",
        f"postgres:public.{table}",
        "--check",
        f"postgres:SELECT count(*) = 500 FROM {table}",
    )

    report = drill_dirs.report()
    assert code == 0, report["error"]
    assert report["verification"]["tables"] == [
        {"table": f"postgres:public.{table}", "rows": 500, "ok": True}
    ]
    assert report["verification"]["checks"][0]["ok"] is True
    assert report["source"]["target"] == f"name {point}"
    assert report["rpo_seconds"] is None  # no disaster time for a named target
    assert [p["name"] for p in report["phases"]] == [
        "backup info",
        "restore",
        "recover",
        "verify",
        "cleanup",
    ]
    assert drill_dirs.status_file("pitr")["last_attempt"]["result"] == "passed"
    assert drill_dirs.leftovers() == []
    assert primary.execute(f"SELECT to_regclass('{table}')") == [(None,)]  # the primary untouched


def test_a_missing_restore_point_fails(primary: Primary, drill_dirs: DrillDirs) -> None:
    assert pitr(primary, drill_dirs, "--target-name", "no-such-point") == 1
    assert "recovery" in drill_dirs.report()["error"]
    assert drill_dirs.leftovers() == []


@pytest.fixture
def heartbeat(primary: Primary) -> Iterator[None]:
    """``pgstack-drill heartbeat`` writing every second on the primary while the test runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgstack_drill", "heartbeat", "--dbname", primary.conninfo()],
        cwd=REPO_ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            exists = primary.execute("SELECT to_regclass('pgstack_heartbeat') IS NOT NULL")
            if exists == [(True,)] and primary.execute(
                "SELECT count(*) FROM pgstack_heartbeat"
            ) == [(1,)]:
                break
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.usefixtures("heartbeat")
def test_end_of_archive_reports_the_rpo_from_the_heartbeat(
    primary: Primary, drill_dirs: DrillDirs
) -> None:
    time.sleep(2)
    primary.pgbackrest("check")
    assert pitr(primary, drill_dirs) == 0, drill_dirs.report()["error"]
    report = drill_dirs.report()
    assert report["source"]["target"] == "the end of the archive"
    assert report["rpo_seconds"] is not None
    assert 0 <= report["rpo_seconds"] < 30
    assert report["source"]["newest_heartbeat"]
    status = drill_dirs.status_file("pitr")["last_attempt"]
    assert status["rpo_seconds"] == pytest.approx(report["rpo_seconds"], abs=0.1)
    assert drill_dirs.leftovers() == []


def test_an_rpo_over_the_objective_fails(primary: Primary, drill_dirs: DrillDirs) -> None:
    """A disaster "a day after" the newest heartbeat: the RPO objective is missed (exit 1)."""
    primary.execute(
        "CREATE TABLE IF NOT EXISTS pgstack_heartbeat (id smallint PRIMARY KEY "
        "DEFAULT 1 CHECK (id = 1), beat_at timestamptz NOT NULL)"
    )
    primary.execute(
        "INSERT INTO pgstack_heartbeat VALUES (1, now()) "
        "ON CONFLICT (id) DO UPDATE SET beat_at = now()"
    )
    primary.pgbackrest("check")
    disaster = primary.execute(
        "SELECT to_char(now() + interval '1 day', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    )[0][0]
    assert pitr(primary, drill_dirs, "--disaster-time", disaster) == 1
    report = drill_dirs.report()
    assert report["rpo_seconds"] > 80000
    assert "RPO" in report["error"]


def test_a_live_data_directory_or_port_is_refused(primary: Primary, drill_dirs: DrillDirs) -> None:
    before = sorted(p.name for p in primary.data.iterdir())
    args = [*drill_dirs.common()]
    args[args.index("--scratch-dir") + 1] = str(primary.data)
    assert main(["pitr", *args, "--stanza", STANZA]) == 3
    assert sorted(p.name for p in primary.data.iterdir()) == before
    args = [*drill_dirs.common()]
    args[args.index("--port") + 1] = str(primary.port)
    assert main(["pitr", *args, "--stanza", STANZA]) == 3
    assert "in use" in drill_dirs.status_file("pitr")["last_attempt"]["error"]
    assert drill_dirs.leftovers() == []

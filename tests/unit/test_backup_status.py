"""The backup status file (format version 1): the writer produces what docs/backup.md says."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgstack_backup.status import (
    Attempt,
    Status,
    read_status,
    record,
    status_path,
    write_status,
)

T0 = datetime(2026, 11, 23, 3, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 23, 3, 0, 12, tzinfo=UTC)


def success(path: str = "/d/app/20261123T030000Z") -> Attempt:
    return Attempt(
        started_at=T0, finished_at=T1, duration_seconds=12.0, exit_status="success",
        path=path, size_bytes=1234,
    )  # fmt: skip


def test_status_path_names_kind_cluster_and_database(tmp_path: Path) -> None:
    assert status_path(tmp_path, "db1", "app") == tmp_path / "pg_dump-db1-app.json"


def test_a_success_is_the_last_attempt_and_the_last_success(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    record(path, Status(cluster="db1", database="app"), success())
    data = json.loads(path.read_text())
    assert data == {
        "version": 1,
        "kind": "pg_dump",
        "cluster": "db1",
        "database": "app",
        "last_attempt": {
            "started_at": "2026-11-23T03:00:00Z",
            "finished_at": "2026-11-23T03:00:12Z",
            "duration_seconds": 12.0,
            "exit_status": "success",
            "error": None,
            "path": "/d/app/20261123T030000Z",
            "size_bytes": 1234,
        },
        "last_success": data["last_attempt"],
    }


def test_a_failure_keeps_the_previous_success(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    status = record(path, Status(cluster="db1", database="app"), success())
    failed = Attempt(started_at=T1, finished_at=T1, duration_seconds=0.5,
                     exit_status="failed", error="cannot write in /d/app")  # fmt: skip
    record(path, status, failed)
    data = json.loads(path.read_text())
    assert data["last_attempt"]["exit_status"] == "failed"
    assert data["last_attempt"]["error"] == "cannot write in /d/app"
    assert data["last_attempt"]["path"] is None
    assert data["last_success"]["path"] == "/d/app/20261123T030000Z"


def test_a_running_attempt_has_no_end_yet(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    record(
        path, Status(cluster="db1", database="app"), Attempt(started_at=T0, exit_status="running")
    )
    attempt = json.loads(path.read_text())["last_attempt"]
    assert attempt["exit_status"] == "running"
    assert attempt["finished_at"] is None
    assert attempt["duration_seconds"] is None


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    status = Status(cluster="db1", database="app", last_attempt=success(), last_success=success())
    write_status(path, status)
    assert read_status(path, "db1", "app") == status


@pytest.mark.parametrize("content", ["", "{not json", '{"version": 99}', "[]"])
def test_a_missing_or_damaged_file_reads_as_empty(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    if content:
        path.write_text(content)
    assert read_status(path, "db1", "app") == Status(cluster="db1", database="app")


def test_write_is_atomic_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.json"
    write_status(path, Status(cluster="db1", database="app", last_success=success()))
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_status(path, Status(cluster="db1", database="app"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temporary file left


def test_status_file_is_world_readable_for_the_exporter(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    write_status(path, Status(cluster="db1", database="app"))
    assert os.stat(path).st_mode & 0o777 == 0o644

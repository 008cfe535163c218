"""The dump runner's configuration: accepted as the role renders it; every problem names its key."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import release
from pgstack_backup import cli
from pgstack_backup.cli import main
from pgstack_backup.config import parse_config
from pgstack_backup.dump import DumpResult
from pgstack_backup.errors import ConfigError, ExitCode
from pgstack_backup.status import Attempt, Status, record, status_path

# The server binaries the pg_dump role renders on each supported release (roles/pg_dump/vars).
BIN_DIRS = {
    codename: f"/usr/lib/postgresql/{facts['postgresql']}/bin"
    for codename, facts in release.all_facts().items()
}
GOOD: dict[str, Any] = {
    "version": 1,
    "cluster": "db1",
    "connection": {
        "host": "db1.pgstack.internal", "port": 5432, "user": "pgstack_backup",
        "passfile": "/etc/pgstack/pg_dump.pgpass", "sslmode": "verify-full",
        "sslrootcert": "/etc/pgstack/tls/ca.crt", "connect_timeout": 10,
    },
    "bin_dir": next(iter(BIN_DIRS.values())),
    "destination": "/var/backups/pgstack/dumps/db1",
    "status_dir": "/var/lib/pgstack/status",
    "compress_level": 1,
    "databases": ["app"],
    "retention": {"max_age_days": 7, "min_count": 3},
}  # fmt: skip


@pytest.mark.parametrize("codename", sorted(BIN_DIRS))
def test_the_rendered_shape_is_accepted(codename: str) -> None:
    config = parse_config({**GOOD, "bin_dir": BIN_DIRS[codename]}, "pg_dump.yml")
    assert config.bin_dir == Path(BIN_DIRS[codename])
    assert config.databases == ("app",)
    assert config.retention.max_age_days == 7
    assert "password" not in config.connection.conninfo("app")
    assert "passfile=/etc/pgstack/pg_dump.pgpass" in config.connection.conninfo("app")


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"surprise": 1}, "pg_dump.yml: unknown key(s) surprise"),
        ({"version": 2}, "pg_dump.yml: version"),
        ({"compress_level": 10}, "pg_dump.yml: compress_level"),
        ({"databases": []}, "pg_dump.yml: databases"),
        ({"databases": ["App"]}, "pg_dump.yml: databases[0]"),
        ({"databases": ["app", "app"]}, "pg_dump.yml: databases"),
        ({"destination": "relative"}, "pg_dump.yml: destination"),
        ({"retention": {"min_count": 0}}, "pg_dump.yml: retention.min_count"),
        ({"retention": {"max_age_days": -1}}, "pg_dump.yml: retention.max_age_days"),
        ({"retention": {"keep": 1}}, "pg_dump.yml: retention: unknown key(s) keep"),
        ({"connection": {**GOOD["connection"], "sslmode": "disable"}}, "connection.sslmode"),
        ({"connection": {**GOOD["connection"], "password": "x"}}, "unknown key(s) password"),
        (
            {"connection": {**GOOD["connection"], "target_session_attrs": "standby"}},
            "connection.target_session_attrs",
        ),
    ],
)
def test_problems_name_their_location(change: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_config({**GOOD, **change}, "pg_dump.yml")
    assert where in str(excinfo.value)


def test_a_cluster_is_reached_at_whichever_member_takes_writes() -> None:
    hosts = "pg1.pgstack.internal,pg2.pgstack.internal"
    connection = {**GOOD["connection"], "host": hosts, "target_session_attrs": "read-write"}
    cluster = parse_config({**GOOD, "connection": connection}, "pg_dump.yml").connection
    assert f"host={hosts}" in cluster.conninfo("app")
    assert "target_session_attrs=read-write" in cluster.conninfo("app")
    single = parse_config(GOOD, "pg_dump.yml").connection
    assert "target_session_attrs=any" in single.conninfo("app")


def test_cli_reports_a_bad_config_as_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "pg_dump.yml"
    config.write_text("version: 1\nunknown: true\n")
    assert main(["--config.file", str(config), "dump"]) == ExitCode.USAGE


def test_cli_refuses_a_database_that_is_not_configured(tmp_path: Path) -> None:
    config = tmp_path / "pg_dump.yml"
    config.write_text(yaml.safe_dump({**GOOD, "status_dir": str(tmp_path)}))
    assert main(["--config.file", str(config), "dump", "--database", "other"]) == ExitCode.USAGE


def test_finalize_marks_a_running_attempt_failed(tmp_path: Path) -> None:
    """ExecStopPost after a kill: the attempt the runner could not finish is recorded as failed."""
    config = tmp_path / "pg_dump.yml"
    config.write_text(yaml.safe_dump({**GOOD, "status_dir": str(tmp_path)}))
    path = status_path(tmp_path, "db1", "app")
    started = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    record(path, Status(cluster="db1", database="app"), Attempt(started, "running"))

    assert main(["--config.file", str(config), "finalize", "--service-result=signal"]) == 0

    attempt = json.loads(path.read_text())["last_attempt"]
    assert attempt["exit_status"] == "failed"
    assert "signal" in attempt["error"]
    assert attempt["finished_at"] is not None


def test_finalize_leaves_a_finished_attempt_alone(tmp_path: Path) -> None:
    config = tmp_path / "pg_dump.yml"
    config.write_text(yaml.safe_dump({**GOOD, "status_dir": str(tmp_path)}))
    path = status_path(tmp_path, "db1", "app")
    started = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    record(path, Status(cluster="db1", database="app"), Attempt(started, "success", started, 1.0))
    before = path.read_bytes()

    assert main(["--config.file", str(config), "finalize", "--service-result=success"]) == 0
    assert path.read_bytes() == before


def disk_full(fd: int) -> None:
    raise OSError(28, "No space left on device")


def test_a_dump_whose_result_cannot_be_recorded_fails_and_finalize_records_it_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The status filesystem fills while the dump runs (the dump itself succeeds): the run exits
    3, the status file stays whole (still "running"), and ExecStopPost records the failure."""
    config = tmp_path / "pg_dump.yml"
    config.write_text(yaml.safe_dump({**GOOD, "status_dir": str(tmp_path)}))
    path = status_path(tmp_path, "db1", "app")
    fsync = os.fsync

    class FillingRunner:
        def __init__(self, config: Any, now: Any) -> None:
            pass

        def dump(self, database: str, label: str | None) -> DumpResult:
            monkeypatch.setattr(os, "fsync", disk_full)
            return DumpResult(path=tmp_path / "app" / "20261123T030000Z", size_bytes=1234)

        def prune(self, database: str) -> list[str]:
            return []

    monkeypatch.setattr(cli, "Runner", FillingRunner)
    assert main(["--config.file", str(config), "dump"]) == ExitCode.PRECONDITION
    assert f"cannot write the status file {path}: No space left on device" in caplog.text
    assert json.loads(path.read_text())["last_attempt"]["exit_status"] == "running"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    # ExecStopPost, the filesystem still full: the file stays as it was, the failure is logged.
    before = path.read_bytes()
    assert (
        main(["--config.file", str(config), "finalize", "--service-result=exit-code"])
        == ExitCode.PRECONDITION
    )
    assert path.read_bytes() == before
    monkeypatch.setattr(os, "fsync", fsync)  # room again
    assert main(["--config.file", str(config), "finalize", "--service-result=exit-code"]) == 0
    assert json.loads(path.read_text())["last_attempt"]["exit_status"] == "failed"

"""The CLI's usage errors and exit codes, and the verdict of a drill run with fake bodies."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgstack_drill import drill, heartbeat, pg
from pgstack_drill.cli import main
from pgstack_drill.errors import ExitCode, PreconditionError
from pgstack_drill.proc import Runner
from pgstack_drill.schema import HEARTBEAT_BEAT, HEARTBEAT_SQL, JOB_STATUSES
from pgstack_drill.scratch import Scratch


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["logical", "--cluster", "db1"],
        ["logical", "--cluster", "db1", "--database", "app", "--jobs", "0"],
        ["logical", "--cluster", "db1", "--database", "app", "--port", "80"],
        ["pitr", "--cluster", "db1", "--target-name", "x", "--target-time", "2026-11-23T10:00:00Z"],
        ["pitr", "--cluster", "db1", "--target-time", "yesterday"],
        ["pitr", "--cluster", "db1", "--disaster-time", "2026-11-23T10:00:00"],
        ["pitr", "--cluster", "db1", "--expect-table", "app-jobs"],
        ["pitr", "--cluster", "db1", "--check", "app:"],
        ["workload", "--dbname", "host=db1 password=secret"],
        ["workload", "--dbname", "host=db1", "--size-mb", "0"],
        ["heartbeat"],
        ["rebuild"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    assert main(argv) == ExitCode.USAGE


def test_the_schema_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workload", "--print-schema"]) == 0
    schema = capsys.readouterr().out
    for needle in (
        "CREATE TABLE IF NOT EXISTS jobs",
        "CREATE TABLE IF NOT EXISTS results",
        "REFERENCES jobs (id) ON DELETE CASCADE",
        "(session_id, created_at)",
        *JOB_STATUSES,
    ):
        assert needle in schema
    assert main(["heartbeat", "--print-schema"]) == 0
    assert "pgstack_heartbeat" in capsys.readouterr().out


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("scratch", "reports", "status", "bin", "dumps")}
    for path in paths.values():
        path.mkdir()
    (paths["bin"] / "pg_ctl").write_text("#!/bin/sh\n")
    return paths


def common(dirs: dict[str, Path], port: int | None = None) -> list[str]:
    return [
        "--cluster",
        "db1",
        "--scratch-dir",
        str(dirs["scratch"]),
        "--bin-dir",
        str(dirs["bin"]),
        "--reports-dir",
        str(dirs["reports"]),
        "--status-dir",
        str(dirs["status"]),
        "--port",
        str(port or free_port()),
        "--no-progress",
    ]


def test_no_dump_exits_3_and_records_an_error(dirs: dict[str, Path]) -> None:
    argv = ["logical", *common(dirs), "--database", "app", "--dumps-dir", str(dirs["dumps"])]
    assert main(argv) == ExitCode.PRECONDITION
    status = json.loads((dirs["status"] / "drill-db1-logical-app.json").read_text())
    assert status["last_attempt"]["result"] == "error"
    assert status["last_attempt"]["exit_code"] == 3
    assert "no complete dump" in status["last_attempt"]["error"]
    assert status["last_success"] is None
    (report,) = dirs["reports"].glob("*.json")
    assert status["last_attempt"]["report"] == str(report)


def _shared_logical_status(database: str) -> dict[str, object]:
    """What earlier versions wrote to drill-<cluster>-logical.json: the last database drilled."""
    success = {
        "started_at": "2026-09-01T03:00:00Z",
        "finished_at": "2026-09-01T03:04:00Z",
        "result": "passed",
        "exit_code": 0,
        "rto_seconds": 240.0,
        "rpo_seconds": None,
        "error": None,
        "report": None,
    }
    return {
        "version": 1,
        "kind": "drill",
        "drill": "logical",
        "cluster": "db1",
        "database": database,
        "objectives": {"rto_seconds": 3600, "rpo_seconds": 300},
        "last_attempt": success,
        "last_success": success,
        "last_measured": {"rto_seconds": 240.0, "rpo_seconds": None},
    }


def test_a_database_takes_over_its_history_from_the_shared_logical_status(
    dirs: dict[str, Path],
) -> None:
    shared = dirs["status"] / "drill-db1-logical.json"
    shared.write_text(json.dumps(_shared_logical_status("billing")))

    def drill_of(database: str) -> dict[str, object]:
        argv = ["logical", *common(dirs), "--database", database]
        assert main([*argv, "--dumps-dir", str(dirs["dumps"])]) == ExitCode.PRECONDITION
        found: dict[str, object] = json.loads(
            (dirs["status"] / f"drill-db1-logical-{database}.json").read_text()
        )
        return found

    # Another database's history stays where it is, for that database to take over.
    app = drill_of("app")
    assert app["last_success"] is None
    assert shared.exists()
    billing = drill_of("billing")
    assert billing["last_success"] == _shared_logical_status("billing")["last_success"]
    assert billing["last_attempt"]["result"] == "error"  # type: ignore[index]
    assert not shared.exists()
    assert sorted(p.name for p in dirs["status"].iterdir()) == [
        "drill-db1-logical-app.json",
        "drill-db1-logical-billing.json",
    ]


def test_a_missing_scratch_root_is_a_precondition(dirs: dict[str, Path]) -> None:
    dirs["scratch"].rmdir()
    argv = ["logical", *common(dirs), "--database", "app", "--dumps-dir", str(dirs["dumps"])]
    assert main(argv) == ExitCode.PRECONDITION


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t


def options(dirs: dict[str, Path], kind: str = "pitr") -> drill.Options:
    return drill.Options(
        kind=kind,
        cluster="db1",
        database=None,
        reports_dir=dirs["reports"],
        status_dir=dirs["status"],
        rto_objective=3600,
        rpo_objective=300,
        progress=False,
        scratch=drill.ScratchOptions(
            root=dirs["scratch"], port=free_port(), bin_dir=dirs["bin"], os_user="postgres"
        ),
    )


def last_attempt(dirs: dict[str, Path]) -> dict[str, object]:
    attempt: dict[str, object] = json.loads((dirs["status"] / "drill-db1-pitr.json").read_text())[
        "last_attempt"
    ]
    return attempt


@pytest.mark.parametrize(
    ("outcome", "code", "message"),
    [
        (drill.Outcome({}, {}, rto_seconds=30, rpo_seconds=5, rpo_required=True), 0, None),
        (drill.Outcome({}, {}, rto_seconds=4000), 1, "RTO 4000.0 s exceeds the objective 3600 s"),
        (
            drill.Outcome({}, {}, rto_seconds=30, rpo_seconds=301),
            1,
            "RPO 301.0 s exceeds the objective 300 s",
        ),
        (
            drill.Outcome({}, {}, rto_seconds=30, rpo_required=True, rpo_note="no heartbeat row"),
            1,
            "RPO not measured: no heartbeat row",
        ),
    ],
)
def test_the_verdict_against_the_objectives(
    dirs: dict[str, Path], outcome: drill.Outcome, code: int, message: str | None
) -> None:
    clock = Clock()

    def body(run: drill.Drill) -> drill.Outcome:
        with run.phase("restore"):
            clock.t += outcome.rto_seconds
        return outcome

    assert drill.execute(options(dirs), body, clock=clock) == code
    attempt = last_attempt(dirs)
    assert attempt["result"] == ("passed" if code == 0 else "failed")
    assert attempt["error"] == message
    assert attempt["rto_seconds"] == outcome.rto_seconds


@pytest.mark.parametrize(
    ("error", "code"),
    [(PreconditionError("no backup in stanza main"), 3), (RuntimeError("bug"), 4)],
)
def test_a_failing_body_removes_its_scratch_and_records_an_error(
    dirs: dict[str, Path], error: Exception, code: int
) -> None:
    def body(run: drill.Drill) -> drill.Outcome:
        root = dirs["scratch"] / "pgstack-drill-pitr-20261123T030000Z"
        (root / "data").mkdir(parents=True)
        run.scratch = Scratch(root=root, runner=Runner("postgres"), bin_dir=dirs["bin"], port=1)
        run.scratch.socket_dir = root / "run"
        raise error

    assert drill.execute(options(dirs), body, clock=Clock()) == code
    assert [p.name for p in dirs["scratch"].iterdir() if not p.name.startswith(".")] == []
    attempt = last_attempt(dirs)
    assert attempt["result"] == "error"
    assert attempt["exit_code"] == code


def test_a_stop_once_the_body_has_ended_still_records_the_verdict(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while the reports are written: the drill has its outcome and records it; the status
    never stays "running"."""
    write_all = drill.report.write_all

    def stopped_while_writing(directory: Path, doc: dict[str, object]) -> Path:
        os.kill(os.getpid(), signal.SIGTERM)
        return write_all(directory, doc)

    monkeypatch.setattr(drill.report, "write_all", stopped_while_writing)

    def body(run: drill.Drill) -> drill.Outcome:
        return drill.Outcome({}, {}, rto_seconds=1)

    assert drill.execute(options(dirs), body, clock=Clock()) == ExitCode.OK
    assert last_attempt(dirs)["result"] == "passed"


def servers(root: Path, *majors: str) -> list[Path]:
    """Debian's layout of installed PostgreSQL servers: <root>/<major>/bin/pg_ctl."""
    for major in majors:
        (root / major / "bin").mkdir(parents=True)
        (root / major / "bin" / "pg_ctl").write_text("#!/bin/sh\n")
    return [root / major / "bin" for major in majors]


def test_the_one_installed_server_is_found(tmp_path: Path) -> None:
    (found,) = servers(tmp_path, "16")
    (tmp_path / "18" / "lib").mkdir(parents=True)  # a client-only or half-removed major
    assert drill.installed_bin_dir(tmp_path) == found


def test_no_installed_server_is_a_precondition_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PreconditionError, match=r"no PostgreSQL server installed .*--bin-dir"):
        drill.installed_bin_dir(tmp_path)


def test_several_installed_servers_need_bin_dir(tmp_path: Path) -> None:
    servers(tmp_path, "16", "18")
    with pytest.raises(PreconditionError, match=r"2 PostgreSQL servers installed .*--bin-dir"):
        drill.installed_bin_dir(tmp_path)


def test_without_bin_dir_a_drill_uses_the_installed_server(
    dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (found,) = servers(tmp_path / "postgresql", "16")
    monkeypatch.setattr(drill, "SERVER_ROOT", tmp_path / "postgresql")
    used: list[Path | None] = []

    def body(run: drill.Drill) -> drill.Outcome:
        used.append(run.scratch_options.bin_dir)
        return drill.Outcome({}, {}, rto_seconds=1)

    unset = options(dirs)
    assert unset.scratch is not None
    unset = dataclasses.replace(unset, scratch=dataclasses.replace(unset.scratch, bin_dir=None))
    assert drill.execute(unset, body, clock=Clock()) == ExitCode.OK
    assert used == [found]


def test_without_bin_dir_and_no_server_the_drill_records_a_precondition(
    dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drill, "SERVER_ROOT", tmp_path / "postgresql")
    argv = ["logical", *common(dirs), "--database", "app", "--dumps-dir", str(dirs["dumps"])]
    argv.remove("--bin-dir")
    argv.remove(str(dirs["bin"]))
    assert main(argv) == ExitCode.PRECONDITION
    status = json.loads((dirs["status"] / "drill-db1-logical-app.json").read_text())
    attempt = status["last_attempt"]
    assert "no PostgreSQL server installed" in attempt["error"]


class _HeartbeatConnection:
    """Records statements; the table exists or not, as the test says."""

    def __init__(self, table_exists: bool) -> None:
        self.table_exists = table_exists
        self.statements: list[str] = []

    def execute(self, query: str, params: object = None) -> _HeartbeatConnection:
        self.statements.append(query)
        self._row = ("pgstack_heartbeat",) if self.table_exists else (None,)
        return self

    def fetchone(self) -> tuple[str | None]:
        return self._row

    def close(self) -> None:
        pass


@pytest.mark.parametrize("table_exists", [True, False])
def test_heartbeat_creates_the_table_only_when_missing(
    monkeypatch: pytest.MonkeyPatch, table_exists: bool
) -> None:
    """A role that may only write the row never runs CREATE TABLE (needs CREATE on the schema)."""
    conn = _HeartbeatConnection(table_exists)
    monkeypatch.setattr(pg, "connect", lambda dbname: conn)
    heartbeat.beat("host=db1 dbname=postgres", interval=0.001, count=2)
    assert (HEARTBEAT_SQL in conn.statements) is not table_exists
    assert conn.statements.count(HEARTBEAT_BEAT) == 2

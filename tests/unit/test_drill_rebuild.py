"""``pgstack-drill rebuild`` against a fake server: options, phases, RTO and RPO, its reports."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

import release
from pgstack_drill import rebuild, report, verification
from pgstack_drill.cli import build_parser, main
from pgstack_drill.errors import ExitCode, UsageError
from pgstack_drill.schema import HEARTBEAT_NEWEST
from pgstack_drill.timing import Phase

START = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
NOW = START + timedelta(minutes=40)
# What a rebuilt server of each supported release answers for current_setting('server_version').
SERVER_VERSIONS = {
    codename: f"{facts['postgresql']}.4" for codename, facts in release.all_facts().items()
}
DBNAME = "host=db1.lab port=5432 dbname=postgres user=pgstack_backup sslmode=verify-full"
PHASES = [
    "--phase",
    "provision=2026-11-23T03:00:05Z/2026-11-23T03:10:00Z",
    "--phase",
    "restore=2026-11-23T03:10:00Z/2026-11-23T03:30:00Z",
    "--phase",
    "converge=2026-11-23T03:30:00Z/2026-11-23T03:39:00Z",
]


class Clock:
    """Wall time fixed at NOW; monotonic time moves when the fake server answers."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return NOW + timedelta(seconds=self.t)

    def monotonic(self) -> float:
        return self.t


@dataclass
class Server:
    """Answers the queries of a rebuild drill; each connection costs one second."""

    clock: Clock
    version: str = next(iter(SERVER_VERSIONS.values()))
    in_recovery: bool = False
    newest: datetime | None = START - timedelta(seconds=42)
    databases: tuple[str, ...] = ("app", "postgres")
    without_connect: tuple[str, ...] = ()
    checks: dict[str, Any] = field(default_factory=dict)
    reachable: bool = True
    connected: list[str] = field(default_factory=list)

    def connect(self, database: str) -> Connection:
        if not self.reachable:
            raise psycopg.OperationalError(
                'connection to server at "10.0.0.5", port 5432 failed: Connection refused\n'
                "\tIs the server running on that host and accepting TCP/IP connections?"
            )
        self.clock.t += 1.0
        self.connected.append(database)
        return Connection(self, database)


@dataclass
class Connection:
    server: Server
    database: str
    info: Any = field(
        default_factory=lambda: SimpleNamespace(
            host="db1.lab", port=5432, dbname="postgres", user="pgstack_backup"
        )
    )

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, query: str, params: Any = None) -> Any:
        server = self.server
        if query == rebuild.SERVER_QUERY:
            rows = [("7441829004021547621", server.in_recovery, server.version, 2)]
        elif query == verification.DATABASES_QUERY:
            rows = [(name, name not in server.without_connect) for name in server.databases]
        elif query == verification.USER_TABLES_QUERY:
            rows = [(1,), (1,)]
        elif "to_regclass('pgstack_heartbeat')" in query:
            rows = [(server.newest is not None,)]
        elif query == HEARTBEAT_NEWEST:
            rows = [(server.newest,)]
        elif query in server.checks:
            answer = server.checks[query]
            if isinstance(answer, Exception):
                raise answer
            rows = [(answer,)]
        else:
            raise AssertionError(f"unexpected query {query!r}")
        return SimpleNamespace(fetchone=lambda: rows[0], fetchall=lambda: rows)


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("reports", "status")}
    for path in paths.values():
        path.mkdir()
    return paths


def argv(dirs: dict[str, Path], *extra: str) -> list[str]:
    return [
        "rebuild",
        "--cluster",
        "db1",
        "--dbname",
        DBNAME,
        "--started-at",
        "2026-11-23T03:00:00Z",
        "--reports-dir",
        str(dirs["reports"]),
        "--status-dir",
        str(dirs["status"]),
        "--no-progress",
        *extra,
    ]


def drill(dirs: dict[str, Path], server: Server, *extra: str) -> int:
    args = build_parser().parse_args(argv(dirs, *extra))
    return int(rebuild.run(args, clock=server.clock, connect=server.connect))


def written(dirs: dict[str, Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    (path,) = dirs["reports"].glob("*.json")
    status = json.loads((dirs["status"] / "drill-db1-rebuild.json").read_text())
    return json.loads(path.read_text()), status


# --- options


def test_phases_are_offsets_from_the_start_in_the_given_order() -> None:
    phases = rebuild.parse_phases(PHASES[1::2], START, NOW)
    assert [(p.name, p.start_seconds, p.duration_seconds) for p in phases] == [
        ("provision", 5.0, 595.0),
        ("restore", 600.0, 1200.0),
        ("converge", 1800.0, 540.0),
    ]
    assert {p.detail for p in phases} == {"playbook"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--phase", "restore"], "--phase: expected NAME=START/END"),
        (["--phase", "Restore=2026-11-23T03:10:00Z/2026-11-23T03:20:00Z"], "--phase: expected"),
        (["--phase", "restore=2026-11-23T03:10:00/2026-11-23T03:20:00Z"], "--phase restore START"),
        (["--phase", "restore=2026-11-23T03:20:00Z/2026-11-23T03:10:00Z"], "ends before it starts"),
        (["--phase", "restore=2026-11-23T02:59:59Z/2026-11-23T03:10:00Z"], "before --started-at"),
        (["--phase", "restore=2026-11-23T03:10:00Z/2099-01-01T00:00:00Z"], "in the future"),
        (["--phase", "verify=2026-11-23T03:10:00Z/2026-11-23T03:20:00Z"], "drill's own phase"),
        ([*PHASES[:2], *PHASES[:2]], "--phase provision: given twice"),
        (["--disaster-time", "2026-11-23T03:00:01Z"], "--disaster-time: after --started-at"),
        (["--disaster-time", "2026-11-23 02:00:00"], "--disaster-time: expected UTC"),
        (["--expect-table", "app-jobs"], "--expect-table"),
        (["--check", "app:"], "--check"),
        (["--rto-objective", "0"], "objectives"),
    ],
)
def test_bad_options_exit_2_naming_the_option_before_anything_is_written(
    dirs: dict[str, Path], caplog: pytest.LogCaptureFixture, extra: list[str], message: str
) -> None:
    assert main(argv(dirs, *extra)) == ExitCode.USAGE
    assert message in caplog.text
    assert list(dirs["reports"].iterdir()) == []
    assert list(dirs["status"].iterdir()) == []


@pytest.mark.parametrize(
    ("dbname", "message"),
    [
        ("host=db1.lab password=secret", "no password"),
        ("postgresql://pgstack_backup:secret@db1.lab/postgres", "no password"),
        ("host='db1.lab", "not a libpq connection string"),
    ],
)
def test_a_password_or_a_malformed_dbname_is_refused(
    dirs: dict[str, Path], caplog: pytest.LogCaptureFixture, dbname: str, message: str
) -> None:
    args = argv(dirs)
    args[args.index("--dbname") + 1] = dbname
    assert main(args) == ExitCode.USAGE
    assert message in caplog.text
    assert "secret" not in caplog.text


def test_usage_without_the_required_options() -> None:
    assert main(["rebuild", "--cluster", "db1", "--dbname", DBNAME]) == ExitCode.USAGE
    assert main(["rebuild", "--cluster", "db1", "--started-at", "2026-11-23T03:00:00Z"]) == 2


def test_a_start_in_the_future_is_refused() -> None:
    args = build_parser().parse_args(argv({"reports": Path("r"), "status": Path("s")}))
    args.started_at = "2026-11-23T04:00:00Z"
    with pytest.raises(UsageError, match="--started-at: in the future"):
        rebuild.parse_plan(args, NOW)
    args.started_at = "2026-11-23T03:40:30Z"  # within the clock tolerance
    assert rebuild.parse_plan(args, NOW).started_at == NOW + timedelta(seconds=30)


# --- the drill against a fake server


@pytest.mark.parametrize("codename", sorted(SERVER_VERSIONS))
def test_a_rebuilt_primary_passes_with_rto_rpo_and_the_playbooks_phases(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str], codename: str
) -> None:
    server = Server(
        Clock(), SERVER_VERSIONS[codename], checks={"SELECT count(*) > 0 FROM jobs": True}
    )
    code = drill(dirs, server, *PHASES, "--check", "app:SELECT count(*) > 0 FROM jobs")
    doc, status = written(dirs)
    assert code == 0, doc["error"]
    # verify: 2400 s after the start, six connections of one second each
    assert doc["rto_seconds"] == 2406.0
    assert doc["rpo_seconds"] == 42.0
    assert [(p["name"], p["start_seconds"], p["duration_seconds"]) for p in doc["phases"]] == [
        ("provision", 5.0, 595.0),
        ("restore", 600.0, 1200.0),
        ("converge", 1800.0, 540.0),
        ("verify", 2400.0, 6.0),
    ]
    assert doc["started_at"] == "2026-11-23T03:00:00Z"
    assert doc["source"]["system_identifier"] == "7441829004021547621"
    assert doc["source"]["timeline"] == 2
    assert doc["source"]["server_version"] == SERVER_VERSIONS[codename]
    assert doc["source"]["host"] == "db1.lab"
    assert doc["source"]["newest_heartbeat"] == "2026-11-23T02:59:18+00:00"
    assert doc["verification"]["databases"] == {"app": 2, "postgres": 2}
    assert doc["verification"]["checks"][0]["ok"] is True
    assert status["database"] is None
    assert status["last_success"]["rto_seconds"] == 2406.0
    assert status["last_success"]["started_at"] == "2026-11-23T03:00:00Z"
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "rebuild drill of db1: PASSED; RTO 2406.0 s (objective 3600 s); "
        "RPO 42.0 s (objective 300 s)"
    )
    assert out[1].startswith(f"report: {dirs['reports']}/20261123T030000Z-rebuild.json")


def test_the_rpo_counts_from_the_disaster_time(dirs: dict[str, Path]) -> None:
    server = Server(Clock())
    assert drill(dirs, server, "--disaster-time", "2026-11-23T02:59:48Z") == 0
    doc, _ = written(dirs)
    assert doc["rpo_seconds"] == 30.0
    assert doc["rpo_note"] == (
        "disaster at 2026-11-23T02:59:48Z, newest heartbeat 2026-11-23T02:59:18+00:00"
    )


def test_a_heartbeat_newer_than_the_start_was_written_on_the_rebuilt_server(
    dirs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    server = Server(Clock(), newest=START + timedelta(minutes=35))
    assert drill(dirs, server) == ExitCode.VERIFICATION_FAILED
    doc, status = written(dirs)
    assert doc["rpo_seconds"] is None
    assert "written on the rebuilt server, not restored" in doc["error"]
    assert status["last_attempt"]["result"] == "failed"
    assert "written on the rebuilt server" in caplog.text


def test_no_heartbeat_means_the_rpo_is_not_measured(dirs: dict[str, Path]) -> None:
    assert drill(dirs, Server(Clock(), newest=None)) == ExitCode.VERIFICATION_FAILED
    doc, _ = written(dirs)
    assert doc["error"] == "RPO not measured: no pgstack_heartbeat row in database postgres"
    assert doc["rto_seconds"] is not None


def test_a_database_the_role_may_not_connect_to_is_listed_not_entered(
    dirs: dict[str, Path],
) -> None:
    server = Server(Clock(), databases=("app", "billing", "postgres"), without_connect=("billing",))
    assert drill(dirs, server) == 0
    doc, _ = written(dirs)
    assert doc["verification"]["databases"] == {"app": 2, "postgres": 2}
    assert doc["verification"]["without_connect"] == ["billing"]
    assert "billing" not in server.connected
    assert "no CONNECT): billing" in report.render_markdown(doc, [])
    assert "no CONNECT): billing" in report.render_html(doc, [])


def test_a_server_in_recovery_fails(dirs: dict[str, Path]) -> None:
    assert drill(dirs, Server(Clock(), in_recovery=True)) == ExitCode.VERIFICATION_FAILED
    doc, _ = written(dirs)
    assert doc["error"] == "verification: db1.lab:5432 is in recovery (a standby), not a primary"
    assert doc["source"]["in_recovery"] is True


def test_a_check_that_fails_is_named(dirs: dict[str, Path]) -> None:
    server = Server(
        Clock(),
        checks={
            "SELECT count(*) > 0 FROM jobs": False,
            "SELECT 1/0 = 1": psycopg.errors.DivisionByZero("division by zero"),
        },
    )
    code = drill(
        dirs,
        server,
        "--check",
        "app:SELECT count(*) > 0 FROM jobs",
        "--check",
        "app:SELECT 1/0 = 1",
    )
    assert code == ExitCode.VERIFICATION_FAILED
    doc, _ = written(dirs)
    assert doc["error"] == (
        "verification: check on app is not true: SELECT count(*) > 0 FROM jobs (and 1 more)"
    )
    assert doc["verification"]["problems"][1] == "check on app failed: division by zero"


def test_an_unreachable_server_is_a_precondition_naming_the_host(dirs: dict[str, Path]) -> None:
    assert drill(dirs, Server(Clock(), reachable=False)) == ExitCode.PRECONDITION
    doc, status = written(dirs)
    assert doc["error"].startswith("cannot connect to db1.lab:5432: connection to server at")
    assert "Connection refused" in doc["error"]
    assert status["last_attempt"]["result"] == "error"


def test_a_missed_objective_fails(dirs: dict[str, Path]) -> None:
    assert drill(dirs, Server(Clock()), "--rto-objective", "1800") == 1
    doc, _ = written(dirs)
    assert doc["error"] == "RTO 2405.0 s exceeds the objective 1800 s"


def test_every_session_is_read_only_on_the_database_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    captured: list[str] = []
    monkeypatch.setattr(rebuild.pg, "connect", captured.append)
    rebuild.connector(DBNAME + " options='-c work_mem=8MB'")("app")
    params = psycopg.conninfo.conninfo_to_dict(captured[0])
    assert params["dbname"] == "app"
    assert params["options"] == "-c work_mem=8MB -c default_transaction_read_only=on"
    assert params["host"] == "db1.lab"
    assert params["sslmode"] == "verify-full"
    assert params["connect_timeout"] == "10"


# --- reports


def rebuild_doc(started: str, rto: float, **changes: Any) -> dict[str, Any]:
    moment = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    phases = rebuild.parse_phases(
        [p.replace("2026-11-23T03", started[:13]) for p in PHASES[1::2]], moment, NOW
    )
    fields: dict[str, Any] = {
        "drill": "rebuild",
        "cluster": "db1",
        "database": None,
        "host": "backup1",
        "started_at": moment,
        "finished_at": moment + timedelta(seconds=rto),
        "result": "passed",
        "exit_code": 0,
        "error": None,
        "objectives": {"rto_seconds": 3600.0, "rpo_seconds": 300.0},
        "phases": [*phases, Phase("verify", 2400.0, 5.0, "2 databases answered")],
        "facts": {},
        "outcome": {
            "rto_seconds": rto,
            "rpo_seconds": 42.0,
            "source": {
                "host": "db1.lab",
                "system_identifier": "7441829004021547621",
                "timeline": 2,
                "server_version": next(iter(SERVER_VERSIONS.values())),
            },
            "verification": {"databases": {"app": 2}, "tables": [], "checks": [], "problems": []},
        },
    }
    fields.update(changes)
    return report.build(**fields)


def test_a_rebuild_report_renders_its_phases_source_and_verification() -> None:
    doc = rebuild_doc("2026-11-23T03:00:00Z", 2405.0)
    text = report.render_markdown(doc, [doc])
    assert text.startswith("# Rebuild drill: db1\n")
    assert "| restore | 600.0 s | 1200.00 s |" in text
    assert "| verify | 2400.0 s | 5.00 s |" in text
    assert "- system_identifier: `7441829004021547621`" in text
    assert "| app | 2 |" in text
    page = report.render_html(doc, [doc])
    assert "<h1>Rebuild drill: db1</h1>" in page
    assert re.findall(r'data-phase="([a-z]+)"', page) == [
        "provision",
        "restore",
        "converge",
        "verify",
    ]
    assert 'class="rto"' in page
    assert "7441829004021547621" in page
    assert not re.search(r"(src|href)=|<script|@import|url\(", page)


def test_a_rebuilds_history_is_the_earlier_rebuilds_only(tmp_path: Path) -> None:
    pitr = {**rebuild_doc("2026-10-01T03:00:00Z", 4.0), "drill": "pitr"}
    (tmp_path / "20261001T030000Z-pitr.json").write_text(json.dumps(pitr))
    report.write_all(tmp_path, rebuild_doc("2026-10-23T03:00:00Z", 2500.0))
    newest = report.write_all(tmp_path, rebuild_doc("2026-11-23T03:00:00Z", 2405.0))
    page = newest.with_suffix(".html").read_text()
    rto_chart = page[page.index('id="history-rto"') : page.index('id="history-rpo"')]
    assert rto_chart.count('<circle class="point"') == 2
    assert 'data-drill="rebuild"' in rto_chart
    assert "pitr" not in rto_chart
    history = report.load_history(tmp_path, "db1", "logical")
    assert [h["drill"] for h in history] == ["pitr"]

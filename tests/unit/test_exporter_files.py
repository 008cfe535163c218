"""pg_dump and drill status files, and pgbackrest info, read from their documented formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.registry import CollectorRegistry
from test_exporter_support import (
    DRILL,
    DRILL_PITR,
    DUMP_FAILED_NEVER_SUCCEEDED,
    DUMP_SUCCESS,
    PITR_RUNNING,
    FakeClock,
    drill_attempt,
)

from pgstack_exporter.collectors.pgbackrest import wal_position
from pgstack_exporter.config import parse
from pgstack_exporter.exporter import Exporter, Seams
from pgstack_exporter.pgbackrest import PgBackRestTarget
from release import all_facts

T_0300 = datetime(2026, 11, 23, 3, 0, 0, tzinfo=UTC).timestamp()


def registry(tmp_path: Path, **extra: Any) -> CollectorRegistry:
    cfg = parse({"version": 1, "status_files": {"directory": str(tmp_path)}, **extra})
    return Exporter(cfg, seams=Seams(clock=FakeClock(), **extra.pop("seams", {}))).registry()


def put(directory: Path, name: str, document: Any) -> None:
    (directory / name).write_text(
        json.dumps(document) if not isinstance(document, str) else document
    )


def test_a_successful_dump(tmp_path: Path) -> None:
    put(tmp_path, "pg_dump-db1-app.json", DUMP_SUCCESS)
    reg = registry(tmp_path)
    db = {"cluster": "db1", "database": "app"}
    assert reg.get_sample_value("pgstack_dump_last_attempt_timestamp_seconds", db) == T_0300
    assert reg.get_sample_value("pgstack_dump_last_success_timestamp_seconds", db) == T_0300 + 12
    assert reg.get_sample_value("pgstack_dump_last_duration_seconds", db) == 12.1
    assert reg.get_sample_value("pgstack_dump_last_success_size_bytes", db) == 123456
    assert (
        reg.get_sample_value("pgstack_dump_last_attempt_status", {**db, "status": "success"}) == 1
    )
    assert reg.get_sample_value("pgstack_dump_last_attempt_status", {**db, "status": "failed"}) == 0
    assert reg.get_sample_value("pgstack_status_file_valid", {"file": "pg_dump-db1-app.json"}) == 1


def test_a_failed_dump_that_never_succeeded(tmp_path: Path) -> None:
    put(tmp_path, "pg_dump-db1-shop.json", DUMP_FAILED_NEVER_SUCCEEDED)
    reg = registry(tmp_path)
    db = {"cluster": "db1", "database": "shop"}
    assert reg.get_sample_value("pgstack_dump_last_attempt_status", {**db, "status": "failed"}) == 1
    assert reg.get_sample_value("pgstack_dump_last_success_timestamp_seconds", db) == 0
    assert reg.get_sample_value("pgstack_dump_last_success_size_bytes", db) is None


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 1, "kind": "pg_dump", "cluster": "db1"',
        "[]",
        '{"version": 2}',
        json.dumps(
            {**DUMP_SUCCESS, "last_attempt": {**DUMP_SUCCESS["last_attempt"], "exit_status": "odd"}}
        ),  # type: ignore[dict-item]
        json.dumps(
            {
                **DUMP_SUCCESS,
                "last_attempt": {**DUMP_SUCCESS["last_attempt"], "started_at": "yesterday"},
            }
        ),  # type: ignore[dict-item]
        json.dumps({**DUMP_SUCCESS, "kind": "drill"}),
        "\xff\xfe",
    ],
    ids=["truncated", "list", "version-2", "unknown-status", "bad-time", "wrong-kind", "binary"],
)
def test_a_malformed_status_file_is_flagged_and_the_others_still_read(
    tmp_path: Path, text: str
) -> None:
    put(tmp_path, "pg_dump-db1-bad.json", text)
    put(tmp_path, "pg_dump-db1-app.json", DUMP_SUCCESS)
    reg = registry(tmp_path)
    assert reg.get_sample_value("pgstack_status_file_valid", {"file": "pg_dump-db1-bad.json"}) == 0
    assert (
        reg.get_sample_value(
            "pgstack_dump_last_success_size_bytes", {"cluster": "db1", "database": "app"}
        )
        == 123456
    )
    assert (
        reg.get_sample_value(
            "pgstack_collector_success", {"collector": "dumps", "target": str(tmp_path)}
        )
        == 1
    )


def test_a_missing_status_directory_is_down(tmp_path: Path) -> None:
    reg = registry(tmp_path / "absent")
    assert (
        reg.get_sample_value(
            "pgstack_up", {"kind": "status_files", "target": str(tmp_path / "absent")}
        )
        == 0
    )
    assert (
        reg.get_sample_value(
            "pgstack_collector_success", {"collector": "dumps", "target": str(tmp_path / "absent")}
        )
        == 0
    )


def test_no_status_file_yet_means_no_series(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    assert (
        reg.get_sample_value("pgstack_up", {"kind": "status_files", "target": str(tmp_path)}) == 1
    )
    names = {s.name for m in reg.collect() for s in m.samples}
    assert not any(n.startswith(("pgstack_dump_", "pgstack_drill_")) for n in names)


def test_drill_status_files(tmp_path: Path) -> None:
    put(tmp_path, "drill-db1-logical-app.json", DRILL)
    put(tmp_path, "drill-db1-pitr.json", PITR_RUNNING)
    reg = registry(tmp_path)
    logical = {"cluster": "db1", "drill": "logical", "database": "app"}
    pitr = {"cluster": "db1", "drill": "pitr", "database": ""}
    assert reg.get_sample_value("pgstack_drill_last_run_timestamp_seconds", logical) == T_0300
    assert (
        reg.get_sample_value("pgstack_drill_last_success_timestamp_seconds", logical)
        == T_0300 + 252
    )
    assert reg.get_sample_value("pgstack_drill_rto_seconds", logical) == 252.4
    assert reg.get_sample_value("pgstack_drill_rpo_seconds", logical) is None
    assert reg.get_sample_value("pgstack_drill_rto_objective_seconds", logical) == 3600
    assert reg.get_sample_value("pgstack_drill_last_result", {**logical, "result": "passed"}) == 1
    assert reg.get_sample_value("pgstack_drill_last_result", {**pitr, "result": "running"}) == 1
    assert reg.get_sample_value("pgstack_drill_last_success_timestamp_seconds", pitr) == 0


def test_dump_files_are_not_read_as_drills(tmp_path: Path) -> None:
    put(tmp_path, "pg_dump-db1-app.json", DUMP_SUCCESS)
    put(tmp_path, "drill-db1-logical-app.json", DRILL)
    put(tmp_path, "unrelated.json", "{}")
    reg = registry(tmp_path)
    files = {
        s.labels["file"]
        for m in reg.collect()
        for s in m.samples
        if s.name == "pgstack_status_file_valid"
    }
    assert files == {"pg_dump-db1-app.json", "drill-db1-logical-app.json"}


# pgBackRest names an archive after the PostgreSQL major it holds: that of a supported release.
ARCHIVE_ID = f"{max(int(f['postgresql']) for f in all_facts().values())}-1"
INFO = [
    {
        "name": "main",
        "status": {"code": 0, "message": "ok"},
        "archive": [
            {"id": ARCHIVE_ID, "min": "000000010000000000000002", "max": "00000001000000010000000A"}
        ],
        "backup": [
            {
                "label": "20261122-010000F",
                "type": "full",
                "timestamp": {"start": 1795827600, "stop": 1795827660},
                "info": {
                    "size": 30_000_000,
                    "delta": 30_000_000,
                    "repository": {"size": 4_000_000, "delta": 4_000_000},
                },
            },
            {
                "label": "20261122-010000F_20261123-010000D",
                "type": "diff",
                "timestamp": {"start": 1795914000, "stop": 1795914030},
                "info": {
                    "size": 30_500_000,
                    "delta": 600_000,
                    "repository": {"size": 4_100_000, "delta": 90_000},
                },
            },
        ],
    }
]


class FakeCommand:
    def __init__(self, output: str | Exception) -> None:
        self.output = output
        self.calls: list[list[str]] = []

    def __call__(self, argv: Any, timeout: float) -> str:
        self.calls.append(list(argv))
        if isinstance(self.output, Exception):
            raise self.output
        return self.output


def pgbackrest_target(command: FakeCommand, clock: FakeClock) -> PgBackRestTarget:
    cfg = parse({"version": 1, "pgbackrest": {"config_file": "/etc/pgbackrest/pgbackrest.conf"}})
    exporter = Exporter(cfg, seams=Seams(clock=clock, command=command))
    target = exporter.kinds["pgbackrest"][1][0]
    assert isinstance(target, PgBackRestTarget)
    return target


def test_pgbackrest_info_is_read_per_stanza() -> None:
    clock = FakeClock()
    command = FakeCommand(json.dumps(INFO))
    target = pgbackrest_target(command, clock)
    target.refresh()
    clock.advance(5)
    samples = {
        (s.spec.exposed_name, tuple(sorted(s.labels.items()))): s.value
        for s in target.scrape().samples
    }
    main = (("stanza", "main"),)
    assert samples[("pgstack_pgbackrest_stanza_status", main)] == 0
    assert (
        samples[
            (
                "pgstack_pgbackrest_last_backup_completion_timestamp_seconds",
                (*main, ("type", "full")),
            )
        ]
        == 1795827660
    )
    assert (
        samples[
            (
                "pgstack_pgbackrest_last_backup_completion_timestamp_seconds",
                (*main, ("type", "diff")),
            )
        ]
        == 1795914030
    )
    assert (
        samples[("pgstack_pgbackrest_last_backup_size_bytes", (*main, ("type", "full")))]
        == 30_000_000
    )
    assert samples[("pgstack_pgbackrest_repository_size_bytes", main)] == 4_090_000
    assert samples[("pgstack_pgbackrest_backups", (*main, ("type", "incr")))] == 0
    assert (
        samples[("pgstack_pgbackrest_archive_wal_position_bytes", (("bound", "max"), *main))]
        == 0x1_0000_0000 + 10 * 16 * 1024 * 1024
    )
    assert samples[("pgstack_pgbackrest_info_age_seconds", ())] == 5
    assert samples[("pgstack_pgbackrest_info_success", ())] == 1
    assert command.calls[0] == [
        "/usr/bin/pgbackrest",
        "--output=json",
        "--log-level-console=warn",
        "--log-level-file=off",
        "--config=/etc/pgbackrest/pgbackrest.conf",
        "info",
    ]


def test_a_failing_pgbackrest_keeps_the_last_answer_and_says_so() -> None:
    clock = FakeClock()
    command = FakeCommand(json.dumps(INFO))
    target = pgbackrest_target(command, clock)
    target.refresh()
    command.output = RuntimeError("exit 56: repository is locked")
    target.refresh()
    clock.advance(400)
    result = target.scrape()
    values = {s.spec.exposed_name: s.value for s in result.samples if not s.labels}
    assert values["pgstack_pgbackrest_info_success"] == 0
    assert values["pgstack_pgbackrest_info_age_seconds"] == 400
    assert result.parts[0].success is False


def test_wal_positions() -> None:
    assert wal_position("000000010000000000000001") == (1, 16 * 1024 * 1024)
    assert wal_position("0000000200000003000000FF") == (2, 3 * 2**32 + 255 * 16 * 1024 * 1024)
    with pytest.raises(ValueError, match="not a WAL segment"):
        wal_position("00000001")


def test_a_running_drill_keeps_the_last_measurement(tmp_path: Path) -> None:
    running = drill_attempt("running", None, None)
    put(tmp_path, "drill-db1-pitr.json", {**DRILL_PITR, "last_attempt": running})
    reg = registry(tmp_path)
    pitr = {"cluster": "db1", "drill": "pitr", "database": ""}
    assert reg.get_sample_value("pgstack_drill_last_result", {**pitr, "result": "running"}) == 1
    assert reg.get_sample_value("pgstack_drill_rpo_seconds", pitr) == 6
    assert reg.get_sample_value("pgstack_drill_rto_seconds", pitr) == 540


def test_a_drill_without_an_rpo_keeps_the_last_measured_rpo(tmp_path: Path) -> None:
    to_a_name = drill_attempt("passed", 300, None)
    doc = {
        **DRILL_PITR,
        "last_attempt": to_a_name,
        "last_success": to_a_name,
        "last_measured": {"rto_seconds": 300, "rpo_seconds": 6},
    }
    put(tmp_path, "drill-db1-pitr.json", doc)
    reg = registry(tmp_path)
    pitr = {"cluster": "db1", "drill": "pitr", "database": ""}
    assert reg.get_sample_value("pgstack_drill_rpo_seconds", pitr) == 6
    assert reg.get_sample_value("pgstack_drill_rto_seconds", pitr) == 300

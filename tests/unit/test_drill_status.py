"""The drill status file: the documented example documents read and written (docs/drills.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pgstack_drill.status import Attempt, Status, read_status, record, status_path

PASSED: dict[str, Any] = {
    "version": 1,
    "kind": "drill",
    "drill": "logical",
    "cluster": "db1",
    "database": "app",
    "objectives": {"rto_seconds": 3600, "rpo_seconds": 300},
    "last_attempt": {
        "started_at": "2026-11-23T03:00:00Z",
        "finished_at": "2026-11-23T03:04:12Z",
        "result": "passed",
        "exit_code": 0,
        "rto_seconds": 252.4,
        "rpo_seconds": None,
        "error": None,
        "report": "/var/lib/pgstack/drills/reports/20261123T030000Z-logical.json",
    },
    "last_success": None,
    "last_measured": {"rto_seconds": 252.4, "rpo_seconds": None},
}
PASSED["last_success"] = PASSED["last_attempt"]
RUNNING: dict[str, Any] = {
    **PASSED,
    "drill": "pitr",
    "database": None,
    "last_attempt": {
        "started_at": "2026-11-30T03:00:00Z",
        "finished_at": None,
        "result": "running",
        "exit_code": None,
        "rto_seconds": None,
        "rpo_seconds": None,
        "error": None,
        "report": None,
    },
}


@pytest.mark.parametrize("doc", [PASSED, RUNNING], ids=["passed", "running"])
def test_example_documents_round_trip(doc: dict[str, Any]) -> None:
    assert Status.from_json(doc).to_json() == doc


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"kind": "pg_dump"},
        {"drill": "other"},
        {"last_attempt": {**PASSED["last_attempt"], "result": "ok"}},
        {"last_attempt": {**PASSED["last_attempt"], "rto_seconds": "fast"}},
        {"last_measured": {"rpo_seconds": "small"}},
        {"last_measured": [1, 2]},
    ],
)
def test_other_documents_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises((ValueError, KeyError)):
        Status.from_json({**PASSED, **change})


def test_a_failure_keeps_the_last_success_and_is_written_atomically(tmp_path: Path) -> None:
    path = status_path(tmp_path, "db1", "logical", "app")
    assert path.name == "drill-db1-logical-app.json"
    path.write_text(json.dumps(PASSED))
    status = read_status(path)
    assert status is not None
    failed = Attempt(
        started_at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC),
        result="failed",
        finished_at=datetime(2026, 11, 30, 3, 1, tzinfo=UTC),
        exit_code=1,
        rto_seconds=61.25,
        error="verification: public.jobs: 9 rows, the manifest says 10",
    )
    record(path, status, failed)
    doc = json.loads(path.read_text())
    assert doc["last_attempt"]["result"] == "failed"
    assert doc["last_attempt"]["rto_seconds"] == 61.2
    assert doc["last_success"] == PASSED["last_success"]
    assert [p.name for p in tmp_path.iterdir()] == ["drill-db1-logical-app.json"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_a_drill_that_measures_no_rpo_keeps_the_last_measured_one(tmp_path: Path) -> None:
    path = status_path(tmp_path, "db1", "pitr")
    day = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    status = Status(
        drill="pitr", cluster="db1", database=None, rto_objective=3600, rpo_objective=300
    )
    to_the_end = Attempt(day, "passed", day, 0, rto_seconds=540.0, rpo_seconds=6.04)
    status = record(path, status, to_the_end)
    # A PITR to a restore point goes back on purpose: it measures the RTO only.
    to_a_name = Attempt(day.replace(hour=4), "passed", day.replace(hour=4), 0, rto_seconds=300.0)
    record(path, status, to_a_name)
    doc = json.loads(path.read_text())
    assert doc["last_attempt"]["rpo_seconds"] is None
    assert doc["last_success"]["rpo_seconds"] is None
    assert doc["last_measured"] == {"rto_seconds": 300.0, "rpo_seconds": 6.0}
    read = read_status(path)
    assert read is not None
    assert (read.last_rto_seconds, read.last_rpo_seconds) == (300.0, 6.0)


def test_an_unreadable_file_counts_as_none(tmp_path: Path) -> None:
    path = tmp_path / "drill-db1-pitr.json"
    assert read_status(path) is None
    path.write_text("{not json")
    assert read_status(path) is None


def test_each_database_has_its_own_logical_status_and_the_cluster_drills_one_each(
    tmp_path: Path,
) -> None:
    names = {
        status_path(tmp_path, "db1", "logical", "app").name,
        status_path(tmp_path, "db1", "logical", "billing").name,
        status_path(tmp_path, "db1", "pitr").name,
        status_path(tmp_path, "db1", "rebuild", "app").name,
    }
    assert names == {
        "drill-db1-logical-app.json",
        "drill-db1-logical-billing.json",
        "drill-db1-pitr.json",
        "drill-db1-rebuild.json",
    }
    with pytest.raises(ValueError, match="names its database"):
        status_path(tmp_path, "db1", "logical")

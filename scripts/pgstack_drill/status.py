"""The drill status file: one JSON document per drilled thing, read by the exporter.

Format version 1 (docs/drills.md): ``<status_dir>/drill-<cluster>-logical-<database>.json`` for
the logical drill of each database, ``<status_dir>/drill-<cluster>-<kind>.json`` for the drills of
the whole cluster (pitr, rebuild)::

    {
      "version": 1, "kind": "drill", "drill": "logical", "cluster": "db1", "database": "app",
      "objectives": {"rto_seconds": 3600, "rpo_seconds": 300},
      "last_attempt": {
        "started_at": "...Z", "finished_at": "...Z" | null, "result": "running|passed|failed|error",
        "exit_code": 0 | null, "rto_seconds": 252.4 | null, "rpo_seconds": 6.0 | null,
        "error": null | "one line", "report": "/path/to/report.json" | null
      },
      "last_success": { same fields, result "passed" } | null,
      "last_measured": {"rto_seconds": 252.4 | null, "rpo_seconds": 6.0 | null}
    }

``last_measured`` keeps each objective's latest measurement, so a drill that measures no RPO (a
PITR to a restore point) does not hide the RPO measured before it.

Written atomically at the start of a drill (``running``) and at its end.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pgstack_common.files import write_atomic

FORMAT_VERSION = 1
KINDS = ("logical", "pitr", "rebuild")
RESULTS = ("running", "passed", "failed", "error")
Result = Literal["running", "passed", "failed", "error"]
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number or null, got {value!r}")
    return float(value)


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


@dataclasses.dataclass(frozen=True)
class Attempt:
    started_at: datetime
    result: Result
    finished_at: datetime | None = None
    exit_code: int | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    error: str | None = None
    report: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": format_time(self.started_at),
            "finished_at": format_time(self.finished_at) if self.finished_at else None,
            "result": self.result,
            "exit_code": self.exit_code,
            "rto_seconds": _rounded(self.rto_seconds),
            "rpo_seconds": _rounded(self.rpo_seconds),
            "error": self.error,
            "report": self.report,
        }

    @classmethod
    def from_json(cls, data: Any) -> Attempt:
        if not isinstance(data, dict):
            raise ValueError("attempt: expected an object")
        result = data["result"]
        if result not in RESULTS:
            raise ValueError(f"result: unknown value {result!r}")
        finished = data.get("finished_at")
        exit_code = data.get("exit_code")
        if exit_code is not None and (
            isinstance(exit_code, bool) or not isinstance(exit_code, int)
        ):
            raise ValueError(f"exit_code: expected an integer or null, got {exit_code!r}")
        return cls(
            started_at=parse_time(data["started_at"]),
            result=result,
            finished_at=parse_time(finished) if finished else None,
            exit_code=exit_code,
            rto_seconds=_number(data.get("rto_seconds"), "rto_seconds"),
            rpo_seconds=_number(data.get("rpo_seconds"), "rpo_seconds"),
            error=data.get("error"),
            report=data.get("report"),
        )


@dataclasses.dataclass(frozen=True)
class Status:
    drill: str
    cluster: str
    database: str | None
    rto_objective: float
    rpo_objective: float
    last_attempt: Attempt | None = None
    last_success: Attempt | None = None
    last_rto_seconds: float | None = None
    last_rpo_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "kind": "drill",
            "drill": self.drill,
            "cluster": self.cluster,
            "database": self.database,
            "objectives": {"rto_seconds": self.rto_objective, "rpo_seconds": self.rpo_objective},
            "last_attempt": self.last_attempt.to_json() if self.last_attempt else None,
            "last_success": self.last_success.to_json() if self.last_success else None,
            "last_measured": {
                "rto_seconds": _rounded(self.last_rto_seconds),
                "rpo_seconds": _rounded(self.last_rpo_seconds),
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> Status:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError("not a drill status document of format version 1")
        if data.get("kind") != "drill" or data.get("drill") not in KINDS:
            raise ValueError("kind must be 'drill' and drill one of " + ", ".join(KINDS))
        objectives = data["objectives"]
        attempt = data.get("last_attempt")
        success = data.get("last_success")
        measured = data.get("last_measured") or {}
        if not isinstance(measured, dict):
            raise ValueError("last_measured: expected an object or null")
        return cls(
            drill=data["drill"],
            cluster=str(data["cluster"]),
            database=data.get("database"),
            rto_objective=float(objectives["rto_seconds"]),
            rpo_objective=float(objectives["rpo_seconds"]),
            last_attempt=Attempt.from_json(attempt) if attempt else None,
            last_success=Attempt.from_json(success) if success else None,
            last_rto_seconds=_number(measured.get("rto_seconds"), "last_measured.rto_seconds"),
            last_rpo_seconds=_number(measured.get("rpo_seconds"), "last_measured.rpo_seconds"),
        )


def status_path(status_dir: Path, cluster: str, drill: str, database: str | None = None) -> Path:
    """Where a drill's status lives: per database for the logical drill (one database's failure
    must not be replaced by the next one's success), per cluster for the others."""
    if drill == "logical":
        if not database:
            raise ValueError("the status file of a logical drill names its database")
        return status_dir / f"drill-{cluster}-logical-{database}.json"
    return status_dir / f"drill-{cluster}-{drill}.json"


def shared_logical_path(status_dir: Path, cluster: str) -> Path:
    """The one logical status file of a cluster that earlier versions wrote for every database (the
    last database drilled replaced the others'); its database's first drill takes it over."""
    return status_dir / f"drill-{cluster}-logical.json"


def shared_history(status_dir: Path, cluster: str, database: str) -> Status | None:
    """The shared logical status file's history when it belongs to ``database`` (the drill then
    writes it to the database's own file and removes the shared one); None otherwise."""
    found = read_status(shared_logical_path(status_dir, cluster))
    if found is None or found.drill != "logical" or found.database != database:
        return None
    return found


def read_status(path: Path) -> Status | None:
    """The recorded status, or None when there is none or it cannot be read (it is replaced)."""
    try:
        return Status.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None


def record(path: Path, status: Status, attempt: Attempt) -> Status:
    """Store ``attempt`` as the last attempt (and as the last success when it passed), and what it
    measured as the last measurements."""
    success = attempt if attempt.result == "passed" else status.last_success
    rto = attempt.rto_seconds if attempt.rto_seconds is not None else status.last_rto_seconds
    rpo = attempt.rpo_seconds if attempt.rpo_seconds is not None else status.last_rpo_seconds
    updated = dataclasses.replace(
        status,
        last_attempt=attempt,
        last_success=success,
        last_rto_seconds=rto,
        last_rpo_seconds=rpo,
    )
    text = json.dumps(updated.to_json(), indent=2, sort_keys=True) + "\n"
    write_atomic(path, text.encode("utf-8"), mode=0o644)
    return updated

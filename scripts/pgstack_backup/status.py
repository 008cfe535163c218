"""The backup status file: one JSON document per (cluster, database), read by the exporter.

Format version 1 (docs/backup.md)::

    {
      "version": 1,
      "kind": "pg_dump",
      "cluster": "db1",
      "database": "app",
      "last_attempt": {
        "started_at": "2026-11-23T03:00:00Z",
        "finished_at": "2026-11-23T03:00:12Z",   # null while running
        "duration_seconds": 12.1,                # null while running
        "exit_status": "success",                # "running" | "success" | "failed"
        "error": null,                           # a one-line reason when failed
        "path": "/var/backups/pgstack/dumps/db1/app/20261123T030000Z",  # null unless success
        "size_bytes": 123456                     # null unless success
      },
      "last_success": { same fields as last_attempt, exit_status "success" } or null
    }

Writes are atomic (temporary file, fsync, rename): a reader never sees half a document.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pgstack_common.files import write_atomic

FORMAT_VERSION = 1
ExitStatus = Literal["running", "success", "failed"]


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Attempt:
    started_at: datetime
    exit_status: ExitStatus
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    error: str | None = None
    path: str | None = None
    size_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": format_time(self.started_at),
            "finished_at": format_time(self.finished_at) if self.finished_at else None,
            "duration_seconds": (
                round(self.duration_seconds, 3) if self.duration_seconds is not None else None
            ),
            "exit_status": self.exit_status,
            "error": self.error,
            "path": self.path,
            "size_bytes": self.size_bytes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attempt:
        status = data["exit_status"]
        if status not in ("running", "success", "failed"):
            raise ValueError(f"unknown exit_status {status!r}")
        finished = data.get("finished_at")
        return cls(
            started_at=parse_time(data["started_at"]),
            exit_status=status,
            finished_at=parse_time(finished) if finished else None,
            duration_seconds=data.get("duration_seconds"),
            error=data.get("error"),
            path=data.get("path"),
            size_bytes=data.get("size_bytes"),
        )


@dataclasses.dataclass(frozen=True)
class Status:
    cluster: str
    database: str
    last_attempt: Attempt | None = None
    last_success: Attempt | None = None
    kind: str = "pg_dump"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "kind": self.kind,
            "cluster": self.cluster,
            "database": self.database,
            "last_attempt": self.last_attempt.to_json() if self.last_attempt else None,
            "last_success": self.last_success.to_json() if self.last_success else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> Status:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError("not a status document of format version 1")
        attempt = data.get("last_attempt")
        success = data.get("last_success")
        return cls(
            cluster=data["cluster"],
            database=data["database"],
            kind=data.get("kind", "pg_dump"),
            last_attempt=Attempt.from_json(attempt) if attempt else None,
            last_success=Attempt.from_json(success) if success else None,
        )


def status_path(status_dir: Path, cluster: str, database: str, kind: str = "pg_dump") -> Path:
    return status_dir / f"{kind}-{cluster}-{database}.json"


def read_status(path: Path, cluster: str, database: str) -> Status:
    """The recorded status, or an empty one when there is none or it cannot be read."""
    try:
        return Status.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return Status(cluster=cluster, database=database)
    except (ValueError, KeyError, TypeError):
        # A damaged file must not block recording new attempts; it is replaced as a whole.
        return Status(cluster=cluster, database=database)


def write_status(path: Path, status: Status) -> None:
    text = json.dumps(status.to_json(), indent=2, sort_keys=True) + "\n"
    write_atomic(path, text.encode("utf-8"), mode=0o644)


def record(path: Path, status: Status, attempt: Attempt) -> Status:
    """Store ``attempt`` as the last attempt (and as the last success when it succeeded)."""
    success = attempt if attempt.exit_status == "success" else status.last_success
    updated = dataclasses.replace(status, last_attempt=attempt, last_success=success)
    write_status(path, updated)
    return updated

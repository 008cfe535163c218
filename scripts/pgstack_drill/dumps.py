"""The pg_dump destination layout and the dump manifest (docs/backup.md), read-only.

``<destination>/<database>/<YYYYmmddTHHMMSSZ>[-<label>]/`` holds ``data.dump``, ``schema.dump``,
``globals.sql`` and ``manifest.json``; only directories with that final name and a manifest are
complete dumps (``.partial-*`` directories are runs in progress or killed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgstack_common.manifest import DUMP_FILES, MANIFEST_FILE
from pgstack_drill.errors import PreconditionError, VerificationFailed

DUMP_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<label>[a-z0-9][a-z0-9_.-]{0,62}))?$")


@dataclass(frozen=True, order=True)
class TableSummary:
    schema: str
    name: str
    rows: int
    checksum: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class FileEntry:
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    cluster: str
    database: str
    label: str | None
    started_at: str
    server_version: str
    tables: tuple[TableSummary, ...]
    files: dict[str, FileEntry]

    @property
    def size_bytes(self) -> int:
        return sum(entry.size_bytes for entry in self.files.values())


def parse_manifest(data: Any, source: str) -> Manifest:
    """A manifest of format version 1, or VerificationFailed naming what is wrong with it."""
    try:
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("not a manifest of format version 1")
        tables = tuple(
            TableSummary(
                schema=str(t["schema"]),
                name=str(t["name"]),
                rows=int(t["rows"]),
                checksum=str(t["checksum"]),
            )
            for t in data["tables"]
        )
        files = {
            name: FileEntry(size_bytes=int(entry["size_bytes"]), sha256=str(entry["sha256"]))
            for name, entry in data["files"].items()
        }
        missing = [name for name in DUMP_FILES if name not in files]
        if missing:
            raise ValueError(f"files: no entry for {', '.join(missing)}")
        return Manifest(
            cluster=str(data["cluster"]),
            database=str(data["database"]),
            label=data.get("label"),
            started_at=str(data["started_at"]),
            server_version=str(data.get("server_version", "")),
            tables=tables,
            files=files,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VerificationFailed(f"{source}: unreadable manifest: {exc}") from exc


def read_manifest(dump_dir: Path) -> Manifest:
    path = dump_dir / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VerificationFailed(f"{path}: cannot read: {exc.strerror}") from exc
    except ValueError as exc:
        raise VerificationFailed(f"{path}: not JSON: {exc}") from exc
    return parse_manifest(data, str(path))


def find_dump(destination: Path, database: str, name: str | None = None) -> Path:
    """The dump to restore: ``name`` (a directory name, or a label), else the newest complete one.

    A dump is complete when its directory has its final name and a manifest. Newest is by the
    time in the name; labelled dumps count, they are dumps like the others.
    """
    parent = destination / database
    candidates = []
    if parent.is_dir():
        for entry in parent.iterdir():
            match = DUMP_NAME.match(entry.name)
            if match is None or not (entry / MANIFEST_FILE).is_file():
                continue
            if name is None or name in (entry.name, match["label"]):
                candidates.append((match["stamp"], entry.name))
    if not candidates:
        wanted = f"a dump named or labelled {name!r}" if name else "no complete dump"
        prefix = "" if name is None else "no "
        raise PreconditionError(f"{parent}: {prefix}{wanted}")
    return parent / max(candidates)[1]


def compare_tables(
    expected: tuple[TableSummary, ...] | list[TableSummary],
    actual: list[TableSummary],
) -> list[str]:
    """One line per difference between the manifest and the restored database; empty when equal."""
    problems = []
    found = {(t.schema, t.name): t for t in actual}
    wanted = {(t.schema, t.name): t for t in expected}
    for key, table in sorted(wanted.items()):
        got = found.get(key)
        if got is None:
            problems.append(f"{table.qualified}: missing from the restored database")
        elif got.rows != table.rows:
            problems.append(f"{table.qualified}: {got.rows} rows, the manifest says {table.rows}")
        elif got.checksum != table.checksum:
            problems.append(
                f"{table.qualified}: checksum {got.checksum}, the manifest says {table.checksum}"
            )
    for key in sorted(set(found) - set(wanted)):
        problems.append(f"{found[key].qualified}: restored but not in the manifest")
    return problems

"""One pg_dump run for one database: the safe write protocol, the manifest, retention.

Protocol: everything is written into ``<database>/.partial-<name>/``; the dumps are read back whole
(``pg_restore -f /dev/null``: ``--list`` passes a truncated file), every file and the directory are
fsynced, and only then is the directory renamed to its final name ``<stamp>[-<label>]`` and the
parent fsynced. A failed or killed run leaves at most a ``.partial-*`` directory, which the next run
removes; it never replaces or hides the last good dump. A failed run (a full filesystem included)
removes its partial directory itself and names the file it was writing in its error.

The manifest (every table's row count and an order-independent checksum of its rows) is computed in
the transaction whose snapshot pg_dump uses (``pg_export_snapshot`` + ``pg_dump --snapshot``), so a
restore can be compared with it exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pgstack_backup.config import Config
from pgstack_backup.errors import DumpFailed, PreconditionError
from pgstack_backup.retention import PARTIAL_PREFIX, prune, stamp
from pgstack_backup.status import format_time
from pgstack_common.files import fsync_path, write_atomic
from pgstack_common.manifest import (
    DATA_FILE,
    GLOBALS_FILE,
    MANIFEST_FILE,
    MANIFEST_VERSION,
    SCHEMA_FILE,
    TABLE_SUMMARY_QUERY,
    TABLES_QUERY,
)

log = logging.getLogger(__name__)

GLOBALS_TRAILER = "PostgreSQL database cluster dump complete"


class Cursor(Protocol):
    def execute(self, query: Any, params: Any = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True)
class TableSummary:
    schema: str
    name: str
    rows: int
    checksum: str

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema, "name": self.name, "rows": self.rows,
                "checksum": self.checksum}  # fmt: skip


def table_summaries(cursor: Cursor, quote: Callable[[str, str], Any]) -> list[TableSummary]:
    """Row count and checksum of every table, in the cursor's transaction (its snapshot)."""
    cursor.execute(TABLES_QUERY)
    summaries = []
    for schema, name in cursor.fetchall():
        cursor.execute(quote(schema, name))
        rows, checksum = cursor.fetchone()
        summaries.append(TableSummary(schema=schema, name=name, rows=int(rows), checksum=checksum))
    return summaries


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class DumpResult:
    path: Path
    size_bytes: int


class Runner:
    """Dumps databases as ``config`` says; ``now`` is the clock (tests pass their own)."""

    def __init__(self, config: Config, now: Callable[[], datetime]) -> None:
        self.config = config
        self.now = now

    # --- paths

    def database_dir(self, database: str) -> Path:
        return self.config.destination / database

    def _run(self, argv: list[str], what: str, timeout: float | None = None) -> None:
        log.debug("running %s", argv[0])
        with subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        ) as proc:
            try:
                _, stderr = proc.communicate(timeout=timeout)
            except BaseException:
                proc.kill()
                raise
        if proc.returncode != 0:
            raise DumpFailed(f"{what} failed (exit {proc.returncode}): {_last_line(stderr)}")

    def _tool(self, name: str) -> str:
        return str(self.config.bin_dir / name)

    # --- the protocol

    def dump(self, database: str, label: str | None = None) -> DumpResult:
        parent = self.database_dir(database)
        if not parent.is_dir():
            try:
                parent.mkdir(mode=0o750, parents=False)
            except OSError as exc:
                raise PreconditionError(f"cannot create {parent}: {exc.strerror}") from exc
        started = self.now()
        final_name = stamp(started) + (f"-{label}" if label else "")
        final = parent / final_name
        if final.exists():
            raise PreconditionError(f"{final} already exists")
        partial = parent / f"{PARTIAL_PREFIX}{final_name}"
        try:
            partial.mkdir(mode=0o750)
        except OSError as exc:
            raise PreconditionError(f"cannot write in {parent}: {exc.strerror}") from exc
        try:
            manifest = self._dump_into(partial, database, started, label)
            for name in (DATA_FILE, SCHEMA_FILE):
                self._run(
                    [self._tool("pg_restore"), "--file=/dev/null", str(partial / name)],
                    f"reading back {name}",
                )
            globals_path = partial / GLOBALS_FILE
            if GLOBALS_TRAILER.encode() not in globals_path.read_bytes():
                # pg_dumpall exits 0 when a write fails (a full filesystem): say how much is left.
                raise DumpFailed(
                    f"{globals_path} is incomplete ({_available(partial)} bytes available on its "
                    f"filesystem; pg_dumpall does not report failed writes)"
                )
            files: dict[str, dict[str, Any]] = {}
            size = 0
            for name in (DATA_FILE, SCHEMA_FILE, GLOBALS_FILE):
                path = partial / name
                fsync_path(path)
                files[name] = {"size_bytes": path.stat().st_size, "sha256": sha256_of(path)}
                size += path.stat().st_size
            manifest["files"] = files
            manifest["finished_at"] = format_time(self.now())
            write_atomic(
                partial / MANIFEST_FILE,
                (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
                mode=0o640,
            )
            fsync_path(partial)
            partial.rename(final)
            fsync_path(parent)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise DumpFailed(f"{exc.filename or partial}: {exc.strerror or exc}") from exc
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        log.info("dump of %s complete: %s (%d bytes)", database, final, size)
        return DumpResult(path=final, size_bytes=size)

    def _dump_into(
        self, partial: Path, database: str, started: datetime, label: str | None
    ) -> dict[str, Any]:
        import psycopg  # noqa: PLC0415 - Debian's python3-psycopg, on the host only
        from psycopg import sql  # noqa: PLC0415

        conninfo = self.config.connection.conninfo(database)
        with psycopg.connect(conninfo) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version')")
            snapshot, server_version = row.fetchone() or ("", "")
            common = [f"--dbname={conninfo}", f"--snapshot={snapshot}", "--no-password"]
            data = [self._tool("pg_dump"), *common, "--format=custom",
                    f"--compress={self.config.compress_level}",
                    f"--file={partial / DATA_FILE}"]  # fmt: skip
            schema = [self._tool("pg_dump"), *common, "--format=custom", "--schema-only",
                      f"--file={partial / SCHEMA_FILE}"]  # fmt: skip
            with _started(data) as data_proc, _started(schema) as schema_proc:
                # pg_dump imports the snapshot as it starts; the transaction stays open meanwhile.
                with conn.cursor() as cursor:
                    summaries = table_summaries(
                        cursor,
                        lambda s, n: sql.SQL(TABLE_SUMMARY_QUERY).format(sql.Identifier(s, n)),
                    )
                for proc, what in (
                    (data_proc, f"pg_dump into {partial / DATA_FILE}"),
                    (schema_proc, f"pg_dump --schema-only into {partial / SCHEMA_FILE}"),
                ):
                    _, stderr = proc.communicate()
                    if proc.returncode != 0:
                        raise DumpFailed(f"{what} failed (exit {proc.returncode}): "
                                         f"{_last_line(stderr)}")  # fmt: skip
            conn.rollback()
        self._run(
            [self._tool("pg_dumpall"), f"--dbname={self.config.connection.conninfo('postgres')}",
             "--globals-only", "--no-role-passwords", "--no-password",
             f"--file={partial / GLOBALS_FILE}"],
            f"pg_dumpall --globals-only into {partial / GLOBALS_FILE}",
        )  # fmt: skip
        return {
            "version": MANIFEST_VERSION,
            "cluster": self.config.cluster,
            "database": database,
            "label": label,
            "started_at": format_time(started),
            "snapshot": snapshot,
            "server_version": server_version,
            "compress_level": self.config.compress_level,
            "tables": [summary.to_json() for summary in summaries],
        }

    def prune(self, database: str) -> list[str]:
        """Apply retention to a database's dumps (the caller holds the lock); return what went."""
        return prune(
            self.database_dir(database),
            now=self.now(),
            max_age=timedelta(days=self.config.retention.max_age_days),
            min_count=self.config.retention.min_count,
        )


@contextmanager
def _started(argv: list[str]) -> Iterator[subprocess.Popen[str]]:
    """A child process that is killed if the block is left early (error or SIGTERM)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _available(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:500] if lines else "no message"

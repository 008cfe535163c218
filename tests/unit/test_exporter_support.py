"""Fakes for the exporter's seams, example status documents and a throwaway CA, shared by its
tests (no tests here).

The examples follow the documented formats: docs/backup.md (pg_dump) and docs/metrics.md (drills).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pgstack_exporter.config import RedisTarget as RedisConfig
from pgstack_exporter.sql import Row, SqlParams


class BySql:
    """An answer that depends on the statement: the rows under the first key the SQL names (a
    view, say), as a server whose version has that view would answer."""

    def __init__(self, answers: Mapping[str, list[Row]]) -> None:
        self.answers = answers

    def rows(self, sql: str) -> list[Row]:
        for key, rows in self.answers.items():
            if key in sql:
                return rows
        raise AssertionError(f"no answer for {sql!r}")


Answer = list[Row] | Exception | Callable[[], list[Row]] | BySql


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


class FakeSqlSession:
    def __init__(self, answers: Mapping[str, Answer]) -> None:
        self.answers = answers
        self.queries: list[str] = []
        self.closed = False
        self.is_broken = False
        self.aborted = threading.Event()

    def query(self, name: str, sql: str) -> list[Row]:
        assert sql.strip(), name
        self.queries.append(name)
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, BySql):
            answer = answer.rows(sql)
        elif callable(answer):
            return answer()
        return [dict(row) for row in answer]

    def query_many(self, name: str, sql: str) -> list[Row]:
        # The real session wraps the statement in json_agg; the rows are the same.
        return self.query(name, sql)

    def broken(self) -> bool:
        return self.is_broken

    def abort(self) -> None:
        self.aborted.set()

    def close(self) -> None:
        self.closed = True


class FakeSqlConnector:
    """Hands out sessions answering from ``answers``; ``fail`` makes the next connects raise
    (after ``on_fail``: e.g. a clock advanced by the time a refused connect takes)."""

    def __init__(self, answers: Mapping[str, Answer]) -> None:
        self.answers = dict(answers)
        self.sessions: list[FakeSqlSession] = []
        self.params: list[SqlParams] = []
        self.fail: Exception | None = None
        self.on_fail: Callable[[], None] | None = None

    def __call__(self, params: SqlParams) -> FakeSqlSession:
        self.params.append(params)
        if self.fail is not None:
            if self.on_fail is not None:
                self.on_fail()
            raise self.fail
        session = FakeSqlSession(self.answers)
        self.sessions.append(session)
        return session


class FakeRedisSession:
    """``on_ping`` runs inside every PING (for example a FakeClock advancing by its cost);
    ``replies`` answers ``command()`` by its words (an exception is raised)."""

    def __init__(
        self,
        info: dict[str, Any],
        config: dict[str, Any] | None = None,
        on_ping: Callable[[], None] | None = None,
        replies: Mapping[tuple[str, ...], Any] | None = None,
    ) -> None:
        self._info = info
        self._config = config or {}
        self._on_ping = on_ping
        self._replies = replies if replies is not None else {}
        self.commands: list[tuple[str, ...]] = []
        self.closed = False

    def ping(self) -> None:
        if isinstance(self._info.get("error"), Exception):
            raise self._info["error"]
        if self._on_ping is not None:
            self._on_ping()

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def config_get(self, name: str) -> dict[str, Any]:
        return {name: self._config[name]} if name in self._config else {}

    def command(self, *args: str) -> Any:
        self.commands.append(args)
        reply = self._replies[args]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        self.closed = True


class FakeRedisConnector:
    def __init__(
        self,
        info: dict[str, Any],
        config: dict[str, Any] | None = None,
        replies: Mapping[tuple[str, ...], Any] | None = None,
    ) -> None:
        self.info = info
        self.config = config
        self.replies = dict(replies or {})
        self.sessions: list[FakeRedisSession] = []
        self.connects = 0
        self.fail: Exception | None = None
        self.on_fail: Callable[[], None] | None = None
        self.on_ping: Callable[[], None] | None = None

    def __call__(self, config: RedisConfig) -> FakeRedisSession:
        self.connects += 1
        if self.fail is not None:
            if self.on_fail is not None:
                self.on_fail()
            raise self.fail
        session = FakeRedisSession(self.info, self.config, self.on_ping, self.replies)
        self.sessions.append(session)
        return session


def dump_attempt(status: str = "success", day: int = 23, database: str = "app") -> dict[str, Any]:
    ok = status == "success"
    return {
        "started_at": f"2026-11-{day}T03:00:00Z",
        "finished_at": f"2026-11-{day}T03:00:12Z",
        "duration_seconds": 12.1,
        "exit_status": status,
        "error": None if ok else "pg_dump exited 1",
        "path": f"/var/backups/pgstack/dumps/db1/{database}/202611{day}T030000Z" if ok else None,
        "size_bytes": 123456 if ok else None,
    }


def dump_status(
    database: str, attempt: dict[str, Any], success: dict[str, Any] | None
) -> dict[str, Any]:
    return {"version": 1, "kind": "pg_dump", "cluster": "db1", "database": database,
            "last_attempt": attempt, "last_success": success}  # fmt: skip


def drill_attempt(result: str, rto: float | None, rpo: float | None) -> dict[str, Any]:
    running = result == "running"
    return {
        "started_at": "2026-11-23T03:00:00Z",
        "finished_at": None if running else "2026-11-23T03:04:12Z",
        "result": result,
        "exit_code": None if running else 0,
        "rto_seconds": rto,
        "rpo_seconds": rpo,
        "error": None,
        "report": None if running else "/var/lib/pgstack/drills/reports/20261123T030000Z.json",
    }


def drill_status(drill: str, database: str | None, attempt: dict[str, Any],
                 success: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    return {"version": 1, "kind": "drill", "drill": drill, "cluster": "db1", "database": database,
            "objectives": {"rto_seconds": 3600, "rpo_seconds": 300},
            "last_attempt": attempt, "last_success": success}  # fmt: skip


DUMP_SUCCESS = dump_status("app", dump_attempt(), dump_attempt())
DUMP_FAILED_NEVER_SUCCEEDED = dump_status(
    "shop", dump_attempt("failed", day=24, database="shop"), None
)
DRILL = drill_status(
    "logical", "app", drill_attempt("passed", 252.4, None), drill_attempt("passed", 252.4, None)
)
DRILL_PITR = drill_status(
    "pitr", None, drill_attempt("passed", 540.0, 6.0), drill_attempt("passed", 540.0, 6.0)
)
PITR_RUNNING = drill_status("pitr", None, drill_attempt("running", None, None), None)


def _openssl(*argv: str | Path) -> None:
    subprocess.run(["openssl", *map(str, argv)], check=True, capture_output=True, timeout=30)


EC_P256 = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclasses.dataclass(frozen=True)
class ThrowawayCa:
    """A CA (ECDSA P-256) made with the openssl command, issuing certificates for one test."""

    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path, name: str = "ca") -> ThrowawayCa:
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        subject = f"/CN=pgstack test {name}"
        _openssl(
            "req", "-x509", *EC_P256, "-keyout", key, "-out", cert, "-days", "2", "-subj", subject
        )
        return cls(cert, key)

    def issue(
        self, name: str, serial: int, *, client: bool = False, key: Path | None = None
    ) -> tuple[Path, Path]:
        """A certificate (serial ``serial``) and its key in the CA's directory: a server's for
        127.0.0.1 and localhost, or a client's; ``key`` reuses a key (a renewal)."""
        directory = self.cert.parent
        crt, csr, ext = (directory / f"{name}{suffix}" for suffix in (".crt", ".csr", ".ext"))
        ext.write_text(
            "extendedKeyUsage=clientAuth\n"
            if client
            else "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        )
        if key is None:
            key = directory / f"{name}.key"
            _openssl("req", *EC_P256, "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
        else:
            _openssl("req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={name}")
        signed_by = ("-CA", self.cert, "-CAkey", self.key, "-set_serial", str(serial))
        _openssl("x509", "-req", "-in", csr, *signed_by, "-days", "2", "-out", crt, "-extfile", ext)
        return crt, key


# --- the web configuration (--web.config.file)


def bcrypt_hash(password: str, prefix: str = "$2y$") -> str:
    """The form htpasswd -B writes ($2y$), at the lowest cost: the tests pay bcrypt often."""
    import bcrypt  # noqa: PLC0415 (only the web configuration's tests need it)

    return prefix + bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()[4:]


def basic(user: str, password: str) -> str:
    """An Authorization header for basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def replace(path: Path, data: bytes | str) -> None:
    """As a configuration tool writes a file: a new file renamed over the old one."""
    new = path.with_name(path.name + ".new")
    if isinstance(data, str):
        new.write_text(data)
    else:
        new.write_bytes(data)
    os.replace(new, path)

"""SQL sessions (PostgreSQL and PgBouncer's admin console) behind a small Protocol seam."""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from pgstack_exporter.config import read_secret
from pgstack_exporter.runtime import Clock, Executor, Target

Row = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SqlParams:
    """Where and how to connect; the password is read from ``password_file`` at each connect."""

    host: str
    port: int
    user: str
    dbname: str
    sslmode: str
    sslrootcert: Path | None
    password_file: Path | None
    connect_timeout: int
    # Server-side limits sent as startup options (PostgreSQL only: PgBouncer refuses "options").
    statement_timeout_ms: int | None = None
    lock_timeout_ms: int | None = None
    # PgBouncer's admin console speaks only the simple query protocol.
    simple_protocol: bool = False


class SqlSession(Protocol):
    def query(self, name: str, sql: str) -> list[Row]:
        """Rows of ``sql`` keyed by column name; ``name`` names the query (fakes use it)."""
        ...

    def query_many(self, name: str, sql: str) -> list[Row]:
        """Rows of a SELECT whose rows grow with the cluster (one per database), sent by the
        server as one JSON array: the client loads one value instead of one per column and row
        (Debian 12's psycopg loads each through ctypes, a few microseconds apiece). Values are
        JSON's: numbers (int or float), strings, booleans, None."""
        ...

    def broken(self) -> bool: ...

    def abort(self) -> None:
        """Break a query in progress from another thread (shuts the socket down)."""
        ...

    def close(self) -> None: ...


class SqlConnector(Protocol):
    def __call__(self, params: SqlParams) -> SqlSession: ...


class PsycopgSession:
    def __init__(self, connection: psycopg.Connection[Row]) -> None:
        self._connection = connection
        self._aborted = False

    def query(self, name: str, sql: str) -> list[Row]:
        del name
        with self._connection.cursor() as cursor:
            cursor.execute(sql.encode())  # bytes: a literal statement, never a template
            return list(cursor.fetchall()) if cursor.description else []

    def query_many(self, name: str, sql: str) -> list[Row]:
        wrapped = f"SELECT coalesce(json_agg(q), '[]')::text AS rows FROM ({sql}) AS q"  # noqa: S608
        rows: list[Row] = json.loads(self.query(name, wrapped)[0]["rows"])
        return rows

    def broken(self) -> bool:
        return self._aborted or self._connection.closed or self._connection.broken

    def abort(self) -> None:
        self._aborted = True
        with contextlib.suppress(OSError, psycopg.Error):
            duplicate = socket.socket(fileno=os.dup(self._connection.fileno()))
            try:
                duplicate.shutdown(socket.SHUT_RDWR)
            finally:
                duplicate.close()

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error, OSError):
            self._connection.close()


def psycopg_connect(params: SqlParams) -> SqlSession:
    """A psycopg 3 connection in autocommit mode (no transaction is ever left open)."""
    options = []
    if params.statement_timeout_ms is not None:
        options.append(f"-c statement_timeout={int(params.statement_timeout_ms)}")
    if params.lock_timeout_ms is not None:
        options.append(f"-c lock_timeout={int(params.lock_timeout_ms)}")
    # Keyword arguments, never a DSN string: nothing here is ever formatted into a message.
    kwargs: dict[str, Any] = {
        "host": params.host,
        "port": params.port,
        "user": params.user,
        "dbname": params.dbname,
        "connect_timeout": max(2, params.connect_timeout),
        "application_name": "pgstack-exporter",
        "sslmode": "disable" if params.host.startswith("/") else params.sslmode,
        "keepalives": 1,
        "keepalives_idle": 30,
    }
    if params.sslrootcert is not None:
        kwargs["sslrootcert"] = str(params.sslrootcert)
    password = read_secret(params.password_file)
    if password is not None:
        kwargs["password"] = password
    if options:
        kwargs["options"] = " ".join(options)
    if params.simple_protocol:
        connection: psycopg.Connection[Row] = psycopg.connect(
            autocommit=True, row_factory=dict_row, cursor_factory=psycopg.ClientCursor, **kwargs
        )
    else:
        connection = psycopg.connect(autocommit=True, row_factory=dict_row, **kwargs)
    return PsycopgSession(connection)


class SqlTarget(Target):
    """A target behind one SQL session, kept open between scrapes and reopened once broken."""

    def __init__(
        self, name: str, timeout: float, connect: SqlConnector, clock: Clock, executor: Executor
    ) -> None:
        super().__init__(name, timeout, clock, executor)
        self._connect = connect
        self._session: SqlSession | None = None

    @abc.abstractmethod
    def params(self) -> SqlParams:
        """How to connect."""

    def session(self) -> SqlSession:
        """The open session, or a new one when there is none or it broke."""
        if self._session is None or self._session.broken():
            self.close()
            self._session = self._connect(self.params())
        return self._session

    def abort(self) -> None:
        session = self._session
        if session is not None:
            session.abort()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def close_if_broken(self) -> None:
        if self._session is not None and self._session.broken():
            self.close()

"""The postgresql role seen from a client on the controller, against the converged lab host db1.

Real clients only: psycopg 3 and the psql binary, with sslmode=verify-full against the lab CA.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import psycopg
import pytest
from helpers import (
    ROLE_SECRETS,
    SSL_QUERY,
    DbHost,
    conninfo,
    make_foreign_ca,
    run_psql,
)
from psycopg import errors, sql

pytestmark = [pytest.mark.e2e, pytest.mark.release]

Connect = Callable[..., psycopg.Connection[tuple[object, ...]]]
By = Literal["fqdn", "address"]


@pytest.fixture
def connect(db_host: DbHost, ca_file: Path, secret: Callable[[str], str]) -> Iterator[Connect]:
    """Open autocommit psycopg connections as a lab login role; all are closed at teardown."""
    opened: list[psycopg.Connection[tuple[object, ...]]] = []

    def _connect(
        role: str, *, by: By = "fqdn", dbname: str = "app"
    ) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(
            conninfo(db_host, role, ca_file, by=by, dbname=dbname),
            password=secret(ROLE_SECRETS[role]),
            autocommit=True,
        )
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


@pytest.fixture
def app_table(connect: Connect) -> Iterator[str]:
    """A table the migration role creates (and drops afterwards) in the app database."""
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    migration = connect("app_migration")
    migration.execute(
        sql.SQL("CREATE TABLE public.{} (id bigserial PRIMARY KEY, note text NOT NULL)").format(
            sql.Identifier(name)
        )
    )
    yield name
    migration.execute(sql.SQL("DROP TABLE IF EXISTS public.{}").format(sql.Identifier(name)))


# 1. TLS with verify-full


@pytest.mark.parametrize("by", ["fqdn", "address"])
def test_app_connects_over_tls_with_psycopg(connect: Connect, by: By) -> None:
    conn = connect("app", by=by)
    row = conn.execute(SSL_QUERY).fetchone()
    assert row == (True,)


@pytest.mark.parametrize("by", ["fqdn", "address"])
def test_app_connects_over_tls_with_psql(
    db_host: DbHost, ca_file: Path, secret: Callable[[str], str], by: By
) -> None:
    result = run_psql(conninfo(db_host, "app", ca_file, by=by), secret("postgresql_app"), SSL_QUERY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "t"


# 2. Refusals


def test_connection_without_tls_is_refused(
    db_host: DbHost, ca_file: Path, secret: Callable[[str], str]
) -> None:
    dsn = conninfo(db_host, "app", ca_file, sslmode="disable")
    with pytest.raises(psycopg.OperationalError) as excinfo:
        psycopg.connect(dsn, password=secret("postgresql_app")).close()
    message = str(excinfo.value)
    assert "no encryption" in message
    assert "pg_hba.conf" in message

    result = run_psql(dsn, secret("postgresql_app"), "SELECT 1")
    assert result.returncode != 0
    assert "no encryption" in result.stderr


@pytest.fixture
def foreign_ca(tmp_path: Path) -> Path:
    """A freshly made CA certificate that signed nothing the lab uses."""
    return make_foreign_ca(tmp_path)


@pytest.mark.parametrize("by", ["fqdn", "address"])
def test_connection_trusting_a_foreign_ca_is_refused(
    db_host: DbHost, foreign_ca: Path, secret: Callable[[str], str], by: By
) -> None:
    dsn = conninfo(db_host, "app", foreign_ca, by=by)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(dsn, password=secret("postgresql_app")).close()

    result = run_psql(dsn, secret("postgresql_app"), "SELECT 1")
    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr


def test_wrong_password_is_refused(db_host: DbHost, ca_file: Path) -> None:
    dsn = conninfo(db_host, "app", ca_file)
    wrong = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn, password=wrong).close()

    result = run_psql(dsn, wrong, "SELECT 1")
    assert result.returncode != 0
    assert "password authentication failed" in result.stderr


# 3. App and migration privileges


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE public.e2e_forbidden (id int)",
        "CREATE TABLE e2e_forbidden_unqualified (id int)",
        "CREATE ROLE e2e_forbidden_role",
        "CREATE DATABASE e2e_forbidden_db",
    ],
)
def test_app_cannot_create_tables_roles_or_databases(connect: Connect, statement: str) -> None:
    conn = connect("app")
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_app_reads_and_writes_tables_the_migration_role_creates(
    connect: Connect, app_table: str
) -> None:
    table = sql.Identifier(app_table)
    app = connect("app")

    row = app.execute(
        sql.SQL("INSERT INTO public.{} (note) VALUES (%s) RETURNING id").format(table), ["first"]
    ).fetchone()
    assert row is not None
    row_id = row[0]
    assert app.execute(
        sql.SQL("SELECT note FROM public.{} WHERE id = %s").format(table), [row_id]
    ).fetchall() == [("first",)]

    updated = app.execute(
        sql.SQL("UPDATE public.{} SET note = %s WHERE id = %s").format(table), ["second", row_id]
    )
    assert updated.rowcount == 1
    assert app.execute(
        sql.SQL("SELECT note FROM public.{} WHERE id = %s").format(table), [row_id]
    ).fetchall() == [("second",)]

    deleted = app.execute(sql.SQL("DELETE FROM public.{} WHERE id = %s").format(table), [row_id])
    assert deleted.rowcount == 1
    assert app.execute(sql.SQL("SELECT count(*) FROM public.{}").format(table)).fetchone() == (0,)

    # DDL stays with the migration role.
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute(sql.SQL("DROP TABLE public.{}").format(table))


# 4. Monitoring


def test_monitoring_sees_sessions_but_not_application_data(
    connect: Connect, app_table: str
) -> None:
    marker = f"e2e-marker-{uuid.uuid4().hex}"
    app = connect("app")
    app.execute(sql.SQL("SELECT {}").format(sql.Literal(marker)))

    monitoring = connect("pgstack_monitoring")
    rows = monitoring.execute(
        "SELECT query FROM pg_stat_activity WHERE usename = 'app' AND pid <> pg_backend_pid()"
    ).fetchall()
    assert any(marker in str(query) for (query,) in rows), rows

    with pytest.raises(errors.InsufficientPrivilege):
        monitoring.execute(sql.SQL("SELECT * FROM public.{}").format(sql.Identifier(app_table)))

"""Connections to a scratch cluster (psycopg, Debian's python3-psycopg on the host)."""

from __future__ import annotations

from typing import Any

from pgstack_common.manifest import TABLE_SUMMARY_QUERY, TABLES_QUERY, TEXT_FORM_SETTINGS
from pgstack_drill.dumps import TableSummary
from pgstack_drill.errors import UsageError


def add_dbname_argument(parser: Any, what: str) -> None:
    parser.add_argument(
        "--dbname",
        help=f"libpq connection string or URI of {what} (no password in it: use a passfile)",
    )


def checked_dbname(dbname: str | None) -> str:
    """``--dbname`` as given, refusing none and one that carries a password."""
    if not dbname:
        raise UsageError("--dbname is required (a libpq connection string without a password)")
    if "password" in dbname.lower():
        raise UsageError("--dbname: no password on the command line; use a passfile")
    return dbname


def connect(conninfo: str) -> Any:
    import psycopg  # noqa: PLC0415 - imported where used: the CLI's usage errors need no driver

    return psycopg.connect(conninfo, autocommit=True)


def set_text_form(conn: Any, timezone: str) -> None:
    """The session settings a row's text form depends on (see dumps.TEXT_FORM_SETTINGS)."""
    for name, value in {**TEXT_FORM_SETTINGS, "TimeZone": timezone}.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def summaries(conn: Any, on_table: Any = None) -> list[TableSummary]:
    """Row count and checksum of every table, as the manifest defines them."""
    from psycopg import sql  # noqa: PLC0415

    result = []
    tables = conn.execute(TABLES_QUERY).fetchall()
    for index, (schema, name) in enumerate(tables):
        if on_table is not None:
            on_table(index, len(tables), f"{schema}.{name}")
        query = sql.SQL(TABLE_SUMMARY_QUERY).format(sql.Identifier(schema, name))
        rows, checksum = conn.execute(query).fetchone()
        result.append(TableSummary(schema=schema, name=name, rows=int(rows), checksum=checksum))
    return result


def scalar(conn: Any, query: Any, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]

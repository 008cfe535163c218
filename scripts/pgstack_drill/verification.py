"""Verification of a whole cluster, shared by the drills that check one (pitr, rebuild).

Every database that allows connections, and that the drill's role may connect to, answers (the
others are listed: a least-privilege role such as the dump role has CONNECT on some only); each
expected table (``DB:SCHEMA.TABLE``) exists
and its rows are counted; each check (``DB:SQL``) returns true; the newest heartbeat is read for
the RPO. The cluster is reached through a connection factory (database name to an open psycopg
connection): the scratch cluster's socket for pitr, the rebuilt host over the network for rebuild.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgstack_drill import pg
from pgstack_drill.errors import UsageError, VerificationFailed
from pgstack_drill.schema import HEARTBEAT_NEWEST
from pgstack_drill.status import format_time

EXPECT_TABLE = re.compile(r"^(?P<db>[^:]+):(?P<schema>[^.]+)\.(?P<table>.+)$")
DATABASES_QUERY = (
    "SELECT datname, has_database_privilege(datname, 'CONNECT') FROM pg_database "
    "WHERE datallowconn AND NOT datistemplate ORDER BY 1"
)
USER_TABLES_QUERY = (
    "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
)

Connect = Callable[[str], Any]  # database name -> an open connection (a context manager)
Step = Callable[[str], None]  # told what is being verified, for the progress line


@dataclass(frozen=True)
class Expectations:
    tables: tuple[tuple[str, str, str], ...] = ()
    checks: tuple[tuple[str, str], ...] = ()
    heartbeat_database: str = "postgres"


@dataclass(frozen=True)
class Verified:
    # databases, without_connect, tables, checks, problems (the report's "verification")
    report: dict[str, Any]
    newest_heartbeat: datetime | None


def add_arguments(parser: argparse.ArgumentParser, when: str) -> None:
    """``--heartbeat-database``, ``--expect-table``, ``--check``; ``when``: "after recovery"."""
    parser.add_argument(
        "--heartbeat-database",
        default="postgres",
        help="database holding pgstack_heartbeat (default postgres)",
    )
    parser.add_argument(
        "--expect-table",
        action="append",
        default=[],
        metavar="DB:SCHEMA.TABLE",
        help=f"a table that must exist {when} (repeatable; rows are counted)",
    )
    parser.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="DB:SQL",
        help=f"a query that must return true {when} (repeatable)",
    )


def parse(args: argparse.Namespace) -> Expectations:
    tables = []
    for item in args.expect_table:
        match = EXPECT_TABLE.match(item)
        if match is None:
            raise UsageError(f"--expect-table: expected DB:SCHEMA.TABLE, got {item!r}")
        tables.append((match["db"], match["schema"], match["table"]))
    checks = []
    for item in args.check:
        database, _, query = item.partition(":")
        if not database or not query.strip():
            raise UsageError(f"--check: expected DB:SQL, got {item!r}")
        checks.append((database, query.strip()))
    if not args.heartbeat_database:
        raise UsageError("--heartbeat-database: expected a database name")
    return Expectations(tuple(tables), tuple(checks), args.heartbeat_database)


def verify(
    connect: Connect,
    expectations: Expectations,
    *,
    first: str = "postgres",
    where: str = "the restored cluster",
    problems: list[str] | None = None,
    step: Step | None = None,
) -> Verified:
    """Verify the cluster ``connect`` reaches; ``first`` is the database that lists the others.

    ``problems`` already found (by the caller) come first in the report's list. A failure to
    reach ``first`` is the caller's to handle (it raises); any other failure is a problem.
    """
    problems = list(problems or [])
    databases: dict[str, int] = {}
    with connect(first) as conn:
        listed = [(row[0], bool(row[1])) for row in conn.execute(DATABASES_QUERY).fetchall()]
    names = [name for name, allowed in listed if allowed]
    without_connect = [name for name, allowed in listed if not allowed]
    for name in names:
        if step is not None:
            step(f"database {name}")
        try:
            with connect(name) as conn:
                databases[name] = len(conn.execute(USER_TABLES_QUERY).fetchall())
        except Exception as exc:
            problems.append(f"database {name} does not answer: {_first_line(exc)}")
    tables = []
    for item in expectations.tables:
        if step is not None:
            step(f"table {item[0]}:{item[1]}.{item[2]}")
        tables.append(_expected_table(connect, item, databases, problems, where))
    checks = []
    for database, query in expectations.checks:
        if step is not None:
            step(f"check on {database}")
        ok = False
        try:
            with connect(database) as conn:
                ok = pg.scalar(conn, query) is True
        except Exception as exc:
            problems.append(f"check on {database} failed: {_first_line(exc)}")
        else:
            if not ok:
                problems.append(f"check on {database} is not true: {query}")
        checks.append({"database": database, "sql": query, "ok": ok})
    newest = None
    if expectations.heartbeat_database in databases:
        with connect(expectations.heartbeat_database) as conn:
            if pg.scalar(conn, "SELECT to_regclass('pgstack_heartbeat') IS NOT NULL"):
                newest = pg.scalar(conn, HEARTBEAT_NEWEST)
    report = {
        "databases": databases,
        "without_connect": without_connect,
        "tables": tables,
        "checks": checks,
        "problems": problems,
    }
    return Verified(report, newest)


def raise_problems(report: dict[str, Any]) -> None:
    """Fail the drill on the first problem of a verification (naming how many more there are)."""
    problems = report["problems"]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerificationFailed(f"verification: {problems[0]}{more}")


def rpo(disaster: datetime, newest: datetime) -> tuple[float, str]:
    """The data lost, in seconds, when the disaster struck after the newest heartbeat; a note."""
    seconds = max(0.0, (disaster - newest).total_seconds())
    return seconds, f"disaster at {format_time(disaster)}, newest heartbeat {newest.isoformat()}"


def no_heartbeat(expectations: Expectations) -> str:
    return f"no pgstack_heartbeat row in database {expectations.heartbeat_database}"


def _first_line(exc: Exception) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _expected_table(
    connect: Connect,
    item: tuple[str, str, str],
    databases: dict[str, int],
    problems: list[str],
    where: str,
) -> dict[str, Any]:
    """Whether ``DB:SCHEMA.TABLE`` exists in the cluster, and its row count."""
    from psycopg import sql  # noqa: PLC0415

    database, schema_name, table = item
    entry: dict[str, Any] = {
        "table": f"{database}:{schema_name}.{table}",
        "rows": None,
        "ok": False,
    }
    if database not in databases:
        problems.append(f"{entry['table']}: database {database} is not in {where}")
        return entry
    with connect(database) as conn:
        name = sql.Identifier(schema_name, table).as_string(conn)
        if not pg.scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (name,)):
            problems.append(f"{entry['table']}: missing from {where}")
            return entry
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema_name, table))
        entry["rows"] = pg.scalar(conn, query)
        entry["ok"] = True
    return entry

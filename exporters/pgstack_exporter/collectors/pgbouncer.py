"""pgbouncer: pools, traffic, limits and paused databases from PgBouncer's admin console.

Column sets differ between releases (1.18 on Debian 12, 1.24 on Debian 13): columns are read by
name and unknown ones are ignored. A column every release has reads as 0 when missing; the
counters of later releases (server assignments from 1.23; from 1.24 the prepared statements
max_prepared_statements tracks: Parse and Bind) have no series where SHOW STATS lacks them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PgBouncerTarget as PgBouncerConfig
from pgstack_exporter.metrics import Sample, counter, gauge, sample
from pgstack_exporter.pgbouncer import KIND
from pgstack_exporter.runtime import Clock, Failed, first_line
from pgstack_exporter.sql import Row, SqlSession

log = logging.getLogger(__name__)

P = ("target", "database", "user")
D = ("target", "database")
CLIENTS = gauge(
    "pgbouncer_pool_client_connections",
    "Client connections of a pool by state (active, waiting).",
    *P,
    "state",
)
SERVERS = gauge(
    "pgbouncer_pool_server_connections",
    "Server connections of a pool by state (active, idle, used, tested, login).",
    *P,
    "state",
)
MAX_WAIT = gauge(
    "pgbouncer_pool_max_wait_seconds",
    "How long the oldest waiting client of a pool has waited.",
    *P,
)
XACTS = counter("pgbouncer_transactions", "SQL transactions pooled.", *D)
QUERIES = counter("pgbouncer_queries", "SQL queries pooled.", *D)
RECEIVED = counter("pgbouncer_received_bytes", "Bytes received from clients.", *D)
SENT = counter("pgbouncer_sent_bytes", "Bytes sent to clients.", *D)
XACT_TIME = counter(
    "pgbouncer_transaction_time_seconds", "Time spent in transactions (server connection held).", *D
)
QUERY_TIME = counter("pgbouncer_query_time_seconds", "Time spent running queries.", *D)
WAIT_TIME = counter(
    "pgbouncer_client_wait_time_seconds", "Time clients spent waiting for a server connection.", *D
)
ASSIGNMENTS = counter(
    "pgbouncer_server_assignments", "Times a server connection was assigned to a client.", *D
)
CLIENT_PARSES = counter(
    "pgbouncer_client_parses",
    "Prepared statements clients created (Parse), with max_prepared_statements on.",
    *D,
)
SERVER_PARSES = counter(
    "pgbouncer_server_parses",
    "Prepared statements PgBouncer created on server connections (Parse).",
    *D,
)
BINDS = counter(
    "pgbouncer_binds",
    "Prepared statements clients readied for execution (Bind), forwarded to PostgreSQL.",
    *D,
)
MAX_CLIENT_CONN = gauge(
    "pgbouncer_max_client_connections", "The max_client_conn setting.", "target"
)
POOL_SIZE = gauge(
    "pgbouncer_database_pool_size", "Server connections a database's pool may open.", *D
)
RESERVE_POOL = gauge(
    "pgbouncer_database_reserve_pool_size",
    "Extra server connections a pool may open when clients wait.",
    *D,
)
CURRENT = gauge(
    "pgbouncer_database_current_connections", "Server connections a database has open.", *D
)
PAUSED = gauge("pgbouncer_database_paused", "1 while a database is paused (PAUSE).", *D)

CLIENT_STATES = ("active", "waiting")
SERVER_STATES = ("active", "idle", "used", "tested", "login")
# SHOW STATS column, metric, scale (PgBouncer counts times in microseconds).
STATS = (
    ("total_xact_count", XACTS, 1.0),
    ("total_query_count", QUERIES, 1.0),
    ("total_received", RECEIVED, 1.0),
    ("total_sent", SENT, 1.0),
    ("total_xact_time", XACT_TIME, 1e-6),
    ("total_query_time", QUERY_TIME, 1e-6),
    ("total_wait_time", WAIT_TIME, 1e-6),
)
# SHOW STATS columns of later releases: no series where the column is missing.
LATER_STATS = (
    ("total_server_assignment_count", ASSIGNMENTS),
    ("total_client_parse_count", CLIENT_PARSES),
    ("total_server_parse_count", SERVER_PARSES),
    ("total_bind_count", BINDS),
)


def _n(row: Row, *columns: str) -> float:
    """The first of ``columns`` present in ``row`` as a number (0 when none is)."""
    for column in columns:
        value: Any = row.get(column)
        if value is not None and value != "":
            return float(value)
    return 0.0


def pools(target: str, rows: list[Row]) -> list[Sample]:
    out: list[Sample] = []
    for row in rows:
        labels = {"target": target, "database": str(row["database"]), "user": str(row["user"])}
        out += [sample(CLIENTS, _n(row, f"cl_{s}"), state=s, **labels) for s in CLIENT_STATES]
        out += [sample(SERVERS, _n(row, f"sv_{s}"), state=s, **labels) for s in SERVER_STATES]
        wait = _n(row, "maxwait") + _n(row, "maxwait_us") / 1e6
        out.append(sample(MAX_WAIT, wait, **labels))
    return out


def stats(target: str, rows: list[Row]) -> list[Sample]:
    out: list[Sample] = []
    for row in rows:
        labels = {"target": target, "database": str(row["database"])}
        out += [sample(spec, _n(row, column) * scale, **labels) for column, spec, scale in STATS]
        out += [
            sample(spec, _n(row, column), **labels) for column, spec in LATER_STATS if column in row
        ]
    return out


def config_samples(target: str, rows: list[Row]) -> list[Sample]:
    values = {str(row["key"]): row.get("value") for row in rows}
    return [sample(MAX_CLIENT_CONN, float(values.get("max_client_conn") or 0), target=target)]


def databases(target: str, rows: list[Row]) -> list[Sample]:
    out: list[Sample] = []
    for row in rows:
        labels = {"target": target, "database": str(row["name"])}
        out.append(sample(POOL_SIZE, _n(row, "pool_size"), **labels))
        out.append(sample(RESERVE_POOL, _n(row, "reserve_pool_size", "reserve_pool"), **labels))
        out.append(sample(CURRENT, _n(row, "current_connections"), **labels))
        out.append(sample(PAUSED, _n(row, "paused"), **labels))
    return out


# Query name, SHOW command, what its rows give.
COMMANDS: tuple[tuple[str, str, Callable[[str, list[Row]], list[Sample]]], ...] = (
    ("pools", "SHOW POOLS", pools),
    ("stats", "SHOW STATS", stats),
    ("config", "SHOW CONFIG", config_samples),
    ("databases", "SHOW DATABASES", databases),
)


def factory(config: PgBouncerConfig, _clock: Clock) -> Collect[SqlSession]:
    def collect(session: SqlSession) -> list[Sample]:
        # A failing command fails the collector; the others' samples are still shown.
        out: list[Sample] = []
        errors: list[str] = []
        for name, command, read in COMMANDS:
            try:
                out += read(config.name, session.query(name, command))
            except Exception as error:
                errors.append(f"{command}: {first_line(error)}")
        if errors:
            log.warning("pgbouncer on %s failed: %s", config.name, "; ".join(errors))
            raise Failed("; ".join(errors), out)
        return out

    return collect


COLLECTOR = CollectorSpec(
    name="pgbouncer",
    kind=KIND,
    metrics=(
        CLIENTS,
        SERVERS,
        MAX_WAIT,
        XACTS,
        QUERIES,
        RECEIVED,
        SENT,
        XACT_TIME,
        QUERY_TIME,
        WAIT_TIME,
        ASSIGNMENTS,
        CLIENT_PARSES,
        SERVER_PARSES,
        BINDS,
        MAX_CLIENT_CONN,
        POOL_SIZE,
        RESERVE_POOL,
        CURRENT,
        PAUSED,
    ),
    factory=factory,
)

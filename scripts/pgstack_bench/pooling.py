"""Section "pooling": the applications' workload through PgBouncer, and what pooling and TLS cost.

Everything runs against the lab's db1; the latency loads and the held connections come from the
controller (asyncio, psycopg 3, ``prepare_threshold=None``), over ``verify-full`` TLS:

- a scratch schema ``pgstack_bench`` in ``app``, created by the migration role ``app_migration``
  (direct, 5432): the applications' ``jobs``/``results`` (``pgstack_drill.schema.WORKLOAD_SQL``)
  with the history index ``(session_id, created_at DESC)``, filled with 1,000,000 jobs (quick:
  100,000) in about 50,000 sessions;
- 50 concurrent job inserts and 100 concurrent paginated history requests (a page of 20 and the
  session's total count, in one transaction) as the ``app`` role through PgBouncer (6432):
  p50/p95/p99 against the objective p95 < 100 ms;
- 1,000 client connections held open at once (each runs a history query) through PgBouncer, and
  the same number directly to PostgreSQL, which refuses what exceeds ``max_connections``;
- pgbench (builtin ``simple-update``, 16 clients) through PgBouncer and directly, with TLS and
  without. Only local connections can go without TLS (pg_hba rejects ``hostnossl``; PgBouncer
  requires TLS on TCP): those runs are on db1 itself over the Unix socket, so the four variants run
  there, and the two TLS ones again from the controller, across the lab network.

A scratch login role ``pgstack_bench`` (no connection limit; its password generated at run time,
only its SCRAM verifier leaves the controller) owns the pgbench tables and makes the direct
connections. All of it is dropped at the end (and before the start, after a killed run).
"""

# SQL text here is built from this module's constants only, never from input.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import re
import secrets
import shlex
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from pgstack_bench.lab import BenchLab, scram_verifier
from pgstack_bench.model import Cell, Section, SectionResult, Table
from pgstack_drill.schema import WORKLOAD_SQL

log = logging.getLogger(__name__)

DB_HOST = "db1"
DATABASE = "app"
APP_ROLE = "app"
MIGRATION_ROLE = "app_migration"
SCRATCH = "pgstack_bench"  # the scratch schema and the scratch role
POSTGRES_PORT = 5432
PGBOUNCER_PORT = 6432
OBJECTIVE_P95_MS = 100.0
# TLS connections opened at the same time while building up a load (a handshake storm would
# measure the controller's CPU, not the server).
OPEN_CONCURRENCY = 50
HOST_CA = "/etc/pgstack/tls/ca.crt"  # the CA on lab hosts
SOCKET_DIR = "/var/run/postgresql"

PAGE_SQL = (
    f"SELECT id, status, created_at FROM {SCRATCH}.jobs "
    "WHERE session_id = %s ORDER BY created_at DESC LIMIT 20"
)
COUNT_SQL = f"SELECT count(*) FROM {SCRATCH}.jobs WHERE session_id = %s"
INSERT_SQL = (
    f"INSERT INTO {SCRATCH}.jobs (id, session_id, status, input_type, file_name, created_at, "
    "updated_at) VALUES (%s, %s, 'PENDING', 'pdf', %s, now(), now())"
)


@dataclass(frozen=True)
class Plan:
    jobs: int
    sessions: int
    insert_clients: int
    inserts_per_client: int
    history_clients: int
    requests_per_client: int
    held_connections: int
    pgbench_clients: int
    pgbench_scale: int
    pgbench_seconds: int
    pgbench_rounds: int

    @classmethod
    def for_run(cls, quick: bool) -> Plan:
        jobs = 100_000 if quick else 1_000_000
        return cls(
            jobs=jobs,
            sessions=jobs // 20,
            insert_clients=50,
            inserts_per_client=20 if quick else 100,
            history_clients=100,
            requests_per_client=10 if quick else 50,
            held_connections=1000,
            pgbench_clients=16,
            pgbench_scale=2 if quick else 10,
            pgbench_seconds=5 if quick else 6,
            pgbench_rounds=1 if quick else 2,
        )


# --- pure parts (tests/unit/test_bench_pooling.py)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> Latency | None:
        if not values_ms:
            return None
        return cls(
            count=len(values_ms),
            p50_ms=round(percentile(values_ms, 50), 2),
            p95_ms=round(percentile(values_ms, 95), 2),
            p99_ms=round(percentile(values_ms, 99), 2),
            max_ms=round(max(values_ms), 2),
            mean_ms=round(sum(values_ms) / len(values_ms), 2),
        )


def short_error(message: str) -> str:
    """The server's message out of a libpq error (no host, port or user), for counting by kind."""
    text = " ".join(message.split())
    for mark in ("FATAL:", "ERROR:"):
        if mark in text:
            text = text.rsplit(mark, 1)[1].strip()
            break
    else:
        text = re.sub(r'connection to server at "[^"]*" \([^)]*\), port \d+ failed: ', "", text)
        text = re.sub(r'connection to server at "[^"]*", port \d+ failed: ', "", text)
        text = text.removeprefix("connection failed: ").strip()
    return text[:200]


@dataclass(frozen=True)
class PgbenchRun:
    tps: float
    latency_ms: float
    transactions: int
    failed: int


def parse_pgbench(output: str) -> PgbenchRun:
    """tps (without connection time), average latency and counts from pgbench's report."""
    tps = re.search(r"^tps = ([\d.]+) \((?:without|excluding)", output, re.MULTILINE)
    if tps is None:
        tps = re.search(r"^tps = ([\d.]+)", output, re.MULTILINE)
    latency = re.search(r"^latency average = ([\d.]+) ms", output, re.MULTILINE)
    done = re.search(r"^number of transactions actually processed: (\d+)", output, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", output, re.MULTILINE)
    if tps is None or latency is None or done is None:
        raise ValueError(f"not a pgbench report: {output.strip()[-300:]!r}")
    return PgbenchRun(
        tps=float(tps[1]),
        latency_ms=float(latency[1]),
        transactions=int(done[1]),
        failed=int(failed[1]) if failed else 0,
    )


def mean_run(runs: Sequence[PgbenchRun]) -> PgbenchRun:
    """Several runs of one variant as one: mean tps and latency, summed counts."""
    if not runs:
        raise ValueError("no pgbench runs")
    return PgbenchRun(
        tps=round(sum(r.tps for r in runs) / len(runs), 1),
        latency_ms=round(sum(r.latency_ms for r in runs) / len(runs), 3),
        transactions=sum(r.transactions for r in runs),
        failed=sum(r.failed for r in runs),
    )


def session_uuid(number: int) -> uuid.UUID:
    """The n-th session's id, as the fill query makes it (md5('s' || n)::uuid)."""
    return uuid.UUID(hashlib.md5(f"s{number}".encode()).hexdigest())  # noqa: S324 - ids, not security


def parse_console(output: str) -> dict[str, str]:
    """``psql -At`` output of PgBouncer's SHOW CONFIG / SHOW LISTS: first column -> second."""
    rows: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split("|")
        if len(parts) >= 2:
            rows[parts[0].strip()] = parts[1].strip()
    return rows


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


# --- the lab side


def fill_sql(jobs: int, sessions: int) -> str:
    """The scratch schema's tables, rows and indexes (run by the migration role)."""
    return f"""
SET search_path = {SCRATCH};
{WORKLOAD_SQL}
DROP INDEX jobs_session_id_created_at_idx;
INSERT INTO jobs (id, session_id, status, input_type, file_name, file_size, created_at,
                  updated_at, started_at, completed_at)
SELECT gen_random_uuid(),
       md5('s' || floor(random() * {sessions})::int)::uuid,
       s.status::job_status, 'pdf', 'file-' || g || '.pdf', (random() * 1e7)::bigint,
       t, t + interval '5 minutes', t + interval '10 seconds',
       CASE WHEN s.status = 'COMPLETE' THEN t + interval '5 minutes' END
FROM generate_series(1, {jobs}) AS g,
     LATERAL (SELECT timestamptz '2026-01-05 08:00+00' + g * interval '3 seconds' AS t) AS ts,
     LATERAL (SELECT CASE WHEN g % 10 < 7 THEN 'COMPLETE' WHEN g % 10 = 7 THEN 'FAILED'
                          ELSE 'PROCESSING' END AS status) AS s;
INSERT INTO results (id, job_id, format_type, content, size, generated_at)
SELECT gen_random_uuid(), id, 'text', repeat(md5(id::text), 8), 256, completed_at
FROM jobs WHERE status = 'COMPLETE';
CREATE INDEX jobs_session_id_created_at_desc_idx ON jobs (session_id, created_at DESC);
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCRATCH} TO {APP_ROLE}, {SCRATCH};
ANALYZE jobs;
ANALYZE results;
"""


CLEANUP_SQL = f"""
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{SCRATCH}';
DROP SCHEMA IF EXISTS {SCRATCH} CASCADE;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{SCRATCH}') THEN
        EXECUTE 'DROP OWNED BY {SCRATCH}';
    END IF;
END
$$;
DROP ROLE IF EXISTS {SCRATCH};
"""


def superuser_sql(lab: BenchLab, sql: str, *, database: str = DATABASE) -> str:
    """SQL (on stdin) as the local superuser on db1."""
    return lab.sh(
        DB_HOST,
        f"cd /tmp && runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -d {database}",
        stdin=sql,
    )


def cleanup(lab: BenchLab) -> None:
    superuser_sql(lab, CLEANUP_SQL)


def console(lab: BenchLab, command: str) -> dict[str, str]:
    """PgBouncer's console, read-only, as its own admin over the Unix socket on db1."""
    out = lab.sh(
        DB_HOST,
        f"cd /tmp && runuser -u postgres -- psql -X -At -h {SOCKET_DIR} -p {PGBOUNCER_PORT} "
        f"-U pgbouncer pgbouncer -c {shlex.quote(command)}",
    )
    return parse_console(out)


def setup(lab: BenchLab, plan: Plan, scratch_password: str) -> dict[str, Any]:
    salt = secrets.token_bytes(16)
    superuser_sql(
        lab,
        f"CREATE ROLE {SCRATCH} LOGIN PASSWORD '{scram_verifier(scratch_password, salt)}';\n"
        f"ALTER ROLE {SCRATCH} SET search_path = {SCRATCH};\n",
    )
    began = time.monotonic()
    conninfo = lab.conninfo(DB_HOST, POSTGRES_PORT, DATABASE, MIGRATION_ROLE, connect_timeout="10")
    with psycopg.connect(
        conninfo, password=lab.secret("postgresql_app_migration"), autocommit=True
    ) as conn:
        conn.execute(f"CREATE SCHEMA {SCRATCH}")
        conn.execute(f"GRANT USAGE ON SCHEMA {SCRATCH} TO {APP_ROLE}")
        conn.execute(f"GRANT USAGE, CREATE ON SCHEMA {SCRATCH} TO {SCRATCH}")
        conn.execute(f"GRANT CONNECT ON DATABASE {DATABASE} TO {SCRATCH}")
        conn.execute(fill_sql(plan.jobs, plan.sessions))
        row = conn.execute(
            f"SELECT (SELECT count(*) FROM {SCRATCH}.jobs), (SELECT count(*) FROM "
            f"{SCRATCH}.results), pg_total_relation_size('{SCRATCH}.jobs') + "
            f"pg_total_relation_size('{SCRATCH}.results')"
        ).fetchone()
    if row is None:
        raise RuntimeError("no row counts")
    seconds = time.monotonic() - began
    log.info("pooling: %d jobs, %d results in %.0f s", row[0], row[1], seconds)
    return {"jobs": row[0], "results": row[1], "bytes": row[2], "fill_seconds": round(seconds, 1)}


# --- concurrent clients (asyncio)

AsyncConn = psycopg.AsyncConnection[TupleRow]
Operation = Callable[[AsyncConn, random.Random], Awaitable[None]]


@dataclass
class LoadResult:
    clients: int
    opened: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    connect_seconds: float = 0.0
    wall_seconds: float = 0.0


async def _open(conninfo: str, password: str, count: int, result: LoadResult) -> list[AsyncConn]:
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    conns: list[AsyncConn] = []

    async def one() -> None:
        async with gate:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    conninfo, password=password, autocommit=True, prepare_threshold=None
                )
            except psycopg.Error as exc:
                result.errors[short_error(str(exc))] += 1
                return
            conns.append(conn)

    began = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    result.connect_seconds = round(time.perf_counter() - began, 2)
    result.opened = len(conns)
    return conns


async def _close(conns: Sequence[AsyncConn]) -> None:
    await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)


async def _load(
    conninfo: str, password: str, clients: int, per_client: int, op: Operation
) -> LoadResult:
    """``clients`` connections, all opened first, then each runs ``op`` ``per_client`` times."""
    result = LoadResult(clients=clients, opened=0)
    conns = await _open(conninfo, password, clients, result)
    go = asyncio.Event()

    async def worker(conn: AsyncConn, rng: random.Random) -> None:
        await go.wait()
        for _ in range(per_client):
            began = time.perf_counter()
            try:
                await op(conn, rng)
            except psycopg.Error as exc:
                result.errors[short_error(str(exc))] += 1
                continue
            result.latencies_ms.append((time.perf_counter() - began) * 1000)

    try:
        tasks = [
            asyncio.create_task(worker(conn, random.Random(index)))  # noqa: S311 - test data
            for index, conn in enumerate(conns)
        ]
        began = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
        result.wall_seconds = round(time.perf_counter() - began, 2)
    finally:
        await _close(conns)
    return result


def _history(sessions: int) -> Operation:
    async def op(conn: AsyncConn, rng: random.Random) -> None:
        session = session_uuid(rng.randrange(sessions))
        async with conn.transaction():
            await (await conn.execute(PAGE_SQL, (session,))).fetchall()
            await (await conn.execute(COUNT_SQL, (session,))).fetchone()

    return op


def _history_autocommit(sessions: int) -> Operation:
    async def op(conn: AsyncConn, rng: random.Random) -> None:
        session = session_uuid(rng.randrange(sessions))
        await (await conn.execute(PAGE_SQL, (session,))).fetchall()
        await (await conn.execute(COUNT_SQL, (session,))).fetchone()

    return op


def _insert(sessions: int) -> Operation:
    async def op(conn: AsyncConn, rng: random.Random) -> None:
        job = uuid.UUID(int=rng.getrandbits(128), version=4)
        session = session_uuid(rng.randrange(sessions))
        await conn.execute(INSERT_SQL, (job, session, f"upload-{job.hex[:8]}.pdf"))

    return op


async def _hold(conninfo: str, password: str, count: int, sessions: int) -> LoadResult:
    """Open ``count`` connections, keep all open, then each runs one history query at once."""
    result = LoadResult(clients=count, opened=0)
    conns = await _open(conninfo, password, count, result)
    rng = random.Random(7)  # noqa: S311 - test data

    async def query(conn: AsyncConn, session: uuid.UUID) -> None:
        began = time.perf_counter()
        try:
            await (await conn.execute(PAGE_SQL, (session,))).fetchall()
        except psycopg.Error as exc:
            result.errors[f"query: {short_error(str(exc))}"] += 1
            return
        result.latencies_ms.append((time.perf_counter() - began) * 1000)

    try:
        began = time.perf_counter()
        await asyncio.gather(*(query(c, session_uuid(rng.randrange(sessions))) for c in conns))
        result.wall_seconds = round(time.perf_counter() - began, 2)
    finally:
        await _close(conns)
    return result


def load_row(name: str, result: LoadResult, objective: bool) -> dict[str, Cell]:
    latency = Latency.of(result.latencies_ms)
    ops = len(result.latencies_ms)
    met: str = "-"
    if objective:
        met = "yes" if latency is not None and latency.p95_ms < OBJECTIVE_P95_MS else "NO"
    return {
        "workload": name,
        "clients": result.clients,
        "requests": ops,
        "per second": round(ops / result.wall_seconds) if result.wall_seconds else None,
        "p50 ms": latency.p50_ms if latency else None,
        "p95 ms": latency.p95_ms if latency else None,
        "p99 ms": latency.p99_ms if latency else None,
        "max ms": latency.max_ms if latency else None,
        "errors": sum(result.errors.values()),
        "p95 < 100 ms": met,
    }


def load_raw(result: LoadResult) -> dict[str, Any]:
    latency = Latency.of(result.latencies_ms)
    return {
        "clients": result.clients,
        "opened": result.opened,
        "connect_seconds": result.connect_seconds,
        "wall_seconds": result.wall_seconds,
        "latency": asdict(latency) if latency else None,
        "errors": dict(result.errors),
    }


def errors_text(errors: Counter[str]) -> str:
    if not errors:
        return "none"
    return "; ".join(f"{count} x {message}" for message, count in errors.most_common(3))


# --- pgbench


@dataclass(frozen=True)
class Variant:
    where: str  # "db1" or "controller"
    path: str  # "PgBouncer 6432" or "PostgreSQL 5432"
    tls: bool


def _pgbench_env(lab: BenchLab, variant: Variant) -> dict[str, str]:
    port = PGBOUNCER_PORT if variant.path.startswith("PgBouncer") else POSTGRES_PORT
    env = {"PGPORT": str(port), "PGDATABASE": DATABASE, "PGAPPNAME": "pgstack-bench"}
    if not variant.tls:
        # Local socket: PgBouncer takes the scratch role (SCRAM), PostgreSQL only postgres (peer).
        env.update(PGHOST=SOCKET_DIR, PGSSLMODE="disable")
        if port == POSTGRES_PORT:
            env.update(PGUSER="postgres", PGOPTIONS=f"-c search_path={SCRATCH}")
        else:
            env["PGUSER"] = SCRATCH
        return env
    env.update(PGHOST=lab.fqdn(DB_HOST), PGUSER=SCRATCH, PGSSLMODE="verify-full")
    if variant.where == "controller":
        env.update(PGHOSTADDR=lab.address(DB_HOST), PGSSLROOTCERT=str(lab.ca_file))
    else:
        env["PGSSLROOTCERT"] = HOST_CA
    return env


def pgbench(lab: BenchLab, variant: Variant, args: Sequence[str], password: str) -> str:
    """pgbench on db1 or on the controller; the password only on stdin / in the environment."""
    env = _pgbench_env(lab, variant)
    if variant.where == "controller":
        proc = subprocess.run(
            ["pgbench", *args],
            env={**os.environ, **env, "PGPASSWORD": password},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"pgbench exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
        return proc.stdout + proc.stderr
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = f"pgbench {' '.join(shlex.quote(a) for a in args)} 2>&1"
    if env["PGUSER"] == "postgres":
        script = f"cd /tmp && runuser -u postgres -- env {assignments} {command}"
        return lab.sh(DB_HOST, script)
    script = f"cd /tmp && read -r PGPASSWORD && export PGPASSWORD && env {assignments} {command}"
    return lab.sh(DB_HOST, script, stdin=password + "\n")


VARIANTS = (
    Variant("db1", "PostgreSQL 5432", False),
    Variant("db1", "PgBouncer 6432", False),
    Variant("db1", "PostgreSQL 5432", True),
    Variant("db1", "PgBouncer 6432", True),
    Variant("controller", "PostgreSQL 5432", True),
    Variant("controller", "PgBouncer 6432", True),
)


def run_pgbench(lab: BenchLab, plan: Plan, password: str) -> dict[Variant, PgbenchRun]:
    init = Variant("db1", "PostgreSQL 5432", True)
    pgbench(lab, init, ["-i", "-q", "-I", "dtGvp", "-s", str(plan.pgbench_scale)], password)
    rounds: dict[Variant, list[PgbenchRun]] = {variant: [] for variant in VARIANTS}
    # Rounds alternate the order, so that a drift in the shared machine's load hits all variants.
    for number in range(plan.pgbench_rounds):
        for variant in VARIANTS if number % 2 == 0 else tuple(reversed(VARIANTS)):
            out = pgbench(
                lab,
                variant,
                ["-n", "-b", "simple-update", "-M", "simple", "-c", str(plan.pgbench_clients),
                 "-j", "2", "-T", str(plan.pgbench_seconds)],
                password,
            )  # fmt: skip
            rounds[variant].append(parse_pgbench(out))
            log.info(
                "pgbench %s %s tls=%s: %.0f tps", *asdict(variant).values(), rounds[variant][-1].tps
            )
    return {variant: mean_run(results) for variant, results in rounds.items()}


# --- the section


def run(lab: BenchLab) -> SectionResult:
    plan = Plan.for_run(lab.quick)
    scratch_password = secrets.token_urlsafe(24)
    app_password = lab.secret("postgresql_app")
    bouncer = lab.conninfo(
        DB_HOST, PGBOUNCER_PORT, DATABASE, APP_ROLE,
        connect_timeout="10", application_name="pgstack-bench",
    )  # fmt: skip
    direct = lab.conninfo(
        DB_HOST, POSTGRES_PORT, DATABASE, SCRATCH,
        connect_timeout="10", application_name="pgstack-bench",
    )  # fmt: skip
    cleanup(lab)  # leftovers of a killed run
    try:
        data = setup(lab, plan, scratch_password)
        config = console(lab, "SHOW CONFIG")
        max_client_conn = int(config.get("max_client_conn", "0"))
        inserts = asyncio.run(
            _load(bouncer, app_password, plan.insert_clients, plan.inserts_per_client,
                  _insert(plan.sessions))
        )  # fmt: skip
        log.info("pooling: inserts p95 %s", Latency.of(inserts.latencies_ms))
        history = asyncio.run(
            _load(bouncer, app_password, plan.history_clients, plan.requests_per_client,
                  _history(plan.sessions))
        )  # fmt: skip
        log.info("pooling: history p95 %s", Latency.of(history.latencies_ms))
        history_autocommit = asyncio.run(
            _load(bouncer, app_password, plan.history_clients, plan.requests_per_client,
                  _history_autocommit(plan.sessions))
        )  # fmt: skip
        held: dict[str, LoadResult] = {}
        held["PgBouncer 6432"] = asyncio.run(
            _hold(bouncer, app_password, plan.held_connections, plan.sessions)
        )
        in_use = int(console(lab, "SHOW LISTS").get("used_clients", "0"))
        fit = max_client_conn - in_use - 10
        if 0 < fit < plan.held_connections:
            held[f"PgBouncer 6432 ({fit}, within max_client_conn)"] = asyncio.run(
                _hold(bouncer, app_password, fit, plan.sessions)
            )
        held["PostgreSQL 5432"] = asyncio.run(
            _hold(direct, scratch_password, plan.held_connections, plan.sessions)
        )
        for name, result in held.items():
            log.info("pooling: %s held %d of %d", name, result.opened, result.clients)
        bench = run_pgbench(lab, plan, scratch_password)
    finally:
        cleanup(lab)
    return _result(
        plan,
        data=data,
        max_client_conn=max_client_conn,
        inserts=inserts,
        history=history,
        history_autocommit=history_autocommit,
        held=held,
        bench=bench,
    )


def _result(
    plan: Plan,
    *,
    data: dict[str, Any],
    max_client_conn: int,
    inserts: LoadResult,
    history: LoadResult,
    history_autocommit: LoadResult,
    held: dict[str, LoadResult],
    bench: dict[Variant, PgbenchRun],
) -> SectionResult:
    latency_table = Table(
        title=f"Latency through PgBouncer (role app, verify-full TLS, from the controller; "
        f"{data['jobs']:,} jobs)",
        columns=(
            "workload",
            "clients",
            "requests",
            "per second",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "errors",
            "p95 < 100 ms",
        ),
        rows=(
            load_row("job insert", inserts, True),
            load_row("history: page of 20 + total count, one transaction", history, True),
            load_row("history: the same two statements, no BEGIN/COMMIT", history_autocommit, True),
        ),
    )
    held_rows: list[dict[str, Cell]] = []
    for name, result in held.items():
        latency = Latency.of(result.latencies_ms)
        held_rows.append(
            {
                "target": name,
                "attempted": result.clients,
                "held at once": result.opened,
                "failed": result.clients - result.opened,
                "error": errors_text(result.errors),
                "open s": result.connect_seconds,
                "query p95 ms": latency.p95_ms if latency else None,
            }
        )
    held_table = Table(
        title="Client connections held open at once, each running one history query",
        columns=(
            "target",
            "attempted",
            "held at once",
            "failed",
            "error",
            "open s",
            "query p95 ms",
        ),
        rows=tuple(held_rows),
    )
    bench_rows: list[dict[str, Cell]] = [
        {
            "from": variant.where,
            "to": variant.path,
            "TLS": "verify-full" if variant.tls else "no (Unix socket)",
            "tps": round(run.tps),
            "latency ms": run.latency_ms,
            "failed": run.failed,
        }
        for variant, run in bench.items()
    ]
    bench_table = Table(
        title=f"pgbench simple-update, {plan.pgbench_clients} clients, scale "
        f"{plan.pgbench_scale}, {plan.pgbench_seconds} s per run",
        columns=("from", "to", "TLS", "tps", "latency ms", "failed"),
        rows=tuple(bench_rows),
    )

    def tps(where: str, path: str, tls: bool) -> float | None:
        run = bench.get(Variant(where, path, tls))
        return run.tps if run else None

    pg, pb = "PostgreSQL 5432", "PgBouncer 6432"
    ratios = {
        "pooling overhead, TLS (db1)": ratio(tps("db1", pg, True), tps("db1", pb, True)),
        "pooling overhead, no TLS (db1)": ratio(tps("db1", pg, False), tps("db1", pb, False)),
        "pooling overhead, TLS (controller)": ratio(
            tps("controller", pg, True), tps("controller", pb, True)
        ),
        "TLS overhead, direct (db1)": ratio(tps("db1", pg, False), tps("db1", pg, True)),
        "TLS overhead, PgBouncer (db1)": ratio(tps("db1", pb, False), tps("db1", pb, True)),
    }
    ratio_table = Table(
        title="Overheads as tps ratios (>1: the first is faster)",
        columns=("figure", "ratio", "meaning"),
        rows=tuple(
            {
                "figure": name,
                "ratio": value,
                "meaning": "direct tps / PgBouncer tps"
                if name.startswith("pooling")
                else "no-TLS tps / TLS tps",
            }
            for name, value in ratios.items()
        ),
    )
    ins = Latency.of(inserts.latencies_ms)
    his = Latency.of(history.latencies_ms)
    bouncer_held = held.get("PgBouncer 6432")
    direct_held = held.get("PostgreSQL 5432")
    summary: list[tuple[str, str]] = [
        ("insert p95, 50 clients", f"{ins.p95_ms} ms (objective < 100 ms)" if ins else "n/a"),
        ("history p95, 100 clients", f"{his.p95_ms} ms (objective < 100 ms)" if his else "n/a"),
    ]
    if bouncer_held:
        summary.append(
            (
                "1000 clients via PgBouncer",
                f"{bouncer_held.opened} held, {bouncer_held.clients - bouncer_held.opened} refused",
            )
        )
    if direct_held:
        summary.append(
            (
                "1000 clients direct",
                f"{direct_held.opened} held, {direct_held.clients - direct_held.opened} refused",
            )
        )
    summary += [(name, f"{value}x") for name, value in ratios.items() if value is not None]
    discussion = _discussion(
        plan, max_client_conn=max_client_conn, ins=ins, his=his, held=held, ratios=ratios
    )
    return SectionResult(
        name=SECTION.name,
        title=SECTION.title,
        tables=(latency_table, held_table, bench_table, ratio_table),
        discussion=discussion,
        summary=tuple(summary),
        raw={
            "plan": asdict(plan),
            "data": data,
            "max_client_conn": max_client_conn,
            "inserts": load_raw(inserts),
            "history": load_raw(history),
            "history_autocommit": load_raw(history_autocommit),
            "held": {name: load_raw(result) for name, result in held.items()},
            "pgbench": [{**asdict(v), **asdict(r)} for v, r in bench.items()],
            "ratios": ratios,
        },
    )


def _discussion(
    plan: Plan,
    *,
    max_client_conn: int,
    ins: Latency | None,
    his: Latency | None,
    held: dict[str, LoadResult],
    ratios: dict[str, float | None],
) -> str:
    parts = [
        f"The applications' tables (`jobs`, `results`) in a scratch schema of `app`, "
        f"{plan.jobs:,} jobs in about {plan.sessions:,} sessions, history index "
        f"`(session_id, created_at DESC)`. The clients are one asyncio process on the "
        f"controller (psycopg 3, `prepare_threshold=None`), connecting through PgBouncer with "
        f"`sslmode=verify-full` as the `app` role; PgBouncer's pool for (app, app) is 20 "
        f"server connections (+5 reserve after 3 s). Latencies are measured on the client, "
        f"from the request to its last row, so they include waiting for a pooled server "
        f"connection and the controller's own scheduling: the lab's hosts and the client "
        f"share the same 2 cores."
    ]
    if ins and his:
        verdict = "within" if max(ins.p95_ms, his.p95_ms) < OBJECTIVE_P95_MS else "NOT within"
        parts.append(
            f"Inserts p95 {ins.p95_ms} ms and history requests p95 {his.p95_ms} ms: "
            f"{verdict} the objective (p95 < {OBJECTIVE_P95_MS:.0f} ms). Every client sends "
            f"its next request as soon as the last one answered (no think time), so these are "
            f"latencies at saturation: 100 clients over 25 server connections, and a history "
            f"request in a transaction is 4 round trips (BEGIN, page, count, COMMIT) holding a "
            f"server connection throughout; the row without BEGIN/COMMIT shows what 2 round "
            f"trips cost."
        )
    bouncer = held.get("PgBouncer 6432")
    if bouncer is not None and bouncer.opened < bouncer.clients:
        parts.append(
            f"PgBouncer accepted {bouncer.opened} of {bouncer.clients} clients: the lab sets "
            f"`max_client_conn = {max_client_conn}` (roles/pgbouncer `pgbouncer_max_client_conn`), "
            f"so the rest were refused ({errors_text(bouncer.errors)}). Holding 1,000 needs "
            f"`max_client_conn` >= 1,000 plus headroom (and the unit's open-files limit above "
            f"twice that); the run within the limit shows what the pool does with them."
        )
    direct = held.get("PostgreSQL 5432")
    if direct is not None:
        parts.append(
            f"Directly, PostgreSQL (`max_connections = 100`, 3 reserved for superusers, the "
            f"other clients of the lab already connected) held {direct.opened} and refused "
            f"{direct.clients - direct.opened}: {errors_text(direct.errors)}."
        )
    parts.append(
        "pgbench runs the builtin `simple-update` script (no branch/teller updates, so 16 "
        "clients do not queue on the few branch rows of a small scale). Only local clients can "
        "go without TLS (pg_hba rejects `hostnossl`, PgBouncer requires TLS on TCP), so the "
        "no-TLS runs use db1's Unix socket: directly as `postgres` (peer), through PgBouncer as "
        "the scratch role; PgBouncer's own connections to PostgreSQL stay TLS over TCP in every "
        "PgBouncer run (they are made once and reused). The TLS runs are repeated from the "
        "controller across the lab network."
    )
    known = {name: value for name, value in ratios.items() if value is not None}
    if known:
        parts.append(
            "Ratios: " + ", ".join(f"{name} {value}x" for name, value in known.items()) + "."
        )
    return "\n\n".join(parts)


SECTION = Section(name="pooling", title="Pooling on the applications' workload", run=run)

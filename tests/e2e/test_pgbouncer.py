"""The pgbouncer role seen from clients on the controller, against the converged lab host db1.

Real clients only (psycopg 3 and psql) through PgBouncer on 6432 with sslmode=verify-full; the
PostgreSQL side is observed directly on 5432 (pg_stat_activity, as the monitoring role).

What depends on db1's PgBouncer version (auth_dbname from 1.19, max_prepared_statements from 1.21)
is checked against db1's release variables (helpers.host_release: the release the lab inventory
gives db1, the one pgstack-lab built it from).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import (
    PGBOUNCER_PORT,
    ROLE_SECRETS,
    SSL_QUERY,
    DbHost,
    conninfo,
    host_release,
    lab_ssh,
    make_foreign_ca,
    psql_db1,
    run_psql,
)

pytestmark = [pytest.mark.e2e, pytest.mark.release]

PLAYBOOK = "playbooks/pgbouncer.yml"
# inventory/lab/group_vars/pgbouncer/main.yml: a pool of exactly 5 server connections, no reserve.
POOL5 = "app_pool5"
POOL5_SIZE = 5
# The PostgreSQL databases behind the lab's pools (app and app_pool5 share app).
POOLED_DATABASES = ("app", "billing")
# The role's pgbouncer_auth_dbname (the lab keeps the default) and the [databases] entry for it.
AUTH_DATABASE = "postgres"
AUTH_ENTRY = "pgbouncer_auth"
AUTH_USER = "pgbouncer_auth"

Conn = psycopg.Connection[tuple[Any, ...]]
Secret = Callable[[str], str]


def bouncer_dsn(
    host: DbHost,
    user: str,
    ca: Path,
    *,
    dbname: str = "app",
    sslmode: str = "verify-full",
    **kw: Any,
) -> str:
    return conninfo(host, user, ca, port=PGBOUNCER_PORT, dbname=dbname, sslmode=sslmode, **kw)


def admin_console(command: str) -> subprocess.CompletedProcess[str]:
    """A command on PgBouncer's console as its own OS user over the Unix socket (no password)."""
    return lab_ssh(
        "db1",
        f"sudo -u postgres psql -X -h /var/run/postgresql -p {PGBOUNCER_PORT} -U pgbouncer "
        f"-d pgbouncer -c '{command}'",
    )


def superuser_sql(script: str) -> None:
    """Run SQL as postgres on db1 (peer, local socket); the script goes through stdin."""
    result = lab_ssh("db1", "sudo -u postgres psql -X -q -v ON_ERROR_STOP=1 -d app", stdin=script)
    assert result.returncode == 0, result.stderr


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.fixture(scope="module")
def db1_release(lab_inventory: Path) -> dict[str, str]:
    return host_release(lab_inventory, "db1")


@pytest.fixture(scope="module")
def lookup_databases(db1_release: dict[str, str]) -> tuple[str, ...]:
    """Where the lookup function must be: the auth database with auth_dbname (PgBouncer 1.19+),
    else every database behind a pool."""
    if version(db1_release["pgbouncer"]) >= (1, 19):
        return (AUTH_DATABASE,)
    return POOLED_DATABASES


@pytest.fixture
def app(db_host: DbHost, ca_file: Path, secret: Secret) -> Callable[..., Conn]:
    def connect(dbname: str = "app", application_name: str = "pgstack-e2e") -> Conn:
        return psycopg.connect(
            bouncer_dsn(db_host, "app", ca_file, dbname=dbname, application_name=application_name),
            password=secret(ROLE_SECRETS["app"]),
            autocommit=True,
        )

    return connect


@pytest.fixture
def monitoring_direct(db_host: DbHost, ca_file: Path, secret: Secret) -> Iterator[Conn]:
    """The monitoring role straight to PostgreSQL (5432): reads pg_stat_activity."""
    conn = psycopg.connect(
        conninfo(db_host, "pgstack_monitoring", ca_file),
        password=secret(ROLE_SECRETS["pgstack_monitoring"]),
        autocommit=True,
    )
    yield conn
    conn.close()


# 1. TLS: verify-full works, plaintext and a foreign CA are refused


def test_app_connects_through_pgbouncer_with_verify_full(
    app: Callable[..., Conn], db_host: DbHost, ca_file: Path, secret: Secret
) -> None:
    with app() as conn:
        # pg_stat_ssl of the server session PgBouncer opened: TLS on PgBouncer's side too.
        assert conn.execute(SSL_QUERY).fetchone() == (True,)
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("app", "app")
        assert conn.info.port == PGBOUNCER_PORT

    result = run_psql(bouncer_dsn(db_host, "app", ca_file), secret("postgresql_app"), SSL_QUERY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "t"


def test_plaintext_to_pgbouncer_is_refused(db_host: DbHost, ca_file: Path, secret: Secret) -> None:
    dsn = bouncer_dsn(db_host, "app", ca_file, sslmode="disable")
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        psycopg.connect(dsn, password=secret("postgresql_app")).close()

    result = run_psql(dsn, secret("postgresql_app"), "SELECT 1")
    assert result.returncode != 0
    assert "SSL required" in result.stderr


def test_client_trusting_another_ca_is_refused(
    db_host: DbHost, tmp_path: Path, secret: Secret
) -> None:
    dsn = bouncer_dsn(db_host, "app", make_foreign_ca(tmp_path))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(dsn, password=secret("postgresql_app")).close()

    result = run_psql(dsn, secret("postgresql_app"), "SELECT 1")
    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr


def test_wrong_password_is_refused_through_pgbouncer(db_host: DbHost, ca_file: Path) -> None:
    dsn = bouncer_dsn(db_host, "app", ca_file)
    with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
        psycopg.connect(dsn, password=f"wrong-{uuid.uuid4().hex}").close()


def test_lookup_function_is_not_callable_by_others(
    db_host: DbHost, ca_file: Path, secret: Secret, lookup_databases: tuple[str, ...]
) -> None:
    """EXECUTE on the SECURITY DEFINER function is revoked from PUBLIC: app cannot read hashes."""
    with (
        psycopg.connect(
            conninfo(db_host, "app", ca_file, dbname=lookup_databases[0]),
            password=secret("postgresql_app"),
            autocommit=True,
        ) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT * FROM pgbouncer.get_auth('app_migration')")


def test_reload_keeps_clients_connected(app: Callable[..., Conn]) -> None:
    """Configuration changes are applied with systemctl reload (SIGHUP): clients stay connected."""
    with app() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        result = lab_ssh("db1", "systemctl reload pgbouncer")
        assert result.returncode == 0, result.stderr
        time.sleep(1)
        assert conn.execute("SELECT 2").fetchone() == (2,)


# 2. Pooling: 50 clients through a pool of 5


def test_50_sessions_through_a_pool_of_5_use_at_most_5_server_connections(
    app: Callable[..., Conn], monitoring_direct: Conn
) -> None:
    marker = f"e2e-pool-{uuid.uuid4().hex[:12]}"
    clients = 50
    barrier = threading.Barrier(clients, timeout=60)
    answers: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    stop = threading.Event()
    samples: list[int] = []

    def client(number: int) -> None:
        try:
            with app(dbname=POOL5, application_name=marker) as conn:
                barrier.wait()  # all 50 client sessions are open at the same time
                pids = []
                for _ in range(5):
                    with conn.transaction():
                        row = conn.execute("SELECT pg_backend_pid(), pg_sleep(0.02)").fetchone()
                        assert row is not None
                        pids.append(row[0])
                answers[number] = pids
        except BaseException as exc:
            errors.append(exc)

    def watch() -> None:
        while not stop.is_set():
            row = monitoring_direct.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE usename = 'app' AND application_name = %s",
                [marker],
            ).fetchone()
            assert row is not None
            samples.append(row[0])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    watcher.join()
    elapsed = time.monotonic() - started

    assert errors == [], errors[:3]
    assert sorted(answers) == list(range(clients)), "not every client got its answers"
    backend_pids = {pid for pids in answers.values() for pid in pids}
    assert 1 <= len(backend_pids) <= POOL5_SIZE, backend_pids
    assert max(samples) <= POOL5_SIZE, (
        f"server connections seen in pg_stat_activity: {max(samples)}"
    )
    assert max(samples) >= 1, "the watcher never saw the pool's server connections"
    print(
        f"50 clients x 5 transactions in {elapsed:.1f}s over {len(backend_pids)} server"
        f" connections; pg_stat_activity max {max(samples)} ({len(samples)} samples)"
    )


# 3. Pool exhaustion: wait, then served; or an error after query_wait_timeout


@pytest.fixture
def short_query_wait_timeout() -> Iterator[int]:
    """query_wait_timeout = 3 s on the running PgBouncer (console SET); RELOAD restores the file."""
    seconds = 3
    result = admin_console(f"SET query_wait_timeout = {seconds}")
    assert result.returncode == 0, result.stderr
    try:
        yield seconds
    finally:
        result = admin_console("RELOAD")
        assert result.returncode == 0, result.stderr


@pytest.fixture
def held_pool(app: Callable[..., Conn]) -> Iterator[list[Conn]]:
    """Every server connection of the pool held by a client inside an open transaction."""
    holders = [app(dbname=POOL5) for _ in range(POOL5_SIZE)]
    for conn in holders:
        conn.execute("BEGIN")
        conn.execute("SELECT 1")
    yield holders
    for conn in holders:
        conn.close()


def timed_query(app: Callable[..., Conn]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        with app(dbname=POOL5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_waiting_client_is_served_when_a_server_connection_frees(
    app: Callable[..., Conn], held_pool: list[Conn], short_query_wait_timeout: int
) -> None:
    outcome: list[tuple[float, BaseException | None]] = []
    waiter = threading.Thread(target=lambda: outcome.append(timed_query(app)))
    waiter.start()
    time.sleep(1.0)
    assert waiter.is_alive(), "the client did not wait for a server connection"
    held_pool[0].execute("COMMIT")  # frees one server connection
    waiter.join(timeout=30)

    elapsed, error = outcome[0]
    assert error is None, error
    assert 1.0 <= elapsed < short_query_wait_timeout, elapsed


def test_waiting_client_gets_an_error_after_query_wait_timeout(
    app: Callable[..., Conn], held_pool: list[Conn], short_query_wait_timeout: int
) -> None:
    elapsed, error = timed_query(app)
    assert error is not None, (
        f"served after {elapsed:.1f}s although every server connection was held"
    )
    assert "query_wait_timeout" in str(error)
    # PgBouncer checks its timeouts about once a second.
    assert short_query_wait_timeout - 0.5 <= elapsed <= short_query_wait_timeout + 5, elapsed


# 4. PostgreSQL is the single source of passwords


def test_role_created_and_password_changed_in_postgresql_work_at_once(
    db_host: DbHost, ca_file: Path
) -> None:
    role = f"e2e_{uuid.uuid4().hex[:10]}"
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    dsn = bouncer_dsn(db_host, role, ca_file)
    superuser_sql(
        f"SET password_encryption = 'scram-sha-256';\n"
        f"CREATE ROLE {role} LOGIN PASSWORD '{first}';\n"
        f"GRANT CONNECT ON DATABASE app TO {role};\n"
    )
    try:
        with psycopg.connect(dsn, password=first) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)

        superuser_sql(
            f"SET password_encryption = 'scram-sha-256';\nALTER ROLE {role} PASSWORD '{second}';\n"
        )
        with psycopg.connect(dsn, password=second) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
        with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
            psycopg.connect(dsn, password=first).close()
    finally:
        superuser_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';\n"
            f"REVOKE CONNECT ON DATABASE app FROM {role};\nDROP ROLE {role};\n"
        )


def test_superuser_cannot_log_in_through_pgbouncer(db_host: DbHost, ca_file: Path) -> None:
    """The lookup function never returns superusers: postgres is refused whatever the password."""
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            bouncer_dsn(db_host, "postgres", ca_file), password="anything-at-all"
        ).close()


LOOKUP_FUNCTION_QUERY = (
    "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE n.nspname = 'pgbouncer' AND p.proname = 'get_auth' AND p.prosecdef"
)


def test_auth_query_runs_where_the_lookup_function_is(
    app: Callable[..., Conn],
    console: Conn,
    monitoring_direct: Conn,
    db1_release: dict[str, str],
    lookup_databases: tuple[str, ...],
) -> None:
    """1.19+: auth_dbname points at the auth database, which holds the function; 1.18: each pooled
    database holds it. Either way a login through PgBouncer looks the user up there.

    Copies that a converge under 1.18 left in the pooled databases are not looked at here (the role
    leaves them, unused); the molecule scenario, on fresh hosts, checks that there are no others.
    """
    for database in lookup_databases:
        assert psql_db1(LOOKUP_FUNCTION_QUERY, dbname=database) == "1", database

    config = {row["key"]: row["value"] for row in show(console, "CONFIG")}
    entries = {row["name"]: row for row in show(console, "DATABASES")}
    if lookup_databases == (AUTH_DATABASE,):
        assert config.get("auth_dbname") == AUTH_ENTRY, config.get("auth_dbname")
        assert entries[AUTH_ENTRY]["database"] == AUTH_DATABASE, entries[AUTH_ENTRY]
    else:
        assert "auth_dbname" not in config, (
            f"PgBouncer {db1_release['pgbouncer']} has no auth_dbname"
        )
        assert AUTH_ENTRY not in entries

    with app() as conn:  # every login runs auth_query
        assert conn.execute("SELECT 1").fetchone() == (1,)
    rows = monitoring_direct.execute(
        "SELECT DISTINCT datname FROM pg_stat_activity WHERE usename = %s", [AUTH_USER]
    ).fetchall()
    # The auth user's server connection stays open (server_idle_timeout) after the lookup.
    assert lookup_databases[0] in {row[0] for row in rows}, rows


# 4b. Named prepared statements in transaction pooling (PgBouncer 1.21+: max_prepared_statements)


def test_named_prepared_statements_work_across_server_connections(
    app: Callable[..., Conn], console: Conn, db1_release: dict[str, str]
) -> None:
    """psycopg's prepare=True names its statement _pg3_0 on every connection. Through transaction
    pooling, PgBouncer must prepare it on whichever server connection each transaction gets, under
    its own name, so that 8 clients sharing 5 server connections, each with its own query under
    that one name, all get their own answers and no "prepared statement ... does not exist"."""
    found = db1_release["pgbouncer"]
    if version(found) < (1, 21):
        pytest.skip(
            f"PgBouncer {found} (Debian {db1_release['codename']}) has no max_prepared_statements"
            " (1.21+): applications disable named prepared statements there (docs/app-env.md)"
        )
    config = {row["key"]: row["value"] for row in show(console, "CONFIG")}
    assert config["max_prepared_statements"] == "200", config["max_prepared_statements"]

    marker = f"e2e_prepared_{uuid.uuid4().hex[:12]}"
    clients, rounds = 8, 10
    barrier = threading.Barrier(clients, timeout=60)
    answers: dict[int, list[tuple[int, int]]] = {}
    server_names: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def client(number: int) -> None:
        # One query text per client (its number in the result), all under psycopg's name _pg3_0.
        query = f"SELECT pg_backend_pid(), %s::int * 100 + {number}, pg_sleep(0.01) /* {marker} */"
        try:
            with app(dbname=POOL5, application_name=marker) as conn:  # autocommit
                barrier.wait()
                pairs = []
                for turn in range(rounds):  # one transaction each, on any server connection
                    row = conn.execute(query, [turn], prepare=True).fetchone()
                    assert row is not None
                    pairs.append((row[0], row[1]))
                answers[number] = pairs
                with conn.transaction():  # the statement as the server connection holds it
                    conn.execute(query, [rounds], prepare=True)
                    names = conn.execute(
                        "SELECT name FROM pg_prepared_statements WHERE statement LIKE %s",
                        [f"%{marker}%"],
                    ).fetchall()
                server_names[number] = [name for (name,) in names]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == [], errors[:3]
    assert sorted(answers) == list(range(clients)), "not every client got its answers"
    for number, pairs in answers.items():
        assert [value for _, value in pairs] == [turn * 100 + number for turn in range(rounds)]
    pids = {number: {pid for pid, _ in pairs} for number, pairs in answers.items()}
    assert len(set().union(*pids.values())) > 1, "every transaction ran on one server connection"
    assert any(len(used) > 1 for used in pids.values()), (
        f"no client's statement ran on more than one server connection: {pids}"
    )
    # On the server, PgBouncer's names (PGBOUNCER_<n>), never the client's own _pg3_0.
    for number, names in server_names.items():
        assert names, f"client {number}: its statement is not prepared on the server connection"
        assert all(name.startswith("PGBOUNCER_") for name in names), names


# 5. The monitoring role on the console


@pytest.fixture
def console(db_host: DbHost, ca_file: Path, secret: Secret) -> Iterator[Conn]:
    """pgstack_monitoring on PgBouncer's console; it speaks only the simple query protocol."""
    conn = psycopg.connect(
        bouncer_dsn(db_host, "pgstack_monitoring", ca_file, dbname="pgbouncer"),
        password=secret(ROLE_SECRETS["pgstack_monitoring"]),
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
    )
    yield conn
    conn.close()


def show(conn: Conn, what: str) -> list[dict[str, Any]]:
    """SHOW ... rows as dicts: columns change between PgBouncer releases, read them by name."""
    cur = conn.execute(f"SHOW {what}")
    names = [column.name for column in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_monitoring_reads_the_console(console: Conn) -> None:
    pools = show(console, "POOLS")
    assert {"app", POOL5} <= {row["database"] for row in pools}, pools
    for what in ("STATS", "CLIENTS", "SERVERS"):
        assert isinstance(show(console, what), list)


@pytest.mark.parametrize("command", ["PAUSE", "SHUTDOWN", "RELOAD", "SET query_wait_timeout = 1"])
def test_monitoring_cannot_run_admin_commands(console: Conn, command: str) -> None:
    try:
        with pytest.raises(psycopg.Error, match="admin access needed"):
            console.execute(command)
    finally:
        if command == "PAUSE":  # should the refusal ever fail, do not leave PgBouncer paused
            admin_console("RESUME")

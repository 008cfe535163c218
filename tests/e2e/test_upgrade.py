"""docs/runbooks/upgrade-to-debian13.md runs as written: the Debian 12 lab's data moves to the lab.

Needs both labs up and converged at once (`make lab lab-debian12`, then `make test-upgrade`):
PGSTACK_UPGRADE_OLD_INVENTORY names the old lab's inventory (inventory/lab-debian12, Debian 12);
the new lab is the e2e fixtures' (PGSTACK_LAB_INVENTORY, else inventory/lab, Debian 13). Without
that variable the module skips itself while it is collected, so `pytest tests/e2e` neither runs nor
lists its tests: they need a second lab, and leave its application databases frozen for good.

Both labs' hosts have the same names and FQDNs, so the runbook's `<old db host>` and `<new db host>`
are the two database hosts' addresses, which the controller's `ssh` of procedures.py maps to
`pgstack-lab -i <lab> ssh <host>`, and the blocks of the runbook's own sentences ("On the old
database host:", ...) run on the lab Runner.labs names for each. The checks connect from the
controller as clients do: TLS verify-full, the FQDN checked against the certificate, the lab's
address connected to.

Before the runbook, the migration role makes a table with ROWS rows and an identity sequence in the
old `app` database, and the new lab's application databases are dropped: the other tests left
tables there, and section 1 converges them anew, empty, as on new hosts. The blocks run section by
section, a block that names `<database>` once for each application database of the inventory.
Afterwards the old lab stays frozen (it is torn down after); the table is dropped from both labs,
so the new lab is as the converge left it and the test can run again.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import group_hosts
from helpers import (
    LAB_INVENTORY,
    PGBOUNCER_PORT,
    PORT,
    ROLE_SECRETS,
    as_app,
    conninfo,
    parse_recap,
)
from procedures import PGSTACK_LAB, Runner, ssh_command
from psycopg import sql
from psycopg.conninfo import make_conninfo

import release
from pgstack_lab.spec import load_spec
from runbooks import REPO_ROOT, Block, sections

OLD_INVENTORY_ENV = "PGSTACK_UPGRADE_OLD_INVENTORY"
if not os.environ.get(OLD_INVENTORY_ENV):
    pytest.skip(
        f"needs the Debian 12 lab beside the lab: {OLD_INVENTORY_ENV}=inventory/lab-debian12"
        " (make test-upgrade)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.upgrade

RUNBOOK = REPO_ROOT / "docs/runbooks/upgrade-to-debian13.md"
BEFORE, FREEZE, MOVE, SWITCH, ABORT = "1.", "2.", "3.", "4.", "Abort:"
# The PostgreSQL majors of Debian 12 and Debian 13.
OLD_MAJOR, NEW_MAJOR = (int(release.facts(name)["postgresql"]) for name in ("bookworm", "trixie"))
DATABASE = "app"
APP_ROLE = "app"
ROWS = 200_000
# Whole-site converges run in sections 1 and 4: well over the default bound of a block.
BLOCK_TIMEOUT = 2400


@dataclass
class DatabaseHost:
    """A lab's database host as helpers.conninfo takes it (DbHost)."""

    name: str
    fqdn: str
    address: str


@dataclass(frozen=True)
class Lab:
    """One lab of the test: its inventory and its database host."""

    inventory: Path
    db: DatabaseHost

    def sh(self, command: str, *, timeout: float = 300) -> str:
        """A command as root on the lab's database host; fail with its output unless it exits 0."""
        proc = subprocess.run(
            [str(PGSTACK_LAB), "-i", str(self.inventory), "ssh", self.db.name, command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, (
            f"{self.db.name} of {self.inventory.name}: {command}\n{proc.stdout}\n{proc.stderr}"
        )
        return proc.stdout

    def psql(self, query: str, dbname: str = "postgres") -> str:
        """One query as postgres over the local socket, unaligned tuples only."""
        command = (
            f"sudo -u postgres psql -XAtq -v ON_ERROR_STOP=1 -d {dbname} -c {shlex.quote(query)}"
        )
        return self.sh(command).strip()


def lab(inventory: Path) -> Lab:
    spec = load_spec(inventory)
    name = group_hosts("postgres", inventory)[0]
    host = spec.host(name)
    return Lab(inventory, DatabaseHost(name, host.fqdn(spec.domain), str(host.address)))


def old_inventory() -> Path:
    path = Path(os.environ[OLD_INVENTORY_ENV])
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


OLD = lab(old_inventory())
NEW = lab(LAB_INVENTORY.resolve())


def application_databases() -> dict[str, str]:
    """Each application database -> its migration role (the labs share these group_vars)."""
    data = yaml.safe_load((NEW.inventory / "group_vars/postgres/main.yml").read_text())
    owners = {
        u["database"]: u["name"] for u in data["postgresql_users"] if u["kind"] == "migration"
    }
    return {database["name"]: owners[database["name"]] for database in data["postgresql_databases"]}


def applications() -> dict[str, str]:
    """Each application of the application host -> its database."""
    data = yaml.safe_load((NEW.inventory / "group_vars/app/main.yml").read_text())
    return {app["name"]: app["database"] for app in data["app_env_applications"]}


DATABASES = application_databases()
APPLICATIONS = applications()


def blocks(prefix: str) -> list[Block]:
    [found] = [found for name, found in sections(RUNBOOK).items() if name.startswith(prefix)]
    return found


def test_the_module_runs_every_block_of_the_runbook() -> None:
    """The sections with blocks are the four this module runs in order, and the abort."""
    names = [name for name in sections(RUNBOOK) if name]
    assert [name.split()[0] for name in names] == [BEFORE, FREEZE, MOVE, SWITCH, ABORT]


def runner(bin_dir: Path) -> Runner:
    """The runbook's blocks with the labs' values; the old and new hosts by address."""
    values = {
        "<new env>": NEW.inventory.relative_to(REPO_ROOT / "inventory").as_posix(),
        "<old db host>": OLD.db.address,
        "<new db host>": NEW.db.address,
    }
    labs = {
        "On the old database host:": OLD.inventory,
        "On the new database host:": NEW.inventory,
        "On the new backup host:": NEW.inventory,
    }
    bin_dir = ssh_command(bin_dir, (OLD.inventory, NEW.inventory))
    return Runner(RUNBOOK, values, bin_dir, timeout=BLOCK_TIMEOUT, labs=labs)


def run(runner: Runner, block: Block, databases: dict[str, str] = DATABASES) -> str:
    """A block as written: once for each application database if it names `<database>`."""
    if "<database>" not in block.placeholders:
        return runner.run(block)
    return "".join(
        runner.with_values({"<database>": name, "<migration role>": owner}).run(block)
        for name, owner in databases.items()
    )


Secret = Callable[[str], str]


def connect(
    side: Lab, user: str, *, port: int, ca_file: Path, secret: Secret, read_write: bool = False
) -> psycopg.Connection:
    """A client of the lab's `app` database (TLS, verify-full); read_write asks for read-write
    transactions whatever the database's default (the test's own writes on a frozen old lab)."""
    dsn = conninfo(side.db, user, ca_file, port=port, dbname=DATABASE)
    if read_write:
        dsn = make_conninfo(dsn, options="-c default_transaction_read_only=off")
    return psycopg.connect(dsn, password=secret(ROLE_SECRETS[user]), autocommit=True)


def summary(conn: psycopg.Connection, table: str) -> tuple[int, int, str]:
    """Rows, the highest id and a checksum of every row, in id order."""
    query = sql.SQL(
        "SELECT count(*), max(id), md5(string_agg(id::text || ':' || note, ',' ORDER BY id))"
        " FROM public.{}"
    ).format(sql.Identifier(table))
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), str(row[2])


def insert(conn: psycopg.Connection, table: str) -> int:
    """One row as the application writes it (the id from the table's sequence); its id."""
    query = sql.SQL("INSERT INTO public.{} (note) VALUES ('e2e') RETURNING id").format(
        sql.Identifier(table)
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class Table:
    name: str
    summary: tuple[int, int, str]  # on the old lab, as the migration role wrote it


@pytest.fixture
def table(ca_file: Path, secret: Secret) -> Iterator[Table]:
    """A table of the old lab's `app` with ROWS rows and an identity sequence, made by the migration
    role (the app role may use it by the default privileges); dropped from both labs after."""
    name = f"e2e_upgrade_{uuid.uuid4().hex[:8]}"
    owner = DATABASES[DATABASE]
    ident = sql.Identifier(name)
    try:
        with connect(OLD, owner, port=PORT, ca_file=ca_file, secret=secret, read_write=True) as c:
            c.execute(
                sql.SQL(
                    "CREATE TABLE public.{} (id bigint GENERATED BY DEFAULT AS IDENTITY"
                    " PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT now())"
                ).format(ident)
            )
            c.execute(
                sql.SQL(
                    "INSERT INTO public.{} (note)"
                    " SELECT md5(g::text) FROM generate_series(1, %s) AS g"
                ).format(ident),
                (ROWS,),
            )
            made = summary(c, name)
        assert made[:2] == (ROWS, ROWS)
        yield Table(name, made)
    finally:
        drop = sql.SQL("DROP TABLE IF EXISTS public.{}").format(ident)
        for side in (OLD, NEW):
            with connect(
                side, owner, port=PORT, ca_file=ca_file, secret=secret, read_write=True
            ) as c:
                c.execute(drop)


def read_only_refused(conn: psycopg.Connection, table: str) -> bool:
    try:
        insert(conn, table)
    except psycopg.errors.ReadOnlySqlTransaction:
        return True
    return False


def test_the_freeze_refuses_writes_until_the_abort_lifts_it(
    table: Table, tmp_path: Path, ca_file: Path, secret: Secret
) -> None:
    """Section 2 on the old `app`, then the Abort block: writes through PgBouncer are refused, then
    accepted again (PgBouncer's server connections opened during the freeze were read-only)."""
    steps = runner(tmp_path)
    app_only = {DATABASE: DATABASES[DATABASE]}

    def app_role() -> psycopg.Connection:
        return connect(OLD, APP_ROLE, port=PGBOUNCER_PORT, ca_file=ca_file, secret=secret)

    # A server connection PgBouncer pools from before the freeze.
    with app_role() as conn:
        assert summary(conn, table.name) == table.summary
    for block in blocks(FREEZE):
        run(steps, block, app_only)
    with app_role() as conn:
        assert read_only_refused(conn, table.name), "a write went through the freeze"
    [abort] = blocks(ABORT)
    run(steps, abort, app_only)
    with app_role() as conn:
        assert insert(conn, table.name) == ROWS + 1
        assert summary(conn, table.name)[:2] == (ROWS + 1, ROWS + 1)


def server_major(side: Lab) -> int:
    return int(side.psql("SHOW server_version_num")) // 10000


@pytest.fixture
def new_hosts() -> None:
    """The new lab as new hosts are: its application databases hold what the other end-to-end
    tests left there, so they are dropped, and section 1's converge creates them empty, with their
    owners and privileges, as on hosts pgstack has just converged."""
    for name in DATABASES:
        NEW.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.usefixtures("clients_on_app_host", "new_hosts")
def test_the_runbook_moves_the_deployment_to_debian_13(
    table: Table, tmp_path: Path, ca_file: Path, secret: Secret
) -> None:
    assert (server_major(OLD), server_major(NEW)) == (OLD_MAJOR, NEW_MAJOR), (
        f"{OLD.inventory.name} must run PostgreSQL {OLD_MAJOR} and {NEW.inventory.name}"
        f" {NEW_MAJOR} (Debian 12 and Debian 13)"
    )
    names = ", ".join(f"'{name}'" for name in DATABASES)
    size = int(
        OLD.psql(
            f"SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datname IN ({names})"
        )
    )
    steps = runner(tmp_path)
    timings: dict[str, float] = {}

    def timed(name: str, block: Block) -> str:
        started = time.monotonic()
        output = run(steps, block)
        timings[name] = timings.get(name, 0.0) + time.monotonic() - started
        return output

    for block in blocks(BEFORE):
        timed("before", block)
    # A server connection PgBouncer pools from before the freeze: the freeze must end it.
    with connect(OLD, APP_ROLE, port=PGBOUNCER_PORT, ca_file=ca_file, secret=secret) as conn:
        assert summary(conn, table.name) == table.summary
    began = time.monotonic()
    for block in blocks(FREEZE):
        timed("freeze", block)
    move, grants, compare = blocks(MOVE)
    # The grants converge runs once, for every database.
    assert grants.on_controller, grants
    assert "<database>" not in grants.placeholders, grants
    timed("move", move)
    timed("grants", grants)
    compared = timed("compare", compare)
    assert f"table public.{table.name}|{ROWS}|" in compared, compared[-3000:]
    switch, converge, archiving, full_backup = blocks(SWITCH)
    timed("switch", switch)
    cutover = time.monotonic() - began
    recap = parse_recap(timed("converge", converge))
    changed = {host: counts["changed"] for host, counts in recap.items() if counts["changed"]}
    timed("backup", archiving)
    timed("backup", full_backup)

    steps_text = ", ".join(
        f"{name} {timings[name]:.0f} s"
        for name in ("freeze", "move", "grants", "compare", "switch")
    )
    print(
        f"upgrade: cut-over (freeze to applications switched) {cutover:.0f} s: {steps_text};"
        f" before {timings['before']:.0f} s, site.yml after {timings['converge']:.0f} s"
        f" (changed: {changed or 'none'}), backup {timings['backup']:.0f} s"
    )
    print(
        f"upgrade: on the lab ({size / 2**20:.0f} MiB in {len(DATABASES)} databases,"
        f" {os.cpu_count()} cores), the writes were frozen for {cutover:.0f} s,"
        f" {timings['move']:.0f} s of them for the dump and restore."
    )

    owner = DATABASES[DATABASE]
    # The new primary: the same rows, owned by the migration role; the app role reads and writes
    # them through PgBouncer, its inserts taking the restored sequence's next value.
    with connect(NEW, APP_ROLE, port=PGBOUNCER_PORT, ca_file=ca_file, secret=secret) as conn:
        assert summary(conn, table.name) == table.summary
        row = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = %s",
            (table.name,),
        ).fetchone()
        assert row == (owner,)
        assert insert(conn, table.name) == ROWS + 1
        conn.execute(
            sql.SQL("DELETE FROM public.{} WHERE id > %s").format(sql.Identifier(table.name)),
            (ROWS,),
        )
        assert summary(conn, table.name) == table.summary
    # The old primary refuses writes to new sessions: the app role through PgBouncer (on the
    # server connection it pooled before the freeze, or a new one), the migration role directly.
    with connect(OLD, APP_ROLE, port=PGBOUNCER_PORT, ca_file=ca_file, secret=secret) as conn:
        assert read_only_refused(conn, table.name), "the old primary took a write"
        assert summary(conn, table.name) == table.summary
    with (
        connect(OLD, owner, port=PORT, ca_file=ca_file, secret=secret) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TABLE public.e2e_upgrade_refused (id int)")
    # The applications' env files on the new application host name the new hosts: both URLs
    # reach the application's database there, read-write.
    query = "SELECT current_database(), current_setting('default_transaction_read_only')"
    for app, database in APPLICATIONS.items():
        for variable in ("DATABASE_URL", "DIRECT_DATABASE_URL"):
            result = as_app(app, f'psql -XAt "${variable}" -c "{query}"')
            assert result.returncode == 0, f"{app} {variable}: {result.stderr}"
            assert result.stdout.strip() == f"{database}|off", f"{app} {variable}: {result.stdout}"
    [app] = [app for app, database in APPLICATIONS.items() if database == DATABASE]
    count = f"SELECT count(*) FROM public.{table.name}"
    result = as_app(app, f'psql -XAt "$DATABASE_URL" -c "{count}"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ROWS)

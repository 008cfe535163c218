"""docs/runbooks/migration-rollback.md runs as written on the lab: section 1, then 2a, then 2b.

The blocks are read from the runbook (tests/runbooks.py) and run as written (procedures.py:
one bash per block, on the host its sentence names or on the controller). The test fills in the
placeholders: `<env>` = lab, `<label>` = a fresh `e2e-rollback-<hex>` per run (a restore point
name is never reused), `<database>` = app, the FQDNs from inventory/lab; and exports `D` to every
block: the directory on the `D=` line section 1's playbook prints.

Section 1 runs once for the module (one labelled dump, one restore point), after two tables with
rows were made by the migration role: 2a's stand-in migration drops one, 2b drops the other after
the restore point. 2b takes the whole cluster back to that restore point, so it also undoes
whatever 2a left; both leave the lab converged, archiving, with a full backup on the current
timeline.
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from conftest import group_hosts, lab_host
from helpers import (
    DATABASE,
    PGBOUNCER_PORT,
    ROLE_SECRETS,
    DbHost,
    conninfo,
    lab_ssh,
    parse_recap,
    psql_db1,
    sh,
)
from procedures import Runner, ssh_command
from psycopg import sql

from runbooks import REPO_ROOT, Block, sections

pytestmark = pytest.mark.e2e

RUNBOOK = REPO_ROOT / "docs/runbooks/migration-rollback.md"
BEFORE, ONE_DATABASE, WHOLE_CLUSTER = "1.", "2a.", "2b."
DB = "db1"
REPO = "backup1"
STANZA = "main"
ROWS = 1000


def blocks(prefix: str) -> list[Block]:
    [found] = [found for name, found in sections(RUNBOOK).items() if name.startswith(prefix)]
    return found


def test_the_module_runs_every_block_of_the_runbook() -> None:
    """Every section with blocks is one of the three this module runs."""
    names = [name for name in sections(RUNBOOK) if name]
    assert [name.split()[0] for name in names] == [BEFORE, ONE_DATABASE, WHOLE_CLUSTER]


def lab_values(label: str) -> dict[str, str]:
    return {
        "<env>": "lab",
        "<label>": label,
        "<database>": DATABASE,
        "<db host FQDN>": lab_host(group_hosts("postgres")[0]).fqdn,
        "<backup host FQDN>": lab_host(group_hosts("backup")[0]).fqdn,
    }


def make_table(name: str) -> None:
    """A table with ROWS rows made by the migration role (the app role may use it)."""
    psql_db1(
        f"SET ROLE app_migration; CREATE TABLE public.{name} AS"
        f" SELECT g AS id, md5(g::text) AS note FROM generate_series(1, {ROWS}) AS g",
        dbname=DATABASE,
    )


def drop_table(name: str) -> None:
    psql_db1(f"SET ROLE app_migration; DROP TABLE IF EXISTS public.{name}", dbname=DATABASE)


def timeline() -> int:
    return int(psql_db1("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), 16)


def database_exists(name: str) -> bool:
    return psql_db1(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "1"


@dataclass(frozen=True)
class Prepared:
    runner: Runner
    label: str
    one_database_table: str  # dropped by 2a's stand-in migration
    whole_cluster_table: str  # dropped by 2b after the restore point
    seconds: float  # section 1's duration


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    """Two tables with rows, then section 1 (labelled dump and restore point) as written."""
    suffix = uuid.uuid4().hex[:8]
    label = f"e2e-rollback-{suffix}"
    tables = (f"e2e_rollback_one_{suffix}", f"e2e_rollback_all_{suffix}")
    runner = Runner(RUNBOOK, lab_values(label), ssh_command(tmp_path_factory.mktemp("bin")))
    dump = ""
    try:
        for table in tables:
            make_table(table)
        began = time.monotonic()
        [section] = blocks(BEFORE)
        output = runner.run(section)
        seconds = time.monotonic() - began
        match = re.search(r"\bD=(/\S+?)['\",]?$", output, re.MULTILINE)
        assert match, f"no D= line in the playbook's output:\n{output[-3000:]}"
        dump = match[1]
        assert dump.endswith(f"-{label}"), dump
        yield Prepared(runner.with_env(D=dump), label, *tables, seconds)
    finally:
        for table in tables:
            drop_table(table)
        if dump:
            lab_ssh(REPO, f"rm -rf {shlex.quote(dump)}")


def app_connection(
    db_host: DbHost, ca_file: Path, secret: Callable[[str], str]
) -> psycopg.Connection:
    """The app role through PgBouncer (TLS, verify-full), as the application connects."""
    return psycopg.connect(
        conninfo(db_host, "app", ca_file, port=PGBOUNCER_PORT),
        password=secret(ROLE_SECRETS["app"]),
        autocommit=True,
    )


def summary(conn: psycopg.Connection, table: str) -> tuple[int, int]:
    query = sql.SQL("SELECT count(*), max(id) FROM public.{}").format(sql.Identifier(table))
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def repair_one_database() -> None:
    """After a failed 2a: `app` back and accepting connections, the rollback's leftovers gone."""
    if not database_exists(DATABASE) and database_exists(f"{DATABASE}_broken"):
        psql_db1(f"ALTER DATABASE {DATABASE}_broken RENAME TO {DATABASE}")
    psql_db1(f"ALTER DATABASE {DATABASE} WITH ALLOW_CONNECTIONS true")
    for name in (f"{DATABASE}_rollback", f"{DATABASE}_broken"):
        sh(DB, f"sudo -u postgres dropdb --if-exists {name}")
    sh(DB, "rm -rf /var/tmp/rollback")


def test_2a_one_database_comes_back_from_the_labelled_dump(
    prepared: Prepared, db_host: DbHost, ca_file: Path, secret: Callable[[str], str]
) -> None:
    table = prepared.one_database_table
    *steps, cleanup = blocks(ONE_DATABASE)
    assert any("dropdb" in command for command in cleanup.commands), cleanup
    # PgBouncer keeps the server connection this opens: the swap must get past it.
    with app_connection(db_host, ca_file, secret) as conn:
        assert summary(conn, table) == (ROWS, ROWS)
    # The migration that breaks the database.
    drop_table(table)
    succeeded = False
    began = time.monotonic()
    try:
        for block in steps:
            prepared.runner.run(block)
        with app_connection(db_host, ca_file, secret) as conn:
            assert summary(conn, table) == (ROWS, ROWS)
            # The app role's privileges on the restored table: write and delete.
            conn.execute(
                sql.SQL("INSERT INTO public.{} (id, note) VALUES (%s, 'after')").format(
                    sql.Identifier(table)
                ),
                (ROWS + 1,),
            )
            assert summary(conn, table) == (ROWS + 1, ROWS + 1)
            conn.execute(
                sql.SQL("DELETE FROM public.{} WHERE id > %s").format(sql.Identifier(table)),
                (ROWS,),
            )
        owner = psql_db1(
            f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{DATABASE}'"
        )
        assert owner == "app_migration"
        prepared.runner.run(cleanup)
        assert not database_exists(f"{DATABASE}_broken")
        assert lab_ssh(DB, "test -e /var/tmp/rollback").returncode == 1
        succeeded = True
    finally:
        print(f"2a: {time.monotonic() - began:.0f} s (section 1: {prepared.seconds:.0f} s)")
        if not succeeded:
            repair_one_database()


def full_backups() -> list[dict[str, object]]:
    info = json.loads(sh(REPO, f"sudo -u postgres pgbackrest --stanza={STANZA} --output=json info"))
    return [backup for backup in info[0]["backup"] if backup["type"] == "full"]


def test_2b_the_cluster_comes_back_to_the_restore_point(prepared: Prepared) -> None:
    table = prepared.whole_cluster_table
    restore, playbook, full_backup = blocks(WHOLE_CLUSTER)
    assert restore.groups == ("postgres",), restore
    assert playbook.on_controller, playbook
    before = timeline()
    # The migration after the restore point.
    drop_table(table)
    began = time.monotonic()
    timings = {}
    for name, block in (("restore", restore), ("backup.yml", playbook), ("full", full_backup)):
        started = time.monotonic()
        output = prepared.runner.run(block)
        timings[name] = time.monotonic() - started
        if block is playbook:
            recap = parse_recap(output)
            changed = {
                host: counts["changed"] for host, counts in recap.items() if counts["changed"]
            }
            assert not changed, f"backup.yml after the restore changed {changed}:\n{output[-3000:]}"
    print(f"2b: {time.monotonic() - began:.0f} s {timings}")
    assert psql_db1(f"SELECT count(*) FROM public.{table}", dbname=DATABASE) == str(ROWS)
    assert psql_db1("SELECT pg_is_in_recovery()") == "f"
    after = timeline()
    assert after > before
    newest = full_backups()[-1]
    archive = newest["archive"]
    assert isinstance(archive, dict)
    assert int(str(archive["start"])[:8], 16) == after, newest

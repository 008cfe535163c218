"""The backup tier against the converged lab: pgBackRest from db1 to backup1, pg_dump on backup1.

Everything is observed from the outside: pgBackRest's own commands and repository on backup1,
pg_stat_archiver on db1, the dump files, manifests and status files on backup1, and restores into a
scratch database. The outage and kill tests break things on purpose and always repair them.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from helpers import (
    ROLE_SECRETS,
    DbHost,
    conninfo,
    lab_ssh,
    netns_iptables,
    pg_major,
    psql_db1,
    sh,
    switch_wal,
    wait_for,
)
from psycopg import sql

pytestmark = pytest.mark.e2e

PLAYBOOK = "playbooks/backup.yml"
DB = "db1"
REPO = "backup1"
STANZA = "main"
DATABASE = "app"
DUMPS = f"/var/backups/pgstack/dumps/{DB}/{DATABASE}"
STATUS = f"/var/lib/pgstack/status/pg_dump-{DB}-{DATABASE}.json"
ARCHIVE = f"/var/lib/pgbackrest/archive/{STANZA}"
SERVICE = "pgstack-pg-dump.service"
Playbook = Callable[..., Any]


def archiver() -> dict[str, Any]:
    row = psql_db1(
        "SELECT json_build_object('archived', archived_count, 'failed', failed_count,"
        " 'last_archived_wal', last_archived_wal, 'last_archived_time', last_archived_time,"
        " 'last_failed_time', last_failed_time) FROM pg_stat_archiver"
    )
    data: dict[str, Any] = json.loads(row)
    return data


def segment_in_repository(segment: str) -> bool:
    proc = lab_ssh(REPO, f"ls {ARCHIVE}/*/{segment[:16]}/{segment}-* >/dev/null 2>&1")
    return proc.returncode == 0


def status() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sh(REPO, f"cat {STATUS}"))
    return data


def final_dumps() -> set[str]:
    out = sh(REPO, f"ls -1 {DUMPS}")
    return {name for name in out.split() if not name.startswith(".")}


def partial_dumps() -> set[str]:
    out = sh(REPO, f"ls -1a {DUMPS}")
    return {name for name in out.split() if name.startswith(".partial-")}


def sha256(path: str) -> str:
    return sh(REPO, f"sha256sum {path}").split()[0]


def service_state() -> str:
    """ActiveState of the dump service: a oneshot service is "activating" while it runs."""
    return sh(REPO, f"systemctl show --property=ActiveState --value {SERVICE}").strip()


def run_dump_service() -> int:
    return lab_ssh(REPO, f"systemctl start {SERVICE}", timeout=900).returncode


# --- pgBackRest


@pytest.mark.release
def test_check_passes_and_the_archiver_reports_no_failure() -> None:
    out = sh(DB, f"sudo -u postgres pgbackrest --stanza={STANZA} --log-level-console=info check")
    assert "check command end: completed successfully" in out
    state = archiver()
    assert state["archived"] > 0
    # No failure since the last success (an earlier outage test may have left old failures).
    assert (
        state["last_failed_time"] is None or state["last_failed_time"] < state["last_archived_time"]
    ), state


@pytest.mark.release
def test_a_switched_segment_reaches_the_repository_on_backup1() -> None:
    before = archiver()["archived"]
    segment = switch_wal()
    wait_for("archived_count to grow", lambda: archiver()["archived"] > before, 90, every=2)
    wait_for(f"{segment} in the repository", lambda: segment_in_repository(segment), 60, every=2)


@pytest.mark.release
def test_a_full_backup_exists_and_verify_passes() -> None:
    info = json.loads(sh(REPO, f"sudo -u postgres pgbackrest --stanza={STANZA} --output=json info"))
    assert info[0]["status"]["code"] == 0, info[0]["status"]
    assert [b for b in info[0]["backup"] if b["type"] == "full"], info[0]["backup"]
    assert info[0]["cipher"] == "aes-256-cbc"
    # verify can exit 0 with "status: error": the wrapper reads the report.
    out = sh(REPO, f"sudo -u postgres /usr/local/sbin/pgstack-pgbackrest-verify {STANZA}")
    assert "status: ok" in out


@pytest.mark.release
def test_the_verify_wrapper_fails_on_a_damaged_repository() -> None:
    """The wrapper must be able to fail: damage a copy of the repository and verify that copy."""
    copy = f"/var/backups/pgstack/e2e-repo-{uuid.uuid4().hex[:8]}"
    try:
        sh(REPO, f"cp -a /var/lib/pgbackrest {copy}")
        segment = sh(REPO, f"ls -1 {copy}/archive/{STANZA}/*/*/*-* | head -1").strip()
        # Bytes changed inside an archived segment (its cipher header intact): pgbackrest verify
        # 2.45 then exits 0 and prints "status: error"; the wrapper must turn that into a failure.
        sh(REPO, f"printf XXXXXXXX | dd of={segment} bs=1 seek=200 conv=notrunc status=none")
        raw = lab_ssh(
            REPO,
            f"sudo -u postgres pgbackrest --stanza={STANZA} --repo1-path={copy} "
            "--output=text --verbose verify",
        )
        assert raw.returncode == 0
        assert "status: error" in raw.stdout
        proc = lab_ssh(
            REPO,
            f"sudo -u postgres env PGBACKREST_REPO1_PATH={copy} "
            f"/usr/local/sbin/pgstack-pgbackrest-verify {STANZA}",
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        # Failed by reading the report, not because pgbackrest itself exited non-zero.
        assert "pgstack-pgbackrest-verify: " in proc.stderr
        assert "exited" not in proc.stderr
    finally:
        lab_ssh(REPO, f"rm -rf {copy}")


# --- pg_dump


@contextmanager
def scratch_table(
    db_host: DbHost, ca_file: Path, secret: Callable[[str], str], prefix: str, select: str
) -> Iterator[str]:
    """A table made by the migration role from `CREATE TABLE ... AS <select>`, dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        conninfo(db_host, "app_migration", ca_file),
        password=secret(ROLE_SECRETS["app_migration"]),
        autocommit=True,
    ) as conn:
        conn.execute(sql.SQL("CREATE TABLE public.{} AS " + select).format(sql.Identifier(name)))
        yield name
        conn.execute(sql.SQL("DROP TABLE IF EXISTS public.{}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def app_data(db_host: DbHost, ca_file: Path, secret: Callable[[str], str]) -> Iterator[str]:
    """A table with rows of several types, made by the migration role (dropped afterwards)."""
    with scratch_table(
        db_host, ca_file, secret, "e2e_backup",
        "SELECT g AS id, md5(g::text) AS note, g * 1.5 AS amount,"
        " now() - g * interval '1 minute' AS at FROM generate_series(1, 5000) AS g",
    ) as name:  # fmt: skip
        yield name


@pytest.mark.release
def test_a_dump_restores_into_a_scratch_database_matching_its_manifest(app_data: str) -> None:
    assert run_dump_service() == 0
    state = status()
    assert state["version"] == 1
    assert state["last_attempt"]["exit_status"] == "success"
    path = state["last_success"]["path"]
    manifest = json.loads(sh(REPO, f"cat {path}/manifest.json"))
    tables = {(t["schema"], t["name"]): t for t in manifest["tables"]}
    assert tables[("public", app_data)]["rows"] == 5000

    scratch = f"e2e_restore_{uuid.uuid4().hex[:8]}"
    dump = base64.b64decode(sh(REPO, f"base64 -w0 {path}/data.dump"))
    try:
        sh(DB, f"sudo -u postgres createdb -T template0 {scratch}")
        proc = lab_ssh(
            DB,
            f"base64 -d | sudo -u postgres pg_restore --exit-on-error -d {scratch}",
            stdin=base64.b64encode(dump).decode(),
        )
        assert proc.returncode == 0, proc.stderr
        for (schema, table), expected in tables.items():
            got = psql_db1(SUMMARY.format(f'"{schema}"."{table}"'), dbname=scratch)
            assert got == f"{expected['rows']} {expected['checksum']}", (schema, table)
    finally:
        lab_ssh(DB, f"sudo -u postgres dropdb --if-exists {scratch}")


# The manifest's definition (docs/backup.md): row count and sum of hashtext(row::text).
SUMMARY = "SELECT count(*) || ' ' || coalesce(sum(hashtext(t::text)::bigint), 0) FROM ONLY {} AS t"

RETENTION_CASES = [
    # (ages in days of existing dumps, max_age_days, min_count, ages expected to survive)
    ([0.5, 2, 5, 8, 10, 40], 7, 3, [0.5, 2, 5]),
    ([1, 10, 20, 30], 7, 3, [1, 10, 20]),
    ([60, 61, 90], 7, 1, [60]),  # the newest survives although older than the window
    ([20, 25], 7, 3, [20, 25]),
]


@pytest.mark.parametrize(("ages", "max_age", "min_count", "survivors"), RETENTION_CASES)
def test_retention_with_faked_ages_keeps_exactly_the_expected_dumps(
    ages: list[float], max_age: int, min_count: int, survivors: list[float]
) -> None:
    """The deployed runner's prune, on dumps with faked ages in a scratch destination on backup1."""
    base = f"/var/backups/pgstack/e2e-retention-{uuid.uuid4().hex[:8]}"
    config = yaml.safe_load(sh(REPO, "cat /etc/pgstack/pg_dump.yml"))
    config.update(
        destination=f"{base}/dumps",
        status_dir=f"{base}/status",
        retention={"max_age_days": max_age, "min_count": min_count},
    )
    now = time.time()
    names = {age: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - age * 86400)) for age in ages}
    made = " && ".join(
        f"mkdir -p {base}/dumps/{DATABASE}/{name} && echo {{}} > {base}/dumps/{DATABASE}/{name}/m"
        for name in names.values()
    ).replace("/m", "/manifest.json")
    try:
        sh(REPO, f"mkdir -p {base}/status && {made}")
        # A labelled dump and a leftover of a killed run: never pruned / always removed.
        sh(REPO, f"mkdir -p {base}/dumps/{DATABASE}/20200101T000000Z-before-0001 "
                 f"{base}/dumps/{DATABASE}/.partial-20200101T000000Z")  # fmt: skip
        proc = lab_ssh(REPO, f"cat > {base}/pg_dump.yml", stdin=yaml.safe_dump(config))
        assert proc.returncode == 0
        sh(REPO, f"chown -R pgstack-backup: {base}")
        sh(REPO, f"sudo -u pgstack-backup pgstack-backup --config.file={base}/pg_dump.yml prune")
        left = set(sh(REPO, f"ls -1a {base}/dumps/{DATABASE}").split()) - {".", ".."}
        expected = {names[age] for age in survivors} | {"20200101T000000Z-before-0001"}
        assert left == expected
    finally:
        lab_ssh(REPO, f"rm -rf {base}")


def test_unwritable_destination_fails_keeps_the_last_dump_and_records_the_failure() -> None:
    assert run_dump_service() == 0
    before = status()["last_success"]
    digest = sha256(f"{before['path']}/data.dump")
    try:
        sh(REPO, f"chmod 0555 {DUMPS}")
        assert run_dump_service() != 0
        assert lab_ssh(REPO, f"systemctl is-failed --quiet {SERVICE}").returncode == 0
        after = status()
        assert after["last_attempt"]["exit_status"] == "failed"
        assert "cannot write" in after["last_attempt"]["error"]
        assert after["last_success"] == before
        assert sha256(f"{before['path']}/data.dump") == digest
        sh(REPO, f"pg_restore --file=/dev/null {before['path']}/data.dump")
    finally:
        lab_ssh(REPO, f"chmod 0750 {DUMPS}; systemctl reset-failed {SERVICE}")


@pytest.fixture(scope="module")
def big_table(db_host: DbHost, ca_file: Path, secret: Callable[[str], str]) -> Iterator[str]:
    """Enough rows that a dump takes several seconds (dropped afterwards)."""
    with scratch_table(
        db_host, ca_file, secret, "e2e_bulk",
        "SELECT g AS id, md5(g::text) AS a,"
        " md5((g * 7)::text) AS b FROM generate_series(1, 2500000) AS g",
    ) as name:  # fmt: skip
        yield name


@pytest.mark.parametrize("signal", ["SIGTERM", "SIGKILL"])
def test_a_dump_killed_mid_run_leaves_no_good_looking_file(big_table: str, signal: str) -> None:
    assert run_dump_service() == 0
    before = status()["last_success"]
    digest = sha256(f"{before['path']}/data.dump")
    finals = final_dumps()
    try:
        sh(REPO, f"systemctl start --no-block {SERVICE}")
        wait_for("the dump to start writing", lambda: bool(partial_dumps()), 60, every=2)
        time.sleep(1)
        assert service_state() == "activating", "the dump ended before it could be killed"
        sh(REPO, f"systemctl kill --signal={signal} {SERVICE}")
        wait_for(
            "the service to stop", lambda: service_state() in ("inactive", "failed"), 60, every=2
        )
        assert final_dumps() == finals  # no new final name
        after = status()
        assert after["last_attempt"]["exit_status"] == "failed"
        assert after["last_success"] == before
        assert sha256(f"{before['path']}/data.dump") == digest
        if signal == "SIGTERM":
            assert partial_dumps() == set()  # cleaned up on the way out
    finally:
        lab_ssh(REPO, f"systemctl reset-failed {SERVICE}")
    # The next run removes any leftover and succeeds.
    assert run_dump_service() == 0
    assert partial_dumps() == set()


# --- outage of the repository host


def test_archiving_queues_during_an_outage_and_catches_up_without_a_gap(
    lab_inventory: Path,
) -> None:
    # Lab hosts lack CAP_NET_ADMIN: the rule goes into backup1's network namespace from the
    # controller (pgstack-lab names it pgstack-lab-<machine>); it only affects backup1.
    rule = ["INPUT", "-p", "tcp", "--dport", "8432", "-j", "REJECT", "--reject-with", "tcp-reset"]
    before = archiver()
    segments = []
    try:
        netns_iptables(REPO, "-I", *rule)
        for _ in range(4):
            segments.append(switch_wal())
            time.sleep(10)
        # archive-push waits up to pgBackRest's archive-timeout (60 s) for the async process
        # before it reports the failure to PostgreSQL.
        wait_for("archiver failures", lambda: archiver()["failed"] > before["failed"], 180, every=2)
        status_dir = f"/var/lib/postgresql/{pg_major(lab_inventory, DB)}/main/pg_wal/archive_status"
        ready = sh(DB, f"ls {status_dir} | grep -c ready; true")
        assert int(ready.strip()) >= 1, "no WAL waiting in pg_wal"
        assert not any(segment_in_repository(s) for s in segments[1:])
    finally:
        netns_iptables(REPO, "-D", *rule)
    wait_for(
        "the archive to catch up",
        lambda: all(segment_in_repository(s) for s in segments),
        240,
        every=2,
    )
    # No gap: pgBackRest checks every WAL segment of the archive.
    sh(REPO, f"sudo -u postgres /usr/local/sbin/pgstack-pgbackrest-verify {STANZA}")
    sh(DB, f"sudo -u postgres pgbackrest --stanza={STANZA} check")


# --- before a schema migration


def test_pre_migration_takes_a_labelled_dump_and_an_archived_restore_point(
    ansible_playbook: Playbook,
) -> None:
    label = f"e2e-{uuid.uuid4().hex[:8]}"
    result = ansible_playbook("-e", f"label={label}", playbook="playbooks/pre_migration.yml")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    dumps = [name for name in final_dumps() if name.endswith(f"-{label}")]
    assert len(dumps) == 1, final_dumps()
    path = f"{DUMPS}/{dumps[0]}"
    sh(REPO, f"pg_restore --file=/dev/null {path}/data.dump")
    assert json.loads(sh(REPO, f"cat {path}/manifest.json"))["label"] == label
    assert f"--type=name --target={label}" in output
    assert f"Restore point '{label}' at LSN" in output
    # pre_migration ran pgbackrest check after the restore point: its segment is archived.
    wal = psql_db1("SELECT last_archived_wal FROM pg_stat_archiver")
    assert segment_in_repository(wal)

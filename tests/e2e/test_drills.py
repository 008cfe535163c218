"""Restore drills on the lab, as an operator runs them: `playbooks/restore_drill.yml` drills the
real backups of db1 on backup1 (the newest dump, and the pgBackRest backup with its WAL archive)
and fetches the reports; the sample workload (`pgstack-drill workload`) gives the backups a few
hundred MB of application rows. Failure cases run the deployed `pgstack-drill` on backup1 with
their own status and report directories, so the lab's drill status stays that of a real drill.

What `roles/restore_drill` deploys is tested here too: the heartbeat on db1 (its row advances, its
role may write that row and nothing else), and on backup1 the quarterly timer, no cluster of its
own, the first drills' status files and the timer's service running every drill.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from dashboard_queries import panel_queries, without_series
from helpers import (
    ROLE_SECRETS,
    DbHost,
    conninfo,
    lab_ssh,
    netns_iptables,
    prometheus,
    psql_db1,
    sh,
    switch_wal,
    wait_for,
)

pytestmark = pytest.mark.e2e

PLAYBOOK = "playbooks/restore_drill.yml"
DB = "db1"
REPO = "backup1"
DATABASE = "app"
# The databases the lab dumps and drills (inventory/lab/group_vars/backup/main.yml).
DRILLED = ("app", "billing")
DUMPS = f"/var/backups/pgstack/dumps/{DB}/{DATABASE}"
SCRATCH = "/var/lib/pgstack/drills/scratch"
# The sample workload in app, left there for the tests after these (rollbacks, the DR rebuild, the
# upgrade runbook move it again): enough rows for every phase to have work, small enough that each
# restore of it costs seconds.
WORKLOAD_MB = 50
RTO_OBJECTIVE = 3600
RPO_OBJECTIVE = 300
SCHEDULE = "*-01,04,07,10-01 06:00:00"
STATUS = "/var/lib/pgstack/status"
Playbook = Callable[..., subprocess.CompletedProcess[str]]


def newest_dump() -> str:
    """The newest complete dump directory of app (what a logical drill picks without --dump)."""
    names = [n for n in sh(REPO, f"ls -1 {DUMPS}").split() if not n.startswith(".")]
    return f"{DUMPS}/{max(names)}"


def manifest_rows(dump: str) -> dict[str, int]:
    manifest = json.loads(sh(REPO, f"cat {dump}/manifest.json"))
    return {f"{t['schema']}.{t['name']}": t["rows"] for t in manifest["tables"]}


@pytest.fixture(scope="module")
def workload(db_host: DbHost, ca_file: Path, secret: Callable[[str], str]) -> int:
    """app holds the sample workload and the newest dump has it: the number of jobs rows."""
    exists = psql_db1("SELECT to_regclass('public.jobs') IS NOT NULL", DATABASE) == "t"
    if not exists or psql_db1("SELECT count(*) FROM jobs", DATABASE) == "0":
        dsn = conninfo(db_host, "app_migration", ca_file)
        env = {**os.environ, "PGPASSWORD": secret(ROLE_SECRETS["app_migration"])}
        tool = Path(sys.executable).parent / "pgstack-drill"
        run = subprocess.run(
            [str(tool), "workload", "--dbname", dsn, "--size-mb", str(WORKLOAD_MB), "--seed", "1"],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        print(run.stdout.strip())
    rows = int(psql_db1("SELECT count(*) FROM jobs", DATABASE))
    if manifest_rows(newest_dump()).get("public.jobs") != rows:
        sh(REPO, "systemctl start pgstack-pg-dump.service", timeout=900)
    assert manifest_rows(newest_dump())["public.jobs"] == rows
    return rows


def run_drill(ansible_playbook: Playbook, fetch_dir: Path, *extra: str) -> tuple[int, str]:
    result = ansible_playbook(
        "-e", f"restore_drill_fetch_dir={fetch_dir}", *extra, playbook=PLAYBOOK
    )
    return result.returncode, result.stdout + result.stderr


def reports(fetch_dir: Path, kind: str) -> list[dict[str, Any]]:
    found = sorted(fetch_dir.rglob(f"*-{kind}.json"))
    assert found, f"no {kind} report fetched into {fetch_dir}: {sorted(fetch_dir.rglob('*'))}"
    return [json.loads(p.read_text()) for p in found]


def scratch_leftovers() -> str:
    """Scratch directories, sockets or a postmaster a drill left behind on backup1."""
    return sh(
        REPO,
        f"ls -1A {SCRATCH} | grep -v '^.pgstack-drill.lock$';"
        " ls -d /tmp/pgstack-drill-run-* 2>/dev/null;"
        " pgrep -a -f '[p]ostgres.*pgstack-drill'; true",
    ).strip()


@pytest.mark.release
def test_logical_and_pitr_drills_pass_with_rto_rpo_and_phases(
    workload: int, ansible_playbook: Playbook, tmp_path: Path
) -> None:
    code, output = run_drill(ansible_playbook, tmp_path, "-e", "restore_drill_kind=all")
    assert code == 0, output[-4000:]

    drilled = {report["database"]: report for report in reports(tmp_path, "logical")}
    assert sorted(drilled) == sorted(DRILLED), drilled.keys()
    assert all(report["result"] == "passed" for report in drilled.values()), drilled
    logical = drilled[DATABASE]
    assert logical["cluster"] == DB
    assert 0 < logical["rto_seconds"] < RTO_OBJECTIVE
    phases = [p["name"] for p in logical["phases"]]
    assert {"fetch", "data", "verify"} <= set(phases), phases
    tables = {t["table"]: t for t in logical["verification"]["tables"]}
    assert tables["public.jobs"]["rows"] == workload
    assert all(t["ok"] for t in tables.values()), tables
    assert logical["source"]["size_bytes"] > 10 * 1024 * 1024

    (pitr,) = reports(tmp_path, "pitr")
    assert pitr["result"] == "passed", pitr
    assert 0 < pitr["rto_seconds"] < RTO_OBJECTIVE
    # Measured from the heartbeat db1 writes every second.
    assert pitr["rpo_seconds"] is not None, pitr
    assert 0 <= pitr["rpo_seconds"] < RPO_OBJECTIVE, pitr
    assert {"restore", "recover", "verify"} <= {p["name"] for p in pitr["phases"]}
    for kind, count in (("logical", len(DRILLED)), ("pitr", 1)):
        suffixes = sorted(p.suffix for p in tmp_path.rglob(f"*-{kind}.*"))
        assert suffixes == sorted([".html", ".json", ".md"] * count), suffixes
    print(
        f"logical RTO {logical['rto_seconds']} s, pitr RTO {pitr['rto_seconds']} s, "
        f"RPO {pitr['rpo_seconds']} s"
    )


@pytest.mark.release
def test_drill_status_reaches_prometheus_and_the_dashboards(
    workload: int, ansible_playbook: Playbook, tmp_path: Path
) -> None:
    code, output = run_drill(
        ansible_playbook, tmp_path, "-e", "restore_drill_kind=logical",
        "-e", f"restore_drill_database={DATABASE}",
    )  # fmt: skip
    assert code == 0, output[-4000:]
    (report,) = reports(tmp_path, "logical")
    finished = calendar.timegm(time.strptime(report["finished_at"], "%Y-%m-%dT%H:%M:%SZ"))

    def scraped() -> bool:
        query = (
            "pgstack_drill_last_success_timestamp_seconds"
            f'{{cluster="{DB}",drill="logical",database="{DATABASE}"}}'
        )
        result = prometheus(f"/api/v1/query?query={query}")["result"]
        return bool(result) and float(result[0]["value"][1]) >= finished

    wait_for("the drill's success in Prometheus", scraped, 90, every=5)
    queries = [q for q in panel_queries() if q.needs_a_drill]
    assert queries
    failing = without_series(queries)
    assert not failing, "drill panel queries without a series on the lab:\n" + "\n".join(
        f"{q.key}: {count}: {q.expr}" for q, count in failing.items()
    )


def test_pitr_to_the_pre_migration_restore_point_brings_a_dropped_table_back(
    ansible_playbook: Playbook, tmp_path: Path
) -> None:
    table = f"e2e_dropped_{uuid.uuid4().hex[:8]}"
    label = f"before-{table.replace('_', '-')}"
    rows = "SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 500) AS g"
    psql_db1(f"CREATE TABLE {table} AS {rows}", DATABASE)
    migration = ansible_playbook("-e", f"label={label}", playbook="playbooks/pre_migration.yml")
    assert migration.returncode == 0, (migration.stdout + migration.stderr)[-3000:]
    psql_db1(f"DROP TABLE {table}", DATABASE)
    switch_wal()  # the drop is archived too: recovery must stop before it, at the restore point

    code, output = run_drill(
        ansible_playbook,
        tmp_path,
        "-e", "restore_drill_kind=pitr",
        "-e", f"restore_drill_target_name={label}",
        "-e", json.dumps({
            "restore_drill_expect_tables": [f"{DATABASE}:public.{table}"],
            "restore_drill_checks": [f"{DATABASE}:SELECT count(*) = 500 FROM public.{table}"],
        }),
    )  # fmt: skip
    assert code == 0, output[-4000:]
    (pitr,) = reports(tmp_path, "pitr")
    assert pitr["result"] == "passed", pitr
    assert pitr["source"]["target"] == f"name {label}", pitr["source"]
    expected = {"table": f"{DATABASE}:public.{table}", "rows": 500, "ok": True}
    assert pitr["verification"]["tables"] == [expected], pitr["verification"]
    assert all(c["ok"] for c in pitr["verification"]["checks"]), pitr["verification"]
    sh(REPO, f"rm -rf {DUMPS}/*-{label}")


def test_pitr_after_an_archive_outage_reaches_the_end_of_the_archive(
    ansible_playbook: Playbook, tmp_path: Path
) -> None:
    table = f"e2e_outage_{uuid.uuid4().hex[:8]}"
    psql_db1(f"CREATE TABLE {table} (n int, at timestamptz DEFAULT clock_timestamp())", DATABASE)
    rule = ["INPUT", "-p", "tcp", "--dport", "8432", "-j", "REJECT", "--reject-with", "tcp-reset"]
    netns_iptables(REPO, "-I", *rule)
    try:
        for n in range(1, 4):  # three segments written and switched while archiving fails
            psql_db1(f"INSERT INTO {table} (n) VALUES ({n})", DATABASE)
            switch_wal()
            time.sleep(3)
        # archive-push retries the repository before it gives up: wait for a failed attempt.
        wait_for(
            "a failed archive attempt during the outage",
            lambda: int(psql_db1("SELECT failed_count FROM pg_stat_archiver")) > 0,
            180,
            every=3,
        )
    finally:
        netns_iptables(REPO, "-D", *rule)
    psql_db1(f"INSERT INTO {table} (n) VALUES (4)", DATABASE)
    last = switch_wal()
    wait_for(
        "the archive to catch up",
        lambda: psql_db1(f"SELECT last_archived_wal >= '{last}' FROM pg_stat_archiver") == "t",
        240,
        every=2,
    )
    check = f"{DATABASE}:SELECT array_agg(n ORDER BY n) = '{{1,2,3,4}}' FROM public.{table}"
    code, output = run_drill(
        ansible_playbook,
        tmp_path,
        "-e", "restore_drill_kind=pitr",
        "-e", json.dumps({"restore_drill_checks": [check]}),
    )  # fmt: skip
    assert code == 0, output[-4000:]
    (pitr,) = reports(tmp_path, "pitr")
    assert pitr["result"] == "passed", pitr
    assert pitr["rpo_seconds"] is not None, pitr
    assert pitr["rpo_seconds"] < RPO_OBJECTIVE, pitr
    psql_db1(f"DROP TABLE {table}", DATABASE)


# --- the deployment: the heartbeat on db1, the timer, the first drills and the runner on backup1

HEARTBEAT_PASSFILE = "/etc/pgstack/heartbeat.pgpass"
# Tables of the postgres database (where the heartbeat is) the heartbeat role must not touch.
OTHER_TABLE = "pgstack_e2e_not_the_heartbeats"
CREATED_TABLE = "pgstack_e2e_created_by_the_heartbeat"


def test_the_heartbeat_runs_and_its_row_advances_every_second() -> None:
    sh(DB, "systemctl is-active pgstack-heartbeat.service")
    beat = "SELECT extract(epoch FROM max(beat_at)) FROM pgstack_heartbeat"
    beats = [float(b) for b in psql_db1(f"{beat}; SELECT pg_sleep(3); {beat}").split()]
    assert len(beats) == 2, beats
    assert beats[1] - beats[0] >= 2, beats


@pytest.fixture
def another_table() -> Iterator[str]:
    """A table in the heartbeat's database that is not the heartbeat's, with a row; dropped after
    with whatever the heartbeat role may have created."""
    psql_db1(f"CREATE TABLE IF NOT EXISTS {OTHER_TABLE} AS SELECT 1 AS secret")
    yield OTHER_TABLE
    psql_db1(f"DROP TABLE IF EXISTS {OTHER_TABLE}, {CREATED_TABLE}")


@pytest.mark.release
@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("UPDATE pgstack_heartbeat SET beat_at = clock_timestamp()", True),
        (f"CREATE TABLE {CREATED_TABLE} (n int)", False),
        (f"SELECT * FROM {OTHER_TABLE}", False),
    ],
    ids=["write-its-row", "create-a-table", "read-another-table"],
)
def test_the_heartbeat_role_writes_its_row_and_nothing_else(
    db_host: DbHost, another_table: str, statement: str, allowed: bool
) -> None:
    """As the heartbeat service connects: on db1, over TLS by name, with its passfile."""
    dsn = conninfo(db_host, "pgstack_heartbeat", Path("/etc/pgstack/tls/ca.crt"), dbname="postgres")
    run = lab_ssh(
        DB,
        f"PGPASSFILE={HEARTBEAT_PASSFILE} psql -XAtq {shlex.quote(dsn)}"
        f" --command={shlex.quote(statement)}",
    )
    if allowed:
        assert run.returncode == 0, run.stderr
    else:
        assert run.returncode != 0, run.stdout
        assert "permission denied" in run.stderr, run.stderr


def test_the_backup_host_has_no_cluster_of_its_own() -> None:
    """The drills' server binaries are installed there, but no cluster runs or waits to start."""
    assert sh(REPO, "pg_lsclusters --no-header").strip() == ""


def test_the_drill_timer_is_active_on_the_quarterly_schedule() -> None:
    timer = sh(
        REPO,
        "systemctl show pgstack-restore-drill.timer --property=ActiveState,UnitFileState"
        " --property=TimersCalendar",
    )
    assert "ActiveState=active" in timer, timer
    assert "UnitFileState=enabled" in timer, timer
    assert f"OnCalendar={SCHEDULE} ;" in timer, timer


@pytest.mark.parametrize("drill", [*(f"logical-{d}" for d in DRILLED), "pitr"])
def test_the_converge_took_the_first_drills_and_they_passed(drill: str) -> None:
    """Every drill of the lab has a status file whose last success is a pass measured against the
    objectives (a later failed attempt keeps it: the last success stays the last success)."""
    status = json.loads(sh(REPO, f"cat {STATUS}/drill-{DB}-{drill}.json"))
    assert status["version"] == 1, status
    assert status["last_success"]["result"] == "passed", status
    assert status["objectives"]["rto_seconds"] == RTO_OBJECTIVE, status
    assert status["objectives"]["rpo_seconds"] == RPO_OBJECTIVE, status


def test_the_timers_service_runs_every_drill_and_they_pass() -> None:
    """What the timer starts: the runner's `all`, one logical drill per database and the PITR
    drill, each summarised in the journal."""
    unit = "pgstack-restore-drill.service"
    sh(REPO, f"systemctl start {unit}", timeout=900)
    invocation = sh(REPO, f"systemctl show --property=InvocationID --value {unit}").strip()
    assert invocation
    journal = sh(REPO, f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={invocation}")
    summary = f"pgstack-restore-drill: {len(DRILLED) + 1} drills of {DB}, 0 did not pass:"
    assert summary in journal, journal[-3000:]
    print(journal.split(summary, 1)[1].strip())


# --- failures: the deployed tool on backup1, its status and reports in a directory of their own


@pytest.fixture
def workdir() -> Iterator[str]:
    """A directory on backup1 for a failing drill's status and reports (not the lab's own)."""
    path = sh(REPO, "mktemp -d").strip()
    yield path
    sh(REPO, f"rm -rf {path}")


def drill_on_backup1(args: str, workdir: str) -> subprocess.CompletedProcess[str]:
    return lab_ssh(
        REPO,
        f"pgstack-drill {args} --cluster {DB} --no-progress"
        f" --status-dir {workdir} --reports-dir {workdir}",
        timeout=900,
    )


@contextlib.contextmanager
def damaged_dump() -> Iterator[str]:
    """A copy of app's newest dump whose manifest counts one jobs row too many, under an old stamp
    (never the newest: a drill picks it only by its label, which this yields); removed after."""
    label = f"e2e-damaged-{uuid.uuid4().hex[:8]}"
    copy = f"{DUMPS}/20000101T000000Z-{label}"
    sh(REPO, f"cp -a {newest_dump()} {copy}")
    try:
        program = (
            "import json, sys; p = sys.argv[1]; m = json.load(open(p))\n"
            "for t in m['tables']:\n"
            "    if (t['schema'], t['name']) == ('public', 'jobs'): t['rows'] += 1\n"
            "json.dump(m, open(p, 'w'))\n"
        )
        sh(REPO, f"python3 -c {shlex.quote(program)} {copy}/manifest.json")
        yield label
    finally:
        sh(REPO, f"rm -rf {copy}")


def failed_drill_alerts() -> dict[str, str]:
    """{database: alertstate} of Prometheus' RestoreDrillFailed alerts of db1's logical drills."""
    query = quote(f'ALERTS{{alertname="RestoreDrillFailed",cluster="{DB}",drill="logical"}}')
    result = prometheus(f"/api/v1/query?query={query}")["result"]
    return {r["metric"].get("database", ""): r["metric"]["alertstate"] for r in result}


def test_a_failed_drill_of_one_database_stays_failed_when_the_next_one_passes(
    workload: int,
) -> None:
    """The lab's own drills (status files, exporter, Prometheus): app's drill of a damaged dump
    fails naming the table and leaves no scratch state, then billing's passes, as the runner's
    `all` runs them one after the other."""
    other = next(database for database in DRILLED if database != DATABASE)
    status_of = "cat /var/lib/pgstack/status/drill-{}-logical-{}.json"
    try:
        with damaged_dump() as label:
            failed = lab_ssh(
                REPO, f"pgstack-restore-drill logical {DATABASE} --dump {label} --no-progress",
                timeout=900,
            )  # fmt: skip
            assert failed.returncode == 1, failed.stdout + failed.stderr
            assert "public.jobs" in failed.stderr, failed.stderr
            assert "manifest" in failed.stderr, failed.stderr
            assert scratch_leftovers() == ""
        error = json.loads(sh(REPO, status_of.format(DB, DATABASE)))["last_attempt"]["error"]
        assert "public.jobs" in error, error
        passed = lab_ssh(REPO, f"pgstack-restore-drill logical {other} --no-progress", timeout=900)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        results = {
            database: json.loads(sh(REPO, status_of.format(DB, database)))["last_attempt"]["result"]
            for database in DRILLED
        }
        assert results == {DATABASE: "failed", other: "passed"}, results
        wait_for(
            f"RestoreDrillFailed firing for {DATABASE}",
            lambda: failed_drill_alerts().get(DATABASE) == "firing",
            120,
            every=5,
        )
        assert other not in failed_drill_alerts()
    finally:
        # The lab's drill of app back to its newest dump, passing.
        again = lab_ssh(
            REPO, f"pgstack-restore-drill logical {DATABASE} --no-progress", timeout=900
        )
    assert again.returncode == 0, again.stdout + again.stderr
    wait_for(
        "RestoreDrillFailed resolved", lambda: DATABASE not in failed_drill_alerts(), 120, every=5
    )


def test_no_dump_at_all_is_a_precondition_error(workdir: str) -> None:
    run = drill_on_backup1("logical --database nosuchdatabase", workdir)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "nosuchdatabase" in run.stderr, run.stderr
    assert scratch_leftovers() == ""


def test_a_drill_stopped_mid_restore_leaves_no_scratch_state(workload: int, workdir: str) -> None:
    unit = f"pgstack-e2e-drill-{uuid.uuid4().hex[:8]}"
    try:
        sh(
            REPO,
            f"systemd-run --unit {unit} --property=KillMode=mixed pgstack-drill logical"
            f" --cluster {DB} --database {DATABASE} --no-progress"
            f" --status-dir {workdir} --reports-dir {workdir}",
        )
        wait_for(
            "the drill's scratch cluster",
            lambda: "pgstack-drill-logical" in sh(REPO, f"ls -1A {SCRATCH}"),
            120,
            every=0.5,
        )
        # Inside the restore: the whole logical drill of the lab's database takes about 3 s, and
        # a stop after its body ends is no longer an interrupted drill (it records its verdict).
        time.sleep(0.5)
        sh(REPO, f"systemctl stop {unit}", timeout=120)
        status = json.loads(sh(REPO, f"cat {workdir}/drill-{DB}-logical-{DATABASE}.json"))
        assert status["last_attempt"]["result"] == "error", status
        assert "signal 15" in status["last_attempt"]["error"], status
        assert scratch_leftovers() == ""
    finally:
        lab_ssh(REPO, f"systemctl stop {unit}; systemctl reset-failed {unit}")

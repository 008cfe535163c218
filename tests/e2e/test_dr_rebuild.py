"""docs/runbooks/dr-rebuild.md runs as written on the lab: db1 is lost and rebuilt from backup1.

A table with rows is written and archived; then db1's machine is killed and removed, as a host that
lost its power (`pgstack-lab down --kill db1`: no shutdown, so what was not archived is lost), an
empty one is brought up in its place (`pgstack-lab up db1`), and the runbook's blocks run as
written (procedures.py), `<disaster time>` being the moment the machine was killed. The table is
back with its rows, the rebuild drill passed with RTO and RPO in its fetched report, both lab
applications' URLs work again from app1, and the new full backup starts on the new timeline. On a
live db1 the playbook refuses before anything changes. The rebuild runs last in the e2e suite
(conftest.py): it leaves the lab converged, but on a new host and timeline.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import AnsiblePlaybook
from helpers import (
    DATABASE,
    as_app,
    assert_failed_before_any_change,
    failure_messages,
    parse_recap,
    pgstack_lab,
    psql_db1,
    sh,
    switch_wal,
    wait_for,
)
from procedures import Runner, ssh_command

from runbooks import REPO_ROOT, Block, sections

pytestmark = pytest.mark.e2e

RUNBOOK = REPO_ROOT / "docs/runbooks/dr-rebuild.md"
REBUILD, AFTER = "3.", "4."
PLAYBOOK = "playbooks/dr_rebuild.yml"
DB = "db1"
REPO = "backup1"
STANZA = "main"
ROWS = 1000
# restore_drill_fetch_dir's default in playbooks/dr_rebuild.yml, which the runbook's command keeps.
FETCH_DIR = Path("/var/tmp/pgstack-drill-reports") / REPO  # noqa: S108
RTO_OBJECTIVE = 3600
RPO_OBJECTIVE = 300
# The lab's applications (inventory/lab/group_vars/app/main.yml).
APPS = ("app", "billing")


def blocks(prefix: str) -> list[Block]:
    [found] = [found for name, found in sections(RUNBOOK).items() if name.startswith(prefix)]
    return found


def test_the_module_runs_every_block_of_the_runbook() -> None:
    """The sections with blocks are the two this module runs."""
    names = [name for name in sections(RUNBOOK) if name]
    assert [name.split()[0] for name in names] == [REBUILD, AFTER]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def archived(segment: str) -> bool:
    return psql_db1(f"SELECT last_archived_wal >= '{segment}' FROM pg_stat_archiver") == "t"


def timeline() -> int:
    return int(psql_db1("SELECT timeline_id FROM pg_control_checkpoint()"))


def fetched_rebuild_reports() -> set[Path]:
    return set(FETCH_DIR.glob("*-rebuild.json")) if FETCH_DIR.is_dir() else set()


def test_the_playbook_refuses_a_live_database_host_before_any_change(
    ansible_playbook: AnsiblePlaybook,
) -> None:
    result = ansible_playbook(playbook=PLAYBOOK)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    failure = failure_messages(output)
    assert_failed_before_any_change(failure, parse_recap(result.stdout), output, "is not lost")
    assert "systemctl stop postgresql@" in failure
    # No host got past the preconditions.
    assert "PLAY [pki |" not in output, output[-3000:]


def test_a_bad_disaster_time_is_refused_before_any_change(
    ansible_playbook: AnsiblePlaybook,
) -> None:
    result = ansible_playbook("-e", "dr_rebuild_disaster_time=yesterday", playbook=PLAYBOOK)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert_failed_before_any_change(
        failure_messages(output), parse_recap(result.stdout), output, "dr_rebuild_disaster_time"
    )


@pytest.fixture
def lost_table() -> Iterator[str]:
    """A table with ROWS rows, archived, on the database host about to be lost."""
    table = f"e2e_rebuild_{uuid.uuid4().hex[:8]}"
    psql_db1(
        f"SET ROLE app_migration; CREATE TABLE public.{table} AS"
        f" SELECT g AS id, md5(g::text) AS note FROM generate_series(1, {ROWS}) AS g",
        dbname=DATABASE,
    )
    segment = switch_wal()
    wait_for(f"WAL segment {segment} archived", lambda: archived(segment), timeout=120, every=2)
    try:
        yield table
    finally:
        psql_db1(f"SET ROLE app_migration; DROP TABLE IF EXISTS public.{table}", dbname=DATABASE)


@pytest.mark.usefixtures("clients_on_app_host")
def test_a_lost_database_host_is_rebuilt_from_the_backup_host(
    lost_table: str, tmp_path: Path
) -> None:
    before = timeline()
    known = fetched_rebuild_reports()
    [playbook] = blocks(REBUILD)
    assert playbook.on_controller, playbook
    began = time.monotonic()
    disaster = utc_now()
    pgstack_lab("down", "--kill", DB)
    pgstack_lab("up", DB)
    lost = time.monotonic() - began
    values = {"<env>": "lab", "<disaster time>": disaster}
    # A whole site converge on a new host: well over the default bound of a block.
    runner = Runner(RUNBOOK, values, ssh_command(tmp_path), timeout=2400)
    started = time.monotonic()
    runner.run(playbook)
    rebuilt = time.monotonic() - started

    [new] = fetched_rebuild_reports() - known
    report = json.loads(new.read_text())
    assert report["result"] == "passed", report.get("error")
    assert [phase["name"] for phase in report["phases"]] == [
        "provision",
        "restore",
        "converge",
        "verify",
    ]
    assert 0 < report["rto_seconds"] < RTO_OBJECTIVE
    assert report["rpo_seconds"] is not None
    assert 0 <= report["rpo_seconds"] < RPO_OBJECTIVE
    assert report["source"]["disaster_time"] == disaster
    assert report["source"]["in_recovery"] is False
    print(
        f"rebuild: machine lost and back {lost:.0f} s, playbook {rebuilt:.0f} s; "
        f"RTO {report['rto_seconds']:.1f} s, RPO {report['rpo_seconds']:.1f} s, phases "
        + ", ".join(f"{p['name']} {p['duration_seconds']:.0f} s" for p in report["phases"])
    )

    assert psql_db1(f"SELECT count(*) FROM public.{lost_table}", dbname=DATABASE) == str(ROWS)
    after = timeline()
    assert after > before
    # The heartbeat runs again on the rebuilt host.
    sh(DB, "systemctl is-active pgstack-heartbeat.service")
    for app in APPS:
        for variable in ("DATABASE_URL", "DIRECT_DATABASE_URL"):
            result = as_app(app, f'psql -XAt "${variable}" -c "SELECT current_database()"')
            assert result.returncode == 0, f"{app} {variable}: {result.stderr}"
            assert result.stdout.strip() == app

    checks, full_backup = blocks(AFTER)
    answers = [line for line in runner.run(checks).splitlines() if not line.startswith("$ ")]
    assert answers == ["f", str(after)]
    runner.run(full_backup)
    info = json.loads(sh(REPO, f"sudo -u postgres pgbackrest --stanza={STANZA} --output=json info"))
    newest = [backup for backup in info[0]["backup"] if backup["type"] == "full"][-1]
    assert int(str(newest["archive"]["start"])[:8], 16) == after, newest

"""A backup host and a database host on two Debian releases are refused before any change.

The real input checks of the pgbackrest, pg_dump and restore_drill roles (their ``assert`` entry
points) run in a real ``ansible-playbook`` on this machine, over pairs of inventory hosts that are
all this machine (``ansible_connection: local``). Only the facts the preflight platform step reads
are made up, one release per host (``set_fact`` with ``cacheable``: they land in ``ansible_facts``
as gathered facts do); from there everything is the roles' own: the platform step loads each host's
``roles/preflight/vars/Debian-<major>.yml``, and each role compares its host's
``__preflight_release`` with the other host's. The pgbackrest checks are included with the very
task ``validate.yml`` uses, so the case also proves that the include loads the peer's release
variables before the rule reads them. The expected versions come from the release variables
(tests/release.py), never written out.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
import yaml

from localhost_play import REPO_ROOT, run_plays
from release import all_facts

PASSED = "pgstack-test: passed"
PREFLIGHT_VARS = REPO_ROOT / "roles/preflight/vars"
RELEASE_VARS = sorted(PREFLIGHT_VARS.glob("Debian-*.yml"))
# The Debian major of each release (the fact the platform step loads its file by), by codename.
CODENAME_MAJOR = {
    yaml.safe_load(path.read_text(encoding="utf-8"))["__preflight_release"]["codename"]: (
        path.stem.removeprefix("Debian-")
    )
    for path in RELEASE_VARS
}
# The two releases by codename, older first; each case names the release of each of its hosts.
OLD, NEW = sorted(CODENAME_MAJOR, key=lambda codename: int(CODENAME_MAJOR[codename]))

# case: (role checked, release of the backup host, release of the database host, hosts in the play)
CASES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "pgbackrest-mixed": ("pgbackrest", OLD, NEW, ("backup", "db")),
    "pgbackrest-mixed-the-other-way": ("pgbackrest", NEW, OLD, ("backup", "db")),
    "pgbackrest-same-old": ("pgbackrest", OLD, OLD, ("backup", "db")),
    "pgbackrest-same-new": ("pgbackrest", NEW, NEW, ("backup", "db")),
    "pgbackrest-peer-left-out": ("pgbackrest", NEW, NEW, ("db",)),
    "pg_dump-older-than-the-server": ("pg_dump", OLD, NEW, ("backup", "db")),
    "pg_dump-newer-than-the-server": ("pg_dump", NEW, OLD, ("backup", "db")),
    "pg_dump-database-host-not-checked": ("pg_dump", OLD, NEW, ("backup",)),
    "restore_drill-mixed": ("restore_drill", NEW, OLD, ("backup", "db")),
    "restore_drill-same": ("restore_drill", OLD, OLD, ("backup", "db")),
}
SECRET = "pgstack-test-0123456789-abcdefghij"


def host(case: str, side: str) -> str:
    return f"{case}-{side}"


def validate_include(role: str) -> dict[str, Any]:
    """The task of playbooks/validate.yml that checks role, as written there."""
    (play,) = yaml.safe_load((REPO_ROOT / "playbooks/validate.yml").read_text(encoding="utf-8"))
    (task,) = [
        t for t in play["tasks"] if t.get("ansible.builtin.include_role", {}).get("name") == role
    ]
    return dict(task)


def inventory() -> dict[str, Any]:
    groups: dict[str, Any] = {"backup": {"hosts": {}}, "postgres": {"hosts": {}}}
    for case, (_, backup_release, db_release, _) in CASES.items():
        for side, group, release in (
            ("backup", "backup", backup_release),
            ("db", "postgres", db_release),
        ):
            name = host(case, side)
            facts = {"test_major": CODENAME_MAJOR[release]}
            groups[group]["hosts"][name] = facts
            groups[f"{case}_{group}"] = {"hosts": {name: None}}
    return {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
            },
            "children": groups,
        }
    }


def case_play(case: str) -> dict[str, Any]:
    role, _, _, sides = CASES[case]
    group_vars = {
        "pgbackrest_repo_group": f"{case}_backup",
        "pgbackrest_pg_group": f"{case}_postgres",
        "pg_dump_pg_group": f"{case}_postgres",
        "pg_dump_databases": ["app"],
        "pg_dump_password": SECRET,
        "restore_drill_pg_group": f"{case}_postgres",
        "restore_drill_backup_group": f"{case}_backup",
        "restore_drill_heartbeat_password": SECRET,
    }
    check = validate_include(role)
    check["name"] = f"check {case}"
    block: list[dict[str, Any]] = []
    if role != "pgbackrest" and len(sides) == 2:
        # As validate.yml's first checks (pki, on every host) do before the pg_dump and
        # restore_drill checks, which run on fewer hosts: every host's release variables.
        block.append({
            "name": f"platform {case}",
            "ansible.builtin.import_role": {"name": "preflight", "tasks_from": "platform"},
        })  # fmt: skip
    block += [check, {"name": f"outcome {case}", "ansible.builtin.debug": {"msg": [PASSED]}}]
    return {
        "name": f"case {case}",
        "hosts": ":".join(host(case, side) for side in sides),
        "gather_facts": False,
        "vars": group_vars,
        "tasks": [
            {
                "block": block,
                "rescue": [
                    {
                        "name": f"outcome {case}",
                        "ansible.builtin.debug": {
                            "msg": "{{ [ansible_failed_task.name, ansible_failed_result.msg] }}"
                        },
                    }
                ],
            }
        ],
    }


FACTS_PLAY = {
    "name": "the made-up facts of every host: its release and a name; the layout",
    "hosts": "all",
    "gather_facts": False,
    "tasks": [
        {
            "name": "Pretend the release of each host",
            "ansible.builtin.set_fact": {
                "distribution": "Debian",
                "distribution_major_version": "{{ test_major }}",
                "fqdn": "{{ inventory_hostname }}.pgstack.test",
                "cacheable": True,
            },
        },
        # The layout validate.yml's first task loads, which its checks of each role read
        # (__preflight_role_hosts), without that task's rules: these cases are many pairs, so
        # group postgres has many hosts.
        *(
            {
                "name": f"Load roles/preflight/vars/{name}",
                "ansible.builtin.include_vars": {"file": str(PREFLIGHT_VARS / name)},
            }
            for name in ("layout.yml", "cluster.yml")
        ),
    ],
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[str]]]:
    """{case: {host: [PASSED] or [failed task, its message]}}"""
    workdir = tmp_path_factory.mktemp("release_mix")
    hosts_file = workdir / "hosts.yml"
    hosts_file.write_text(yaml.safe_dump(inventory(), sort_keys=False), encoding="utf-8")
    plays = [FACTS_PLAY, *(case_play(case) for case in CASES)]
    result = run_plays(plays, workdir / "cases.yml", inventory=hosts_file)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found: dict[str, dict[str, list[str]]] = {}
    for play in json.loads(result.stdout)["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            if name.startswith("outcome "):
                for hostname, outcome in task["hosts"].items():
                    if "msg" in outcome:
                        case = name.removeprefix("outcome ")
                        found.setdefault(case, {})[hostname] = outcome["msg"]
    assert sorted(found) == sorted(CASES)
    return found


def facts(codename: str) -> dict[str, str]:
    return all_facts()[codename]


def refused(case: str, rule_task: str, message: str) -> dict[str, list[str]]:
    return {host(case, "backup"): [rule_task, message], host(case, "db"): [rule_task, message]}


def test_a_mixed_pair_is_refused_by_the_pgbackrest_checks_on_both_hosts(
    outcomes: dict[str, dict[str, list[str]]],
) -> None:
    for case in ("pgbackrest-mixed", "pgbackrest-mixed-the-other-way"):
        _, backup, db, _ = CASES[case]
        message = (
            f"{host(case, 'backup')} runs pgBackRest {facts(backup)['pgbackrest']}"
            f" (Debian {backup}), {host(case, 'db')} runs pgBackRest {facts(db)['pgbackrest']}"
            f" (Debian {db}): the repository and"
            " database hosts must run the same pgBackRest version; put them on the same Debian"
            " release."
        )
        assert outcomes[case] == refused(case, "Check the pgbackrest input rules", message)


def test_a_pair_on_one_release_passes_the_pgbackrest_checks(
    outcomes: dict[str, dict[str, list[str]]],
) -> None:
    for case in ("pgbackrest-same-old", "pgbackrest-same-new"):
        assert outcomes[case] == {host(case, "backup"): [PASSED], host(case, "db"): [PASSED]}


def test_a_run_without_the_other_host_is_refused(
    outcomes: dict[str, dict[str, list[str]]],
) -> None:
    case = "pgbackrest-peer-left-out"
    backup, db = host(case, "backup"), host(case, "db")
    assert outcomes[case] == {
        db: [
            "Check the pgbackrest input rules",
            f"{backup}, of stanza main (repository host {backup}, database hosts {db}), not in"
            f" this run: its pgBackRest version cannot be compared with {db}'s, and all must be"
            f" the same. Run the play on all of them (a --limit must include {backup} and {db}).",
        ]
    }


def test_pg_dump_older_than_the_server_is_refused(
    outcomes: dict[str, dict[str, list[str]]],
) -> None:
    case = "pg_dump-older-than-the-server"
    _, backup, db, _ = CASES[case]
    assert outcomes[case] == {
        host(case, "backup"): [
            "Check the pg_dump input rules",
            f"{host(case, 'backup')} has the pg_dump of PostgreSQL {facts(backup)['postgresql']}"
            f" (Debian {backup}) and {host(case, 'db')} runs PostgreSQL"
            f" {facts(db)['postgresql']} (Debian {db}): pg_dump must not be older than the server"
            " it dumps; put the backup host on the database host's Debian release.",
        ],
        host(case, "db"): [PASSED],
    }


def test_pg_dump_newer_than_the_server_passes_its_own_check(
    outcomes: dict[str, dict[str, list[str]]],
) -> None:
    """Its own rule is about pg_dump only; the pair is still refused (pgbackrest, restore_drill)."""
    case = "pg_dump-newer-than-the-server"
    assert outcomes[case] == {host(case, "backup"): [PASSED], host(case, "db"): [PASSED]}


def test_pg_dump_skips_the_comparison_when_the_run_has_not_checked_the_database_host(
    outcomes: dict[str, dict[str, list[str]]],
) -> None:
    """A play on the backup host alone: nothing to compare with (documented in the rule)."""
    case = "pg_dump-database-host-not-checked"
    assert outcomes[case] == {host(case, "backup"): [PASSED]}


def test_the_drills_refuse_a_database_of_another_major(
    outcomes: dict[str, dict[str, list[str]]],
) -> None:
    case = "restore_drill-mixed"
    _, backup, db, _ = CASES[case]
    assert outcomes[case] == {
        host(case, "backup"): [
            "Check the restore_drill input rules",
            f"{host(case, 'backup')} runs the drills with PostgreSQL {facts(backup)['postgresql']}"
            f" (Debian {backup}) and {host(case, 'db')} runs PostgreSQL {facts(db)['postgresql']}"
            f" (Debian {db}): the PITR drill restores the database's physical backup with the"
            " server binaries of its major, and the logical drill's checksums hold within one"
            " major; put the backup host on the database host's Debian release.",
        ],
        host(case, "db"): [PASSED],
    }
    same = "restore_drill-same"
    assert outcomes[same] == {host(same, "backup"): [PASSED], host(same, "db"): [PASSED]}


def test_the_cases_pair_two_releases_that_ship_different_pgbackrest_and_postgresql() -> None:
    """The refusals above are about two different releases, not one release twice."""
    assert len(RELEASE_VARS) == 2
    assert facts(OLD)["pgbackrest"] != facts(NEW)["pgbackrest"]
    assert facts(OLD)["postgresql"] != facts(NEW)["postgresql"]

"""The inventory's layout and the PostgreSQL cluster view (roles/preflight, tasks_from cluster), run
by the real ansible-playbook on this machine over throwaway inventories whose hosts are all this
machine (``ansible_connection: local``).

Each case is a block that includes the entry point exactly as playbooks/validate.yml's first task
does and reports either the view every host got or the message it was refused with (a rescue).
One run per inventory: the one-host layout of the lab, two hosts in group postgres, and hosts that
need PostgreSQL without group postgres. The hosts each role is applied to are compared with
tests/layout.py, which reads the same roles/preflight/vars/layout.yml.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from layout import role_groups, role_hosts
from localhost_play import ANSIBLE_PLAYBOOK, REPO_ROOT, run_plays

# The lab's layout (inventory/lab/hosts.yml): PostgreSQL, PgBouncer and Redis on db1.
ONE_HOST = {
    "postgres": ["db1"],
    "pgbouncer": ["db1"],
    "redis": ["db1"],
    "backup": ["backup1"],
    "monitoring": ["mon1"],
    "grafana": ["mon1"],
    "app": ["app1"],
}
TWO_POSTGRES = {"postgres": ["db1", "db2"], "pgbouncer": ["db1"], "backup": ["backup1"]}
# The HA layout: a Patroni cluster of two members and a witness for etcd's majority.
HA = {"postgres": ["db1", "db2"], "etcd": ["db1", "db2", "witness"], "monitoring": ["mon1"]}
# The same with PgBouncer on each member, a backup host and an application host behind HAProxy.
HA_WHOLE = {
    **HA,
    "pgbouncer": ["db1", "db2"],
    "backup": ["backup1"],
    "app": ["app1"],
    "haproxy": ["db1", "db2", "witness", "app1"],
}
NO_POSTGRES = {"backup": ["backup1"], "redis": ["cache1"]}
NO_BACKUP = {"postgres": ["db1"], "pgbouncer": ["db1"]}

# The view as each host reports it.
VIEW = (
    "{{ {'members': __preflight_cluster_members, 'ha': __preflight_cluster_ha,"
    " 'role_hosts': __preflight_role_hosts} }}"
)

# inventory: its one case
CASES = {
    "one-host": "default",
    "two-postgres": "refused",
    "no-postgres": "refused",
    "no-backup": "refused",
    "ha": "default",
    "ha-whole": "default",
}
PASSED = "pgstack-test: passed"


def inventory(groups: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "children": {group: {"hosts": dict.fromkeys(hosts)} for group, hosts in groups.items()},
        }
    }


def case_tasks(case: str) -> dict[str, Any]:
    (include,) = [
        task
        for task in yaml.safe_load((REPO_ROOT / "playbooks/validate.yml").read_text())[0]["tasks"]
        if task.get("ansible.builtin.include_role", {}).get("tasks_from") == "cluster"
    ]
    block = [
        {**include, "name": f"check {case}"},
        {"name": f"outcome {case}", "ansible.builtin.debug": {"msg": [PASSED, VIEW]}},
    ]
    return {
        "name": f"case {case}",
        "block": block,
        "rescue": [
            {
                "name": f"outcome {case}",
                "ansible.builtin.debug": {"msg": "{{ [ansible_failed_result.msg] }}"},
            }
        ],
    }


def outcomes_of(report: str) -> dict[str, dict[str, list[Any]]]:
    """{case: {host: [PASSED, view] or [message]}}"""
    found: dict[str, dict[str, list[Any]]] = {}
    for play in json.loads(report)["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            if name.startswith("outcome "):
                for host, outcome in task["hosts"].items():
                    if "msg" in outcome:
                        found.setdefault(name.removeprefix("outcome "), {})[host] = outcome["msg"]
    return found


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    """{inventory: {case: {host: outcome}}}, one ansible-playbook run per inventory."""
    layouts = {
        "one-host": ONE_HOST,
        "two-postgres": TWO_POSTGRES,
        "no-postgres": NO_POSTGRES,
        "no-backup": NO_BACKUP,
        "ha": HA,
        "ha-whole": HA_WHOLE,
    }
    found = {}
    for name, groups in layouts.items():
        workdir: Path = tmp_path_factory.mktemp(name)
        hosts_file = workdir / "hosts.yml"
        hosts_file.write_text(yaml.safe_dump(inventory(groups)), encoding="utf-8")
        play = {
            "name": f"cluster cases: {name}",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [case_tasks(CASES[name])],
        }
        result = run_plays([play], workdir / "cases.yml", inventory=hosts_file)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        found[name] = outcomes_of(result.stdout)
        assert sorted(found[name]) == [CASES[name]]
    return found


def hosts_of(groups: dict[str, list[str]]) -> list[str]:
    return sorted({host for hosts in groups.values() for host in hosts})


def refused_everywhere(groups: dict[str, list[str]], message: str) -> dict[str, list[str]]:
    """Every host of the inventory refused with message."""
    return {host: [message] for host in hosts_of(groups)}


def views(
    outcomes: dict[str, dict[str, Any]], case: str, groups: dict[str, list[str]] = ONE_HOST
) -> list[dict[str, Any]]:
    """The view each host got in case, after checking every host passed."""
    assert sorted(outcomes[case]) == hosts_of(groups)
    passed = []
    for host, outcome in outcomes[case].items():
        assert outcome[0] == PASSED, (host, outcome)
        passed.append(outcome[1])
    return passed


def test_a_one_host_inventory_is_a_cluster_of_that_host(
    outcomes: dict[str, dict[str, dict[str, Any]]],
) -> None:
    for view in views(outcomes["one-host"], "default"):
        assert {key: value for key, value in view.items() if key != "role_hosts"} == {
            "members": ["db1"],
            "ha": False,
        }


def test_every_role_is_applied_to_the_hosts_of_its_groups(
    outcomes: dict[str, dict[str, dict[str, Any]]],
) -> None:
    """What the playbooks read equals what the tests read (tests/layout.py), host by host."""
    groups = {**ONE_HOST, "all": hosts_of(ONE_HOST)}
    expected = {role: role_hosts(role, groups) for role in role_groups()}
    for view in views(outcomes["one-host"], "default"):
        assert view["role_hosts"] == expected
    assert expected["exporter"] == ["backup1", "db1"]
    assert expected["pki"] == ["app1", "backup1", "db1", "mon1"]


def test_more_than_one_host_in_group_postgres_without_etcd_is_refused(
    outcomes: dict[str, dict[str, dict[str, Any]]],
) -> None:
    message = (
        "Group postgres has 2 hosts (db1, db2): a cluster of more than one host runs Patroni,"
        " which keeps the cluster's leader in etcd, and group etcd has no host. Put three hosts in"
        " group etcd (the database hosts and a witness), or one host in group postgres."
    )
    assert outcomes["two-postgres"]["refused"] == refused_everywhere(TWO_POSTGRES, message)


def test_more_than_one_host_in_group_postgres_with_etcd_is_a_patroni_cluster(
    outcomes: dict[str, dict[str, dict[str, Any]]],
) -> None:
    for view in views(outcomes["ha"], "default", HA):
        assert view["members"] == ["db1", "db2"]
        assert view["ha"] is True
        assert view["role_hosts"]["etcd"] == ["db1", "db2", "witness"]
        # No backup host: pgBackRest and the drills apply to no host, as tests/layout.py says.
        assert view["role_hosts"]["pgbackrest"] == view["role_hosts"]["restore_drill"] == []
        expected = {role: role_hosts(role, {**HA, "all": hosts_of(HA)}) for role in role_groups()}
        assert view["role_hosts"] == expected


def test_a_patroni_cluster_is_backed_up_and_served_like_one_host(
    outcomes: dict[str, dict[str, dict[str, Any]]],
) -> None:
    for view in views(outcomes["ha-whole"], "default", HA_WHOLE):
        assert view["ha"] is True
        # Every member pushes WAL to the repository and may become the primary.
        assert view["role_hosts"]["pgbackrest"] == ["backup1", "db1", "db2"]
        assert view["role_hosts"]["restore_drill"] == ["backup1", "db1", "db2"]
        assert view["role_hosts"]["app_env"] == ["app1"]
        layout = {**HA_WHOLE, "all": hosts_of(HA_WHOLE)}
        assert view["role_hosts"] == {role: role_hosts(role, layout) for role in role_groups()}


def test_roles_that_need_postgresql_need_group_postgres(
    outcomes: dict[str, dict[str, dict[str, Any]]],
) -> None:
    message = (
        "Group postgres has no host, but these hosts run roles that need the PostgreSQL server"
        " (pgbouncer, pgbackrest, pg_dump, restore_drill): backup1. Put the database host in"
        " group postgres."
    )
    assert outcomes["no-postgres"]["refused"] == refused_everywhere(NO_POSTGRES, message)


def test_a_single_database_server_needs_a_backup_host(
    outcomes: dict[str, dict[str, dict[str, Any]]],
) -> None:
    message = (
        "Group postgres has a host (db1) and group backup has none: pgstack archives the WAL and"
        " takes the base backups and dumps on a backup host, and runs the restore drills there."
        " Put one host in group backup."
    )
    assert outcomes["no-backup"]["refused"] == refused_everywhere(NO_BACKUP, message)


def test_dr_rebuild_refuses_a_cluster_before_it_reaches_a_host(tmp_path: Path) -> None:
    """playbooks/dr_rebuild.yml rebuilds a single database host: with a Patroni cluster in the
    inventory it stops in its first play, which reaches no host (every host here is an address
    nothing answers on, so a connection would show as unreachable)."""
    hosts = inventory(HA_WHOLE)
    hosts["all"]["vars"] = {"ansible_connection": "ssh", "ansible_host": "192.0.2.1"}
    hosts_file = tmp_path / "hosts.yml"
    hosts_file.write_text(yaml.safe_dump(hosts), encoding="utf-8")
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(hosts_file), "playbooks/dr_rebuild.yml"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
             "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
    )  # fmt: skip
    assert result.returncode != 0, result.stdout[-3000:]
    report = json.loads(result.stdout)
    assert [play["play"]["name"] for play in report["plays"]] == [
        "dr_rebuild | The layout, the start and the disaster time"
    ]
    stats = report["stats"]
    assert {host: s["unreachable"] + s["changed"] for host, s in stats.items()} == {"db1": 0}
    [task] = [t for t in report["plays"][0]["tasks"] if "msg" in t["hosts"]["db1"]]
    message = task["hosts"]["db1"]["msg"]
    assert "Group postgres has 2 hosts (db1, db2), a Patroni cluster" in message, message
    assert "docs/runbooks/ha-replace-member.md" in message, message

"""tests/layout.py: the hosts each role is applied to, as the tests read them from
roles/preflight/vars/layout.yml (tests/integration/preflight/test_cluster.py checks that the
playbooks' __preflight_role_hosts is the same)."""

from __future__ import annotations

from pathlib import Path

import yaml

from layout import REPO_ROOT, inventory_groups, role_groups, role_hosts

LAB = inventory_groups(REPO_ROOT / "inventory/lab/hosts.yml")


def test_the_lab_inventory_groups_in_inventory_order() -> None:
    assert LAB["all"] == ["db1", "backup1", "mon1", "app1"]
    assert LAB["postgres"] == ["db1"]
    assert LAB["grafana"] == ["mon1"]


def test_a_role_is_applied_to_the_hosts_of_its_groups() -> None:
    assert role_hosts("postgresql", LAB) == ["db1"]
    assert role_hosts("pgbackrest", LAB) == ["backup1", "db1"]
    assert role_hosts("exporter", LAB) == ["backup1", "db1"]
    assert role_hosts("app_env", LAB) == ["app1"]


def test_all_is_every_host() -> None:
    assert role_groups()["pki"] == ["all"]
    assert role_hosts("pki", LAB) == ["app1", "backup1", "db1", "mon1"]


def test_a_group_missing_from_the_inventory_has_no_host(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(yaml.safe_dump({"all": {"children": {"redis": {"hosts": {"cache1": None}}}}}))
    groups = inventory_groups(hosts)
    assert role_hosts("postgresql", groups) == []
    assert role_hosts("exporter", groups) == ["cache1"]


def test_a_group_holds_the_hosts_of_its_children(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(
        yaml.safe_dump({
            "all": {
                "hosts": {"lone": None},
                "children": {
                    "backup": {"children": {"backup_eu": {"hosts": {"b2": None, "b1": None}}}},
                },
            }
        }, sort_keys=False)
    )  # fmt: skip
    groups = inventory_groups(hosts)
    assert groups["backup"] == ["b2", "b1"]
    assert groups["all"] == ["lone", "b2", "b1"]
    assert role_hosts("pg_dump", groups) == ["b1", "b2"]

"""The lab inventory parser: what it accepts, and that every rejection names its location."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from pgstack_lab.errors import SpecError
from pgstack_lab.spec import load_spec, parse_spec

REPO_ROOT = Path(__file__).resolve().parents[2]


DB1 = {"ansible_host": "10.77.41.11"}


def inventory(hosts: dict[str, Any], **top_vars: Any) -> dict[str, Any]:
    return {
        "all": {
            "vars": {"lab_network": "10.77.41.0/24", **top_vars},
            "children": {"postgres": {"hosts": hosts}},
        }
    }


def test_committed_lab_inventory_parses() -> None:
    spec = load_spec(REPO_ROOT / "inventory/lab")
    assert [h.name for h in spec.hosts] == ["db1", "backup1", "mon1", "app1"]
    assert spec.gateway == ipaddress.IPv4Address("10.77.41.1")
    assert {h.release for h in spec.hosts} == {"trixie"}
    assert spec.host("db1").fqdn(spec.domain) == "db1.pgstack.internal"
    assert spec.host("db1").machine == "db1"


def test_debian12_lab_is_the_same_deployment_beside_the_default_one() -> None:
    """Same host names and groups, its own machines and addresses on the same network."""
    default = load_spec(REPO_ROOT / "inventory/lab")
    debian12 = load_spec(REPO_ROOT / "inventory/lab-debian12")
    assert [h.name for h in debian12.hosts] == [h.name for h in default.hosts]
    assert {h.release for h in debian12.hosts} == {"bookworm"}
    assert debian12.network == default.network
    assert not {h.address for h in debian12.hosts} & {h.address for h in default.hosts}
    assert not {h.machine for h in debian12.hosts} & {h.machine for h in default.hosts}
    groups = {path.name for path in (REPO_ROOT / "inventory/lab-debian12/group_vars").iterdir()}
    assert groups == {path.name for path in (REPO_ROOT / "inventory/lab/group_vars").iterdir()}


def test_machine_prefix_names_the_machines_not_the_hosts() -> None:
    spec = parse_spec(inventory({"db1": DB1}, lab_machine_prefix="d12-"), "inv")
    assert (spec.hosts[0].name, spec.hosts[0].machine) == ("db1", "d12-db1")


def test_default_release_is_trixie() -> None:
    assert parse_spec(inventory({"db1": DB1}), "inv").hosts[0].release == "trixie"


def test_release_override_applies_to_every_host() -> None:
    spec = parse_spec(inventory({"db1": {"ansible_host": "10.77.41.11"}}), "inv", "trixie")
    assert spec.hosts[0].release == "trixie"


def test_host_in_several_groups_keeps_the_address_given_once() -> None:
    data = inventory({"db1": {"ansible_host": "10.77.41.11"}})
    data["all"]["children"]["pgbouncer"] = {"hosts": {"db1": None}}
    data["all"]["children"]["redis"] = {"hosts": {"db1": {}}}
    spec = parse_spec(data, "inv")
    assert [(h.name, str(h.address)) for h in spec.hosts] == [("db1", "10.77.41.11")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"hosts": {}}, "top-level 'all' group"),
        ({"all": {"hosts": {"db1": {"ansible_host": "10.77.41.11"}}}}, "lab_network is required"),
        (
            inventory({"db1": {"ansible_host": "10.77.41.11"}}, lab_network="8.8.8.0/24"),
            "must be a private /24",
        ),
        (
            inventory({"db1": {"ansible_host": "10.77.41.11"}}, lab_network="10.77.0.0/16"),
            "must be a private /24",
        ),
        (
            inventory({"db1": {"ansible_host": "10.77.41.11"}}, lab_network="10.77.41.5/24"),
            "lab_network: 10.77.41.5/24 has host bits set",
        ),
        (
            inventory({"db1": {"ansible_host": "10.77.42.11"}}),
            "hosts.db1.ansible_host: 10.77.42.11",
        ),
        (inventory({"db1": {"ansible_host": "10.77.41.1"}}), "other than the gateway"),
        (inventory({"db1": {}}), "hosts.db1.ansible_host"),
        (inventory({"DB_1": {"ansible_host": "10.77.41.11"}}), "lower-case DNS label"),
        (
            inventory({"db1": {"ansible_host": "10.77.41.11", "lab_release": "sid"}}),
            "hosts.db1.lab_release must be one of bookworm, trixie",
        ),
        (
            inventory({"db1": {"ansible_host": "10.77.41.11"}}, lab_machine_prefix="D12_"),
            "lab_machine_prefix must be up to 8",
        ),
        (
            inventory(
                {"db1": {"ansible_host": "10.77.41.11"}, "db2": {"ansible_host": "10.77.41.11"}}
            ),
            "already used by db1",
        ),
        (inventory({}), "defines no hosts"),
    ],
)
def test_bad_inventory_is_rejected_with_its_location(data: Any, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "inv.yml")
    assert message in str(caught.value)


def test_unknown_host_names_the_known_ones() -> None:
    spec = parse_spec(inventory({"db1": {"ansible_host": "10.77.41.11"}}), "inv")
    with pytest.raises(SpecError, match=r"no host 'db9'.*known: db1"):
        spec.select(["db9"])


def test_unreadable_inventory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the lab inventory"):
        load_spec(tmp_path / "missing.yml")
    bad = tmp_path / "hosts.yml"
    bad.write_text("all: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(tmp_path)

"""Fixtures for end-to-end tests against the lab (pgstack-lab up + playbooks/site.yml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import LAB_INVENTORY, lab_ssh

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LabHost:
    name: str
    fqdn: str
    address: str


def _lab_inventory_data(inventory: Path = LAB_INVENTORY) -> dict[str, object]:
    data = yaml.safe_load((inventory / "hosts.yml").read_text())
    assert isinstance(data, dict)
    return data


def lab_host(name: str) -> LabHost:
    top = _lab_inventory_data()["all"]
    assert isinstance(top, dict)
    domain = top["vars"]["lab_domain"]
    for group in top["children"].values():
        hosts = group.get("hosts") or {}
        if name in hosts:
            return LabHost(name=name, fqdn=f"{name}.{domain}", address=hosts[name]["ansible_host"])
    raise LookupError(f"no host {name} in {LAB_INVENTORY / 'hosts.yml'}")


def group_hosts(group: str, inventory: Path = LAB_INVENTORY) -> list[str]:
    """The inventory names of a group's hosts, in inventory order (in the tests' lab, or in the
    lab inventory given)."""
    top = _lab_inventory_data(inventory)["all"]
    assert isinstance(top, dict)
    return list((top["children"].get(group) or {}).get("hosts") or {})


# Modules the suite runs first and last: test_site.py right after `make lab`, where its own converge
# is already a second one; test_dr_rebuild.py at the end, as it replaces the database host.
FIRST, LAST = "test_site.py", "test_dr_rebuild.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: (item.path.name != FIRST, item.path.name == LAST))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def lab_inventory() -> Path:
    return LAB_INVENTORY


@pytest.fixture(scope="session")
def lab_dir() -> Path:
    path = REPO_ROOT / ".lab"
    if not (path / "ssh/known_hosts").is_file():
        pytest.fail("the lab is not up: run `pgstack-lab up` and converge playbooks/site.yml first")
    return path


@pytest.fixture(scope="session")
def ca_file(lab_dir: Path) -> Path:
    return lab_dir / "pki/ca.crt"


@pytest.fixture(scope="session")
def secret(lab_dir: Path) -> Callable[[str], str]:
    def read(name: str) -> str:
        return (lab_dir / "secrets" / name).read_text().strip()

    return read


@pytest.fixture(scope="session")
def db_host() -> LabHost:
    return lab_host("db1")


def _ansible_bin(name: str) -> str:
    """The tool next to this interpreter (the project venv) before one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install the dev dependencies (make venv)")
    return found


AnsiblePlaybook = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def ansible_playbook(lab_inventory: Path) -> AnsiblePlaybook:
    def run(
        *args: str,
        playbook: str,
        extra_vars_file: Path | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        argv = [_ansible_bin("ansible-playbook"), "-i", str(lab_inventory), playbook, *args]
        if extra_vars_file is not None:
            argv += ["-e", f"@{extra_vars_file}"]
        if check:
            argv += ["--check", "--diff"]
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        return subprocess.run(
            argv, cwd=REPO_ROOT, capture_output=True, text=True, env=env, check=False, timeout=1200
        )

    return run


# Clients the tests run on app1 (not part of app_env: an application brings its own driver).
APP_HOST_CLIENTS = "postgresql-client python3-psycopg redis-tools python3-redis"


@pytest.fixture(scope="session")
def clients_on_app_host() -> None:
    """The real clients of the applications, installed on app1 once per test session."""
    result = lab_ssh(
        "app1",
        f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q {APP_HOST_CLIENTS} >/dev/null",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr

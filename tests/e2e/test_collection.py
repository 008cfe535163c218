"""pgstack as users install it: the collection built from this clone, installed outside the
checkout, converges the lab's PgBouncer host from a playbook of its own that names everything by
its full name, and changes nothing on the converged lab.

The project holds only an ansible.cfg (the settings a user would copy: the collection's strategy,
pipelining) and the playbook; the inventory is the lab's. Nothing of the clone is configured:
no roles_path, no plugin path, no collections path but the install directory
(tests/installed_collection.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import assert_nothing_changed, parse_recap

from installed_collection import FQCN, Installed, build_and_install

pytestmark = pytest.mark.e2e

CONFIG = f"""[defaults]
inventory = /dev/null
interpreter_python = auto_silent
gathering = smart
forks = 10
retry_files_enabled = false
strategy = {FQCN}.pgstack_linear

[ssh_connection]
pipelining = true
"""

PLAYBOOK = [
    {
        "name": "collection | PgBouncer from the installed collection",
        "hosts": "pgbouncer",
        "become": True,
        "roles": [{"role": f"{FQCN}.pgbouncer", "tags": ["pgbouncer"]}],
    }
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    collection = build_and_install(tmp_path_factory.mktemp("collection"), CONFIG)
    (collection.project / "pgbouncer.yml").write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
    return collection


@pytest.fixture(scope="module")
def converge(
    installed: Installed, lab_inventory: Path, lab_dir: Path
) -> subprocess.CompletedProcess[str]:
    return installed.run(
        "ansible-playbook", "-i", str(lab_inventory), "pgbouncer.yml", timeout=1200
    )


def test_the_collection_role_converges_the_lab_host_without_change(
    converge: subprocess.CompletedProcess[str],
) -> None:
    assert_nothing_changed(converge)
    recap = parse_recap(converge.stdout)
    assert sorted(recap) == ["db1"]
    assert recap["db1"]["ok"] > 0


def test_the_tasks_ran_from_the_installed_collection(
    converge: subprocess.CompletedProcess[str],
) -> None:
    # Task banners name the role by its collection: TASK [pgstack.pgstack.pgbouncer : ...].
    assert f"TASK [{FQCN}.pgbouncer : " in converge.stdout
    assert f"TASK [{FQCN}.pki : " in converge.stdout


def test_no_secret_in_the_output(converge: subprocess.CompletedProcess[str], lab_dir: Path) -> None:
    output = converge.stdout + converge.stderr
    secrets = sorted((lab_dir / "secrets").iterdir())
    assert secrets, "the lab has no generated secrets"
    leaked = [path.name for path in secrets if path.read_text().strip() in output]
    assert leaked == []

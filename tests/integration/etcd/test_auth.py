"""The etcd_auth module (plugins/modules) by its full name, run by the real ansible-playbook on
localhost with Debian's own Python (what a host runs it with: the standard library only) against a
real etcd over TLS (etcd_server.py, a fresh one per test). What it did is checked from the outside,
through etcd's gateway, as the users it manages.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from pathlib import Path
from typing import Any

from etcd_server import Etcd, Pki, free_port, make_pki

from localhost_play import run_plays

MODULE = "pgstack.pgstack.etcd_auth"
# Debian's Python, not the venv's: the module needs nothing the standard library lacks.
HOST_PYTHON = "/usr/bin/python3"


def password() -> str:
    return secrets.token_urlsafe(18)


@dataclasses.dataclass(frozen=True)
class Run:
    returncode: int
    result: dict[str, Any]
    # stdout and stderr of ansible-playbook, to look for secrets in.
    output: str


def run_module(tmp_path: Path, args: dict[str, Any], *, check: bool = False) -> Run:
    """One task of the module on localhost; its result from the JSON report."""
    inventory = tmp_path / "hosts.json"
    inventory.write_text(
        json.dumps({
            "all": {
                "hosts": {
                    "localhost": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": HOST_PYTHON,
                    }
                }
            }
        }),
        encoding="utf-8",
    )  # fmt: skip
    play = {
        "name": "etcd_auth",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "Converge etcd's authentication", MODULE: args}],
    }
    done = run_plays(
        [play],
        tmp_path / f"play-{time.monotonic_ns()}.yml",
        inventory=inventory,
        args=["--check"] if check else [],
    )
    (task,) = json.loads(done.stdout)["plays"][0]["tasks"]
    return Run(done.returncode, task["hosts"]["localhost"], done.stdout + done.stderr)


@dataclasses.dataclass
class Inventory:
    """The module's arguments: root's password and the users, as an inventory would give them."""

    etcd: Etcd
    root: str = dataclasses.field(default_factory=password)
    users: list[dict[str, Any]] = dataclasses.field(
        default_factory=lambda: [
            {"name": "patroni", "password": password(), "prefix": "/service/"},
            {
                "name": "monitor",
                "password": password(),
                "prefix": "/service/",
                "permission": "read",
            },
        ]
    )

    def args(self) -> dict[str, Any]:
        return {
            "endpoint": self.etcd.endpoint,
            "ca_file": str(self.etcd.ca),
            "root_password": self.root,
            "users": self.users,
        }

    def secrets(self) -> list[str]:
        return [self.root, *(user["password"] for user in self.users)]


def assert_no_secret(run: Run, inventory: Inventory) -> None:
    leaked = [secret for secret in inventory.secrets() if secret in run.output]
    assert leaked == [], "a password is in ansible-playbook's output"


FIRST_RUN = [
    "user root created",
    "role root granted to user root",
    "role patroni created",
    "role patroni granted readwrite on [/service/, /service0)",
    "user patroni created",
    "role patroni granted to user patroni",
    "role monitor created",
    "role monitor granted read on [/service/, /service0)",
    "user monitor created",
    "role monitor granted to user monitor",
    "authentication enabled",
]


def test_a_fresh_etcd_gets_its_users_and_authentication(etcd: Etcd, tmp_path: Path) -> None:
    inventory = Inventory(etcd)
    run = run_module(tmp_path, inventory.args())
    assert run.returncode == 0, run.output[-3000:]
    assert run.result["changed"] is True
    assert run.result["actions"] == FIRST_RUN
    assert run.result["unmanaged_users"] == []
    assert_no_secret(run, inventory)

    # Authentication is on: a request without a token is refused.
    assert etcd.put("/service/anonymous")[0] != 200
    assert etcd.call("auth/user/list", {})[0] != 200
    patroni, monitor = (etcd.token(u["name"], u["password"]) for u in inventory.users)
    assert patroni is not None
    assert monitor is not None
    # patroni writes and reads under its prefix, and nowhere else.
    assert etcd.put("/service/pg/leader", patroni) == (200, "")
    assert etcd.range("/service/", patroni) == (200, "")
    assert etcd.put("/servicex", patroni) == (403, "etcdserver: permission denied")
    assert etcd.put("/other/key", patroni) == (403, "etcdserver: permission denied")
    assert etcd.range("/other/", patroni) == (403, "etcdserver: permission denied")
    # monitor only reads.
    assert etcd.range("/service/", monitor) == (200, "")
    assert etcd.put("/service/pg/leader", monitor) == (403, "etcdserver: permission denied")
    # root is root, with the inventory's password.
    assert etcd.token("root", inventory.root) is not None


def test_a_second_run_changes_nothing_and_leaves_other_users_alone(
    etcd: Etcd, tmp_path: Path
) -> None:
    legacy = password()
    assert etcd.call("auth/user/add", {"name": "legacy", "password": legacy})[0] == 200
    inventory = Inventory(etcd)
    first = run_module(tmp_path, inventory.args())
    assert first.returncode == 0, first.output[-3000:]
    assert first.result["unmanaged_users"] == ["legacy"]

    second = run_module(tmp_path, inventory.args())
    assert second.returncode == 0, second.output[-3000:]
    assert (second.result["changed"], second.result["actions"]) == (False, [])
    assert second.result["unmanaged_users"] == ["legacy"]
    assert etcd.token("legacy", legacy) is not None
    assert_no_secret(second, inventory)


def test_a_changed_password_is_set_and_the_old_one_refused(etcd: Etcd, tmp_path: Path) -> None:
    inventory = Inventory(etcd)
    assert run_module(tmp_path, inventory.args()).returncode == 0
    old = inventory.users[0]["password"]
    inventory.users[0]["password"] = new = password()

    run = run_module(tmp_path, inventory.args())
    assert run.returncode == 0, run.output[-3000:]
    assert (run.result["changed"], run.result["actions"]) == (True, ["password of patroni changed"])
    assert etcd.token("patroni", new) is not None
    assert etcd.token("patroni", old) is None
    assert old not in run.output
    assert_no_secret(run, inventory)


def test_a_changed_prefix_and_permission_replace_the_roles_one(etcd: Etcd, tmp_path: Path) -> None:
    inventory = Inventory(etcd)
    assert run_module(tmp_path, inventory.args()).returncode == 0
    inventory.users[0].update(prefix="/pg/", permission="read")

    run = run_module(tmp_path, inventory.args())
    assert run.returncode == 0, run.output[-3000:]
    assert run.result["actions"] == [
        "role patroni granted read on [/pg/, /pg0)",
        "role patroni revoked readwrite on [/service/, /service0)",
    ]
    root = etcd.token("root", inventory.root)
    assert etcd.call("auth/role/get", {"role": "patroni"}, root)[1]["perm"] == [
        {"key": "L3BnLw==", "range_end": "L3BnMA=="}  # READ, etcd's default, left out
    ]
    patroni = etcd.token("patroni", inventory.users[0]["password"])
    assert etcd.range("/pg/", patroni) == (200, "")
    assert etcd.put("/pg/x", patroni) == (403, "etcdserver: permission denied")
    assert etcd.range("/service/", patroni) == (403, "etcdserver: permission denied")
    assert run_module(tmp_path, inventory.args()).result["changed"] is False


def test_a_refused_root_password_fails_and_changes_nothing(etcd: Etcd, tmp_path: Path) -> None:
    inventory = Inventory(etcd)
    assert run_module(tmp_path, inventory.args()).returncode == 0
    good_root, old_patroni = inventory.root, inventory.users[0]["password"]
    inventory.root = password()
    inventory.users[0]["password"] = password()
    inventory.users.append({"name": "newcomer", "password": password(), "prefix": "/new/"})

    run = run_module(tmp_path, inventory.args())
    assert run.returncode != 0
    assert run.result["failed"] is True
    assert run.result["msg"] == (
        f"etcd at {etcd.endpoint} has authentication on and refuses the root password given "
        "(etcd_root_password): etcdserver: authentication failed, invalid user ID or password"
    )
    assert_no_secret(run, inventory)
    root = etcd.token("root", good_root)
    assert etcd.call("auth/user/list", {}, root)[1]["users"] == ["monitor", "patroni", "root"]
    assert etcd.token("patroni", old_patroni) is not None


def test_check_mode_on_a_fresh_etcd_reports_and_changes_nothing(etcd: Etcd, tmp_path: Path) -> None:
    inventory = Inventory(etcd)
    run = run_module(tmp_path, inventory.args(), check=True)
    assert run.returncode == 0, run.output[-3000:]
    assert (run.result["changed"], run.result["actions"]) == (True, FIRST_RUN)
    # Authentication is still off (an anonymous write passes) and etcd has no user or role.
    assert etcd.put("/anything")[0] == 200
    assert etcd.call("auth/user/list", {})[1].get("users", []) == []
    assert etcd.call("auth/role/list", {})[1].get("roles", []) == []


def test_an_untrusted_certificate_fails_naming_the_endpoint(etcd: Etcd, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other-ca")
    inventory = Inventory(etcd)
    run = run_module(tmp_path, {**inventory.args(), "ca_file": str(other.ca)})
    assert run.returncode != 0
    assert run.result["msg"].startswith(f"etcd at {etcd.endpoint}: auth/authenticate: ")
    assert "certificate verify failed" in run.result["msg"]
    assert_no_secret(run, inventory)
    assert etcd.put("/anything")[0] == 200, "authentication must still be off"


def test_nothing_listening_fails_naming_the_endpoint(tmp_path: Path, pki: Pki) -> None:
    closed = f"https://127.0.0.1:{free_port()}"
    inventory = Inventory(Etcd(closed, pki.ca, tmp_path / "etcd.log"))
    run = run_module(tmp_path, {**inventory.args(), "endpoint": closed, "timeout": 3})
    assert run.returncode != 0
    assert run.result["msg"].startswith(f"etcd at {closed}: auth/authenticate: ")
    assert "Connection refused" in run.result["msg"]
    assert_no_secret(run, inventory)

"""The collection as users install it: `ansible-galaxy collection build` of this clone, installed
with `ansible-galaxy collection install -p` into an empty directory outside the checkout, used
from a project whose ansible.cfg is empty and whose playbooks name everything by its full name.

What the tarball holds is checked by its file list; what the installed collection does, by the real
ansible-playbook on localhost: a syntax check of every playbook it ships and of a user's playbook,
and a role's input checks run through the collection's own preflight_check action and Jinja tests.
Nothing here touches a service.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from typing import Any

import pytest
import yaml

from installed_collection import FQCN, REPO_ROOT, Installed, build_and_install

PASSED = "pgstack-test: passed"
# What an installed collection needs, and only that (galaxy.yml's build_ignore).
TOP_LEVEL = {
    "roles", "playbooks", "plugins", "meta", "exporters", "scripts", "alerts", "dashboards",
    "README.md", "MANIFEST.json", "FILES.json",
}  # fmt: skip
ROLES = sorted(p.name for p in (REPO_ROOT / "roles").iterdir() if (p / "tasks").is_dir())
# The internal roles have entry points but no main.
INTERNAL_ROLES = {"preflight", "python_tool"}
PLAYBOOKS = sorted(p.stem for p in (REPO_ROOT / "playbooks").glob("*.yml"))
# What a role reads beside itself: "{{ role_path }}/../../<path>" in its vars, defaults or tasks.
ROLE_PATH = re.compile(r"\{\{ *role_path *\}\}/\.\./\.\./([\w./-]+)")


def beside_the_roles() -> set[str]:
    found = set()
    for path in (REPO_ROOT / "roles").glob("*/*/*.yml"):
        if "molecule" not in path.parts:
            found |= set(ROLE_PATH.findall(path.read_text(encoding="utf-8")))
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    directory = tmp_path_factory.mktemp("collection")
    assert not directory.resolve().is_relative_to(REPO_ROOT)
    collection = build_and_install(directory)
    (collection.project / "hosts.yml").write_text(
        yaml.safe_dump({
            "all": {
                "hosts": {
                    "localhost": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                    },
                },
            },
        }),
        encoding="utf-8",
    )  # fmt: skip
    return collection


def test_the_tarball_holds_the_roles_playbooks_and_plugins(installed: Installed) -> None:
    files = set(installed.files())
    expected = {
        "meta/runtime.yml",
        "plugins/action/preflight_check.py",
        "plugins/test/preflight.py",
        "plugins/filter/web_auth.py",
        "plugins/modules/etcd_auth.py",
        "plugins/strategy/pgstack_linear.py",
        "roles/python_tool/files/build_zip.py",
        *(f"roles/{role}/tasks/main.yml" for role in ROLES if role not in INTERNAL_ROLES),
        *(f"roles/{role}/meta/argument_specs.yml" for role in ROLES),
        *(f"playbooks/{playbook}.yml" for playbook in PLAYBOOKS),
        *(f"alerts/{p.name}" for p in (REPO_ROOT / "alerts").glob("*.rules.yml")),
        *(f"dashboards/{p.name}" for p in (REPO_ROOT / "dashboards").glob("*.json")),
    }
    assert sorted(expected - files) == []


def test_the_tarball_holds_what_the_roles_read_beside_themselves(installed: Installed) -> None:
    """exporters/pgstack_exporter, scripts/pgstack_common, ... : each Python file of each one."""
    files = set(installed.files())
    read = beside_the_roles()
    assert {"scripts/pgstack_common", "exporters/pgstack_exporter", "alerts", "dashboards"} <= read
    for path in sorted(read):
        sources = {
            p.relative_to(REPO_ROOT).as_posix()
            for p in (REPO_ROOT / path).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        assert sources, path
        assert sorted(sources - files) == [], path


def test_the_tarball_holds_nothing_else(installed: Installed) -> None:
    files = installed.files()
    assert {name.split("/")[0] for name in files} <= TOP_LEVEL
    hidden_or_test = {"molecule", "__pycache__"}
    unwanted = [
        name
        for name in files
        if name.endswith(".pyc")
        or any(part.startswith(".") or part in hidden_or_test for part in name.split("/"))
    ]
    assert unwanted == []
    # The Python packages are exactly those the roles install on hosts: no controller tool.
    packages = {"/".join(name.split("/")[:2]) for name in files if name.startswith("scripts/")}
    expected = {path for path in beside_the_roles() if path.startswith("scripts/")}
    assert packages - {"scripts"} == expected


def test_nothing_of_the_clone_is_configured(installed: Installed) -> None:
    dump = installed.run("ansible-config", "dump", "--only-changed")
    assert dump.returncode == 0, dump.stderr
    assert str(REPO_ROOT) not in dump.stdout
    listed = installed.run("ansible-galaxy", "collection", "list", FQCN, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert list(json.loads(listed.stdout)) == [str(installed.collections / "ansible_collections")]


def test_every_playbook_of_the_collection_passes_a_syntax_check(installed: Installed) -> None:
    result = installed.run(
        "ansible-playbook", "-i", "hosts.yml", "--syntax-check",
        *(f"{FQCN}.{playbook}" for playbook in PLAYBOOKS),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_a_users_playbook_with_full_names_passes_a_syntax_check(installed: Installed) -> None:
    plays = [
        {"name": "Import the whole site", "ansible.builtin.import_playbook": f"{FQCN}.site"},
        {
            "name": "PgBouncer by its full name",
            "hosts": "pgbouncer",
            "become": True,
            "roles": [{"role": f"{FQCN}.pgbouncer"}],
        },
    ]
    (installed.project / "site.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    result = installed.run("ansible-playbook", "-i", "hosts.yml", "--syntax-check", "site.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def input_case(name: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The redis role's input checks (its assert entry point), a block that prints its outcome."""
    return {
        "name": f"case {name}",
        "vars": {**variables, "__preflight_validated": []},
        "block": [
            {
                "name": f"check {name}",
                "ansible.builtin.include_role": {"name": f"{FQCN}.redis", "tasks_from": "assert"},
            },
            {"name": f"outcome {name}", "ansible.builtin.debug": {"msg": [PASSED]}},
        ],
        "rescue": [
            {
                "name": f"outcome {name}",
                "ansible.builtin.debug": {"msg": "{{ [ansible_failed_result.msg] }}"},
            },
        ],
    }


@pytest.fixture(scope="module")
def input_outcomes(installed: Installed) -> dict[str, list[str]]:
    users = [{"name": "admin", "kind": "admin", "password": secrets.token_urlsafe(24)}]
    play = {
        "name": "A collection role's input checks",
        "hosts": "localhost",
        # The release (the roles support Debian 12 and 13) and the memory (redis_memory_mb).
        "gather_facts": True,
        "vars": {"redis_users": users},
        "tasks": [
            input_case("valid", {}),
            input_case("bad-port", {"redis_port": 70000}),
            input_case("bad-memory", {"redis_maxmemory_percent": 95}),
        ],
    }  # fmt: skip
    (installed.project / "checks.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    result = installed.run(
        "ansible-playbook", "-i", "hosts.yml", "checks.yml",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found: dict[str, list[str]] = {}
    for play_result in json.loads(result.stdout)["plays"]:
        for task in play_result["tasks"]:
            name = task["task"]["name"]
            if name.startswith("outcome "):
                found[name.removeprefix("outcome ")] = task["hosts"]["localhost"]["msg"]
    assert sorted(found) == ["bad-memory", "bad-port", "valid"]
    return found


def test_valid_input_passes_the_collection_roles_checks(
    input_outcomes: dict[str, list[str]],
) -> None:
    assert input_outcomes["valid"] == [PASSED]


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("bad-port", "redis_port must be a port between 1 and 65535, got 70000."),
        ("bad-memory", "redis_maxmemory_percent"),
    ],
)
def test_bad_input_fails_with_the_collection_plugins_message(
    input_outcomes: dict[str, list[str]], case: str, words: str
) -> None:
    """The rule ran in the collection's preflight_check action with its Jinja tests
    (pgstack.pgstack.port, pgstack.pgstack.between) and failed with the role's own message."""
    (message,) = input_outcomes[case]
    assert words in message

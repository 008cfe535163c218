"""The repository as the collection pgstack.pgstack: its metadata agrees with the rest of the
repository, and its roles and playbooks name what they use so that an installed collection finds
it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import SpecifierSet

from preflight_plugin import load

REPO_ROOT = Path(__file__).resolve().parents[2]
# The collection's Jinja tests (plugins/test/preflight.py). Outside the clone, a role finds a test
# plugin of its own collection only by its full name (pgstack.pgstack.port), unlike its modules.
SHARED_TESTS = "|".join(sorted(load().TestModule().tests()))
FULL = "pgstack.pgstack."
SHORT_TEST = re.compile(
    rf"\bis (not )?({SHARED_TESTS})\b(?!\.)"
    rf"|(select|reject|selectattr|rejectattr)\([^)]*'({SHARED_TESTS})'"
)
# Another collection's content by its full name: community.postgresql.postgresql_query, ...
OTHER_COLLECTION = re.compile(r"\b((?:community|ansible)\.[a-z_]+)\.[a-z_]+")
ANSIBLE_FILES = sorted(
    p
    for p in [
        *(REPO_ROOT / "roles").glob("*/*/**/*.yml"),
        *(REPO_ROOT / "roles").glob("*/templates/**/*.j2"),
        *(REPO_ROOT / "playbooks").glob("*.yml"),
    ]
    if "molecule" not in p.parts
)


def load(path: str) -> Any:
    return yaml.safe_load((REPO_ROOT / path).read_text(encoding="utf-8"))


def test_the_collection_version_is_the_distribution_version() -> None:
    """One version: galaxy.yml's equals pyproject.toml's [project] version."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert load("galaxy.yml")["version"] == pyproject["project"]["version"]


def test_the_pinned_ansible_core_meets_requires_ansible() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (pin,) = [
        d
        for d in pyproject["project"]["optional-dependencies"]["dev"]
        if d.startswith("ansible-core==")
    ]
    assert pin.removeprefix("ansible-core==") in SpecifierSet(
        load("meta/runtime.yml")["requires_ansible"]
    )


def test_requirements_pin_a_version_of_every_dependency() -> None:
    """requirements.yml (the versions tested) and galaxy.yml (the ranges accepted) name the same
    collections, and each tested version is in its range."""
    dependencies = load("galaxy.yml")["dependencies"]
    pinned = {item["name"]: item["version"] for item in load("requirements.yml")["collections"]}
    assert sorted(pinned) == sorted(dependencies)
    for name, version in pinned.items():
        assert version in SpecifierSet(dependencies[name]), name


def test_every_collection_the_roles_use_is_a_dependency() -> None:
    used = {
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in ANSIBLE_FILES
        for name in OTHER_COLLECTION.findall(path.read_text(encoding="utf-8"))
        if name not in {"ansible.builtin", "ansible.legacy"}
        and name not in load("galaxy.yml")["dependencies"]
    }
    assert sorted(used) == []


def test_the_shared_jinja_tests_are_named_in_full() -> None:
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {FULL}{match.group(2) or match.group(4)}"
        for path in ANSIBLE_FILES
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if not line.lstrip().startswith(("#", "- name:", "name:"))
        for match in SHORT_TEST.finditer(line)
    ]
    assert offenders == []


def test_build_ignore_keeps_out_what_the_roles_do_not_read() -> None:
    """The tarball's contents are checked by tests/integration/collection; here, that nothing a role
    reads through role_path ("{{ role_path }}/../../<dir>") is ignored by the build."""
    ignored = load("galaxy.yml")["build_ignore"]
    read = {
        match
        for path in ANSIBLE_FILES
        for match in re.findall(
            r"\{\{ *role_path *\}\}/\.\./\.\./([\w./-]+)", path.read_text(encoding="utf-8")
        )
    }
    assert read
    for path in read:
        parts = path.split("/")
        prefixes = {"/".join(parts[: n + 1]) for n in range(len(parts))}
        assert not prefixes & set(ignored), path

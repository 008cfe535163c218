"""The collection as a user gets it: built from this clone with ansible-galaxy, installed into a
directory outside the checkout, and run from a project of its own whose ansible.cfg names nothing
of the clone. Shared by tests/integration/collection and tests/e2e/test_collection.py.

The collections pgstack.pgstack depends on (galaxy.yml) come with the ansible package of the venv,
so the install is offline: `--no-deps`, and the venv's site-packages provide them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
GALAXY = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"


def tool(name: str) -> str:
    """An Ansible command of the venv (beside this interpreter) before one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: install the dev dependencies (make venv)")
    return found


@dataclass(frozen=True)
class Installed:
    """An installed collection and the project that uses it."""

    tarball: Path
    # The -p directory: ansible_collections/pgstack/pgstack inside.
    collections: Path
    # The user's project: ansible.cfg and whatever playbooks a test writes there.
    project: Path

    @property
    def path(self) -> Path:
        namespace, name = FQCN.split(".")
        return self.collections / "ansible_collections" / namespace / name

    def env(self) -> dict[str, str]:
        """The environment of every command: no ANSIBLE_* setting of the caller (make exports
        ANSIBLE_CONFIG=<clone>/ansible.cfg), the project's ansible.cfg, the install directory."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        env.update(
            ANSIBLE_CONFIG=str(self.project / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(self.collections),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
        )
        return env

    def run(
        self, command: str, *args: str, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """An Ansible command run in the project (never in the checkout)."""
        return subprocess.run(
            [tool(command), *args],
            cwd=self.project,
            env={**self.env(), **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def files(self) -> list[str]:
        """The tarball's members, relative to the collection's root."""
        with tarfile.open(self.tarball) as archive:
            return sorted(member.name for member in archive.getmembers())


def build_and_install(directory: Path, config: str = "") -> Installed:
    """Build the collection from the clone into directory/dist, install the tarball into
    directory/collections and make directory/project with the given ansible.cfg text."""
    project = directory / "project"
    project.mkdir(parents=True)
    (project / "ansible.cfg").write_text(config, encoding="utf-8")
    collections = directory / "collections"
    collections.mkdir()
    dist = directory / "dist"
    scratch = Installed(tarball=dist, collections=collections, project=project)

    build = scratch.run(
        "ansible-galaxy", "collection", "build", "--output-path", str(dist), str(REPO_ROOT)
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = dist.glob("*.tar.gz")
    assert tarball.name == f"{FQCN.replace('.', '-')}-{GALAXY['version']}.tar.gz"

    installed = Installed(tarball=tarball, collections=collections, project=project)
    # --force: install here even when another collections path already holds the collection.
    install = installed.run(
        "ansible-galaxy",
        "collection",
        "install",
        str(tarball),
        "-p",
        str(collections),
        "--no-deps",
        "--force",
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (installed.path / "MANIFEST.json").is_file(), install.stdout
    return installed

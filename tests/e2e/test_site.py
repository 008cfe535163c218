"""The whole site converges, a second converge changes nothing, `--check --diff` on the converged
lab changes nothing, and no lab secret appears in any of their output (task results, diffs).

The module converges first itself, so it holds whatever the lab went through before it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import assert_nothing_changed

pytestmark = pytest.mark.e2e

Playbook = Callable[..., subprocess.CompletedProcess[str]]
PLAYBOOK = "playbooks/site.yml"


@pytest.fixture(scope="module")
def runs(ansible_playbook: Playbook) -> dict[str, subprocess.CompletedProcess[str]]:
    first = ansible_playbook(playbook=PLAYBOOK)
    assert first.returncode == 0, first.stdout[-5000:]
    return {
        "converge": first,
        "second": ansible_playbook(playbook=PLAYBOOK),
        "check": ansible_playbook(playbook=PLAYBOOK, check=True),
    }


def test_second_converge_changes_nothing(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert_nothing_changed(runs["second"])


def test_check_diff_on_the_converged_site_changes_nothing(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    assert_nothing_changed(runs["check"])


@pytest.mark.parametrize("run", ["converge", "second", "check"])
def test_no_secret_in_the_output(
    runs: dict[str, subprocess.CompletedProcess[str]], lab_dir: Path, run: str
) -> None:
    output = runs[run].stdout + runs[run].stderr
    secrets = sorted((lab_dir / "secrets").iterdir())
    assert secrets, "the lab has no generated secrets"
    leaked = [path.name for path in secrets if path.read_text().strip() in output]
    assert leaked == []

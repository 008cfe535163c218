"""The whole site converges, a second converge changes nothing, `--check --diff` on the converged
lab changes nothing, and no lab secret appears in any of their output (task results, diffs; the
converge runs at `-vvv`).

The module converges first itself, so it holds whatever the lab went through before it. When
that converge already changes nothing (the lab was converged and nothing has touched it since, as
right after `make lab`: conftest.py runs this module first), it is the second converge, and the
module does not run a third; its `--check --diff` then runs beside it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import assert_nothing_changed, parse_recap

pytestmark = pytest.mark.e2e

Playbook = Callable[..., subprocess.CompletedProcess[str]]
PLAYBOOK = "playbooks/site.yml"


@pytest.fixture(scope="module")
def runs(ansible_playbook: Playbook) -> dict[str, subprocess.CompletedProcess[str]]:
    # The converge and `--check --diff` side by side: when the converge changes nothing, the lab
    # stayed as it was all along, so the check saw the converged lab (most of either run is waiting
    # on the hosts). Otherwise the check is thrown away and runs again after the second converge.
    with ThreadPoolExecutor(max_workers=2) as pool:
        # At -vvv, as an operator debugging a run would: no secret may show there either.
        converging = pool.submit(ansible_playbook, "-vvv", playbook=PLAYBOOK)
        checking = pool.submit(ansible_playbook, playbook=PLAYBOOK, check=True)
        first, check = converging.result(), checking.result()
    assert first.returncode == 0, first.stdout[-5000:]
    converged = not any(counts["changed"] for counts in parse_recap(first.stdout).values())
    if converged:
        return {"converge": first, "second": first, "check": check}
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

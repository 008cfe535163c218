"""ansible-playbook on this machine, for the integration tests that run roles and actions for real
on localhost: the plays written to a file and run with the repository's ansible.cfg, the stock
linear strategy (these tests are about the roles, not about Mitogen) and the JSON callback, so a
test reads each task's result instead of scraping text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def run_plays(
    plays: Sequence[Mapping[str, Any]],
    playbook: Path,
    *,
    inventory: str | Path = "localhost,",
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Write plays to playbook and run it against inventory; its stdout is the JSON report."""
    playbook.write_text(yaml.safe_dump(list(plays), sort_keys=False), encoding="utf-8")
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), *args, str(playbook)]
    environment = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_STRATEGY": "linear",
        **(env or {}),
    }
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, env=environment, check=False,
        timeout=300,
    )  # fmt: skip


def case_task(
    name: str, variables: Mapping[str, Any], steps: Sequence[Mapping[str, Any]], outcome: str
) -> dict[str, Any]:
    """One case of a play of cases: its steps in a block with its variables, then a task
    "outcome <name>" with [outcome] (a template of what the steps made); when a step fails, that
    task holds the failure's message instead (case_messages reads both)."""
    return {
        "name": f"case {name}",
        "vars": dict(variables),
        "block": [*steps, {"name": f"outcome {name}", "ansible.builtin.debug": {"msg": [outcome]}}],
        "rescue": [
            {"name": f"outcome {name}",
             "ansible.builtin.debug": {"msg": "{{ [ansible_failed_result.msg] }}"}},
        ],
    }  # fmt: skip


def case_messages(report: str, host: str = "localhost") -> dict[str, Any]:
    """The message of every task named "outcome <case>" in a JSON report, by case: the plays
    record each case's result (a failure's message, or what it rendered) in such a task."""
    found: dict[str, Any] = {}
    for play in json.loads(report)["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            if name.startswith("outcome "):
                found[name.removeprefix("outcome ")] = task["hosts"][host]["msg"]
    return found

"""Running the blocks of a procedure (docs/runbooks/, tests/runbooks.py PROCEDURES) as written.

Each block runs in one bash with errexit and pipefail (an operator's shell: the first failing
command stops it, and what a command sets carries over to the next), as root on the first lab host
of the group its sentence names, or on the controller in the repository's root. The runner fills in
the placeholders and exports its environment to every block; on the controller, `ssh` is a
command first on PATH that runs `pgstack-lab ssh` on the lab host the FQDN names (root, so the
blocks' `sudo` changes nothing), while Ansible keeps the real ssh (ANSIBLE_SSH_EXECUTABLE).

A procedure that spans two labs at once (the upgrade: the Debian 12 lab's hosts and the lab's,
which have the same names and FQDNs) names each lab's hosts by address: Runner.labs gives the lab
of each of its own sentences, and ssh_command the labs whose addresses `ssh` reaches.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from conftest import group_hosts
from helpers import lab_ssh

from pgstack_lab.spec import load_spec
from runbooks import HOSTS, REPO_ROOT, Block

PGSTACK_LAB = Path(sys.executable).parent / "pgstack-lab"


@dataclass(frozen=True)
class Runner:
    """Runs one procedure's blocks as written, with its placeholder values and environment."""

    runbook: Path
    values: dict[str, str]
    bin_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 900
    # A procedure's own sentence (runbooks.OWN_HOSTS) -> the lab inventory whose hosts run its
    # blocks; the sentences of runbooks.HOSTS run on the e2e fixtures' lab.
    labs: dict[str, Path] = field(default_factory=dict)

    def with_env(self, **env: str) -> Runner:
        return replace(self, env={**self.env, **env})

    def with_values(self, values: Mapping[str, str]) -> Runner:
        return replace(self, values={**self.values, **values})

    def script(self, block: Block) -> str:
        lines = [
            "set -e -o pipefail",
            *(f"export {k}={shlex.quote(v)}" for k, v in self.env.items()),
        ]
        for written in block.commands:
            command = written
            for name, value in self.values.items():
                command = command.replace(name, value)
            lines += [f"printf '%s\\n' {shlex.quote('$ ' + command)}", command]
        return "\n".join(lines) + "\n"

    def run(self, block: Block) -> str:
        """Run one block, fail with its output unless every command exited 0; return the output."""
        script = self.script(block)
        began = time.monotonic()
        if block.on_controller:
            env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **self.env)
            # Ansible keeps the real ssh; the blocks' own ssh is the lab's.
            env["ANSIBLE_SSH_EXECUTABLE"] = shutil.which("ssh") or "ssh"
            env["PATH"] = f"{self.bin_dir}:{env['PATH']}"
            proc = subprocess.run(
                ["bash", "-c", script], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=self.timeout, check=False,
            )  # fmt: skip
            where = "controller"
        else:
            [group] = block.groups
            command = f"cd / && bash -c {shlex.quote(script)} </dev/null 2>&1"
            if block.host in HOSTS:
                where = group_hosts(group)[0]
                proc = lab_ssh(where, command, timeout=self.timeout)
            else:
                assert block.host in self.labs, f"{block.host!r}: no lab for it in Runner.labs"
                inventory = self.labs[block.host]
                host = group_hosts(group, inventory)[0]
                where = f"{host} of {inventory.name}"
                proc = subprocess.run(
                    [str(PGSTACK_LAB), "-i", str(inventory), "ssh", host, command],
                    capture_output=True, text=True, timeout=self.timeout, check=False,
                )  # fmt: skip
        output = proc.stdout + proc.stderr
        print(f"{self.runbook.name}:{block.line} ({where}): {time.monotonic() - began:.1f} s")
        assert proc.returncode == 0, (
            f"{self.runbook.relative_to(REPO_ROOT)}:{block.line} ({where}) exit {proc.returncode}\n"
            f"{output[-6000:]}"
        )
        return output


def ssh_command(directory: Path, labs: Iterable[Path] = ()) -> Path:
    """`ssh HOST COMMAND` as the runbooks write it: root on the lab host HOST (an FQDN) names, or,
    HOST an address of a host of labs (lab inventories), on that host of that lab."""
    tool = shlex.quote(str(PGSTACK_LAB))
    cases: dict[str, str] = {}
    for inventory in labs:
        for host in load_spec(inventory).hosts:
            assert str(host.address) not in cases, f"{host.address} is in two labs"
            cases[str(host.address)] = (
                f'exec {tool} -i {shlex.quote(str(inventory))} ssh {host.name} "$@"'
            )
    by_address = "".join(f"  {address}) {run} ;;\n" for address, run in cases.items())
    ssh = directory / "ssh"
    ssh.write_text(
        "#!/bin/sh\n"
        f"export PATH={shlex.quote(os.environ['PATH'])}\n"
        "host=$1; shift\n"
        + (f'case "$host" in\n{by_address}esac\n' if by_address else "")
        + f'exec {tool} ssh "${{host%%.*}}" "$@"\n'
    )
    ssh.chmod(0o755)
    return directory

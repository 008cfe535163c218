"""Running host commands, behind a seam so the lab logic is testable without root."""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pgstack_lab.errors import LabError

log = logging.getLogger(__name__)


class Runner(Protocol):
    def run(self, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command to completion, capturing its output."""
        ...


class CommandError(LabError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
        super().__init__(f"`{shlex.join(argv)}` exited {returncode}: {detail}")


class SubprocessRunner:
    def run(self, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        log.debug("run: %s", shlex.join(argv))
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        if check and proc.returncode != 0:
            raise CommandError(argv, proc.returncode, proc.stderr)
        return proc


def generate_ed25519_key(runner: Runner, path: Path, comment: str) -> None:
    """Write a new passphrase-less ed25519 key pair at path and path.pub."""
    runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])

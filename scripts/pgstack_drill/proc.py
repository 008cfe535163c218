"""Child processes: run as the cluster's OS user when we are root, killed as a group on the way out.

Each child runs in its own process group (``start_new_session``), so that SIGTERM to the drill,
an error or a timeout kills the child and everything it started (``pg_restore -j`` workers,
``runuser``'s child) before the scratch state is removed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pgstack_drill.errors import VerificationFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:500] if lines else "no message"


def first_error(text: str | None) -> str:
    """The first ``error:``/``ERROR:``/``FATAL:`` line of a tool's output, else its last line."""
    for line in (text or "").splitlines():
        if any(mark in line for mark in ("error:", "ERROR:", "FATAL:", "ERROR ")):
            return line.strip()[:500]
    return last_line(text)


class Runner:
    """Runs tools; ``os_user`` is the owner of the scratch clusters (used when running as root)."""

    def __init__(self, os_user: str) -> None:
        self.os_user = os_user

    def as_owner(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run as the cluster owner: through runuser when we are root, as is otherwise."""
        if os.geteuid() == 0:
            return ["runuser", "-u", self.os_user, "--", *argv]
        return list(argv)

    def run(
        self,
        argv: Sequence[str],
        what: str,
        *,
        timeout: float | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> Result:
        log.debug("running %s", " ".join(argv[:4]))
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=env,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:
            kill_group(proc)
            raise
        result = Result(proc.returncode, stdout, stderr)
        if check and proc.returncode != 0:
            raise VerificationFailed(
                f"{what} failed (exit {proc.returncode}): {first_error(stderr or stdout)}"
            )
        return result


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the child's whole process group and reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.kill()
    proc.wait()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]

"""SIGTERM in the middle of a drill: the drill stops, and no scratch state is left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from drill_helpers import REPO_ROOT, STANZA, DrillDirs, Dumps, Primary, alive


def _run_until(argv: list[str], phase: str, dirs: DrillDirs) -> tuple[int, int, str]:
    """Start the drill, SIGTERM it as ``phase`` begins; its exit code, postmaster PID, stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgstack_drill", *argv],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.rstrip().endswith(f"] {phase}") or f"] {phase}:" in line:
                break
        else:
            pytest.fail(f"the drill ended before {phase}: {''.join(seen)}")
        (pid_file,) = dirs.scratch.glob("pgstack-drill-*/data/postmaster.pid")
        postmaster = int(pid_file.read_text().splitlines()[0])
        assert alive(postmaster)
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, postmaster, "".join(seen) + rest


def _assert_terminated_cleanly(argv: list[str], phase: str, dirs: DrillDirs) -> None:
    code, postmaster, stderr = _run_until(argv, phase, dirs)
    assert code == 4, stderr
    deadline = time.monotonic() + 10
    while alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(postmaster)
    assert dirs.leftovers() == []
    tmp = Path("/tmp")  # noqa: S108 - where the drill puts sockets of deep scratch roots
    assert list(tmp.glob(f"pgstack-drill-run-*/.s.PGSQL.{dirs.port}")) == []
    attempt = dirs.status_file(dirs.kind_of_last())["last_attempt"]
    assert attempt["result"] == "error"
    assert attempt["error"] == "terminated by signal 15"


def test_sigterm_mid_restore_of_a_dump(app_dump: Dumps, drill_dirs: DrillDirs) -> None:
    argv = [
        "logical",
        *drill_dirs.common(),
        "--progress",
        "--database",
        "app",
        "--dumps-dir",
        str(app_dump.root),
        "--jobs",
        "1",
    ]
    _assert_terminated_cleanly(argv, "data", drill_dirs)


def test_sigterm_mid_verify_of_a_pitr_drill(primary: Primary, drill_dirs: DrillDirs) -> None:
    argv = [
        "pitr",
        *drill_dirs.common(),
        "--progress",
        "--stanza",
        STANZA,
        "--pgbackrest-config",
        str(primary.repo_config),
        "--check",
        "postgres:SELECT pg_sleep(60) IS NOT NULL",
    ]
    _assert_terminated_cleanly(argv, "verify", drill_dirs)

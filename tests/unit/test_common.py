"""scripts/pgstack_common: what every pgstack tool imports."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest

from pgstack_backup.errors import BackupError, ConfigError
from pgstack_common.errors import ExitCode, Terminated, ToolError
from pgstack_common.files import write_atomic
from pgstack_common.signals import signals_ignored, signals_raise
from pgstack_drill.errors import DrillError, VerificationFailed
from pgstack_lab.errors import LabError, SpecError


def test_every_tool_maps_its_errors_onto_the_same_exit_codes() -> None:
    for error, code in [
        (BackupError, ExitCode.UNEXPECTED),
        (ConfigError, ExitCode.USAGE),
        (DrillError, ExitCode.UNEXPECTED),
        (VerificationFailed, ExitCode.VERIFICATION_FAILED),
        (LabError, ExitCode.UNEXPECTED),
        (SpecError, ExitCode.USAGE),
    ]:
        assert issubclass(error, ToolError)
        assert error.exit_code is code
    # Terminated escapes every `except Exception` of a tool's work.
    assert not issubclass(Terminated, Exception)


def test_write_atomic_replaces_the_file_with_the_mode_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text("old")
    write_atomic(path, b"new", mode=0o640)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_write_atomic_needs_a_mode(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "x", b"data")  # type: ignore[call-arg]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report.json"
    path.write_text("good")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # after the temporary file is written
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, b"partial", mode=0o644)
    assert path.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_signals_raise_terminated_inside_and_come_back_after() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated, match="terminated by signal 15"), signals_raise():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_signals_ignored_inside() -> None:
    with signals_ignored():
        os.kill(os.getpid(), signal.SIGTERM)  # ignored: the test goes on
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN

"""Exit codes and the exceptions that map to them."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    VERIFICATION_FAILED = 1
    USAGE = 2
    PRECONDITION = 3
    UNEXPECTED = 4


class DrillError(Exception):
    """A failure with a one-line message fit for the journal, the report and the status file."""

    exit_code = ExitCode.UNEXPECTED


class UsageError(DrillError):
    exit_code = ExitCode.USAGE


class PreconditionError(DrillError):
    """No backup, a live target, no disk, another drill running: nothing was restored."""

    exit_code = ExitCode.PRECONDITION


class VerificationFailed(DrillError):
    """The restore failed or the restored data differs from what the backup says it holds."""

    exit_code = ExitCode.VERIFICATION_FAILED


class Terminated(BaseException):
    """SIGTERM or SIGINT arrived: stop, remove the scratch state, record the failure."""

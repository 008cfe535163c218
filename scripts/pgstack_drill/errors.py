"""The drill's errors; exit codes and Terminated are pgstack_common's."""

from __future__ import annotations

from pgstack_common.errors import ExitCode, Terminated, ToolError

__all__ = [
    "DrillError",
    "ExitCode",
    "PreconditionError",
    "Terminated",
    "UsageError",
    "VerificationFailed",
]


class DrillError(ToolError):
    """A failure of a drill (its message goes into the report too)."""


class UsageError(DrillError):
    exit_code = ExitCode.USAGE


class PreconditionError(DrillError):
    """No backup, a live target, no disk, another drill running: nothing was restored."""

    exit_code = ExitCode.PRECONDITION


class VerificationFailed(DrillError):
    """The restore failed or the restored data differs from what the backup says it holds."""

    exit_code = ExitCode.VERIFICATION_FAILED

"""The dump runner's errors; exit codes and Terminated are pgstack_common's."""

from __future__ import annotations

from pgstack_common.errors import ExitCode, Terminated, ToolError

__all__ = [
    "BackupError",
    "ConfigError",
    "DumpFailed",
    "ExitCode",
    "PreconditionError",
    "Terminated",
]


class BackupError(ToolError):
    """A failure of a dump or prune run."""


class ConfigError(BackupError):
    exit_code = ExitCode.USAGE


class PreconditionError(BackupError):
    exit_code = ExitCode.PRECONDITION


class DumpFailed(BackupError):
    """pg_dump, pg_dumpall or the read-back check of a dump failed."""

    exit_code = ExitCode.VERIFICATION_FAILED

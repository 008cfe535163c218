"""Exit codes and the exceptions that map to them."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    VERIFICATION_FAILED = 1
    USAGE = 2
    PRECONDITION = 3
    UNEXPECTED = 4


class BackupError(Exception):
    """A failure with a message fit for the journal and the status file (never a secret)."""

    exit_code = ExitCode.UNEXPECTED


class ConfigError(BackupError):
    exit_code = ExitCode.USAGE


class PreconditionError(BackupError):
    exit_code = ExitCode.PRECONDITION


class DumpFailed(BackupError):
    """pg_dump, pg_dumpall or the read-back check of a dump failed."""

    exit_code = ExitCode.VERIFICATION_FAILED


class Terminated(BaseException):
    """SIGTERM arrived (systemctl stop/kill): stop, clean up, record the failure."""

"""The exit codes every pgstack tool returns, and the errors that map onto them."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    VERIFICATION_FAILED = 1
    USAGE = 2
    PRECONDITION = 3
    UNEXPECTED = 4


class ToolError(Exception):
    """A failure with a one-line message fit for the journal and a status file (never a secret).
    Each tool's own errors derive from it; ``exit_code`` is what the command returns."""

    exit_code = ExitCode.UNEXPECTED


class Terminated(BaseException):
    """SIGTERM (systemctl stop or kill) or SIGINT arrived: stop, clean up, record the failure.
    A BaseException, so that no ``except Exception`` of the tool's work swallows it."""

"""Exit codes and the errors that map onto them."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    VERIFICATION_FAILED = 1
    USAGE = 2
    PRECONDITION = 3
    UNEXPECTED = 4


class LabError(Exception):
    """A failure the operator can act on; the message names what went wrong."""

    exit_code = ExitCode.UNEXPECTED


class SpecError(LabError):
    """The lab inventory is malformed."""

    exit_code = ExitCode.USAGE


class UsageError(LabError):
    """The command line asks for something contradictory."""

    exit_code = ExitCode.USAGE


class PreconditionError(LabError):
    """The machine cannot run the lab (not root, missing tools, address in use...)."""

    exit_code = ExitCode.PRECONDITION


class BootError(LabError):
    """A lab host did not come up."""

    exit_code = ExitCode.VERIFICATION_FAILED

"""Exit codes and the errors that map onto them."""

from __future__ import annotations

from pgstack_common.errors import ExitCode, ToolError

__all__ = ["BootError", "ExitCode", "LabError", "PreconditionError", "SpecError", "UsageError"]


class LabError(ToolError):
    """A failure the operator can act on; the message names what went wrong."""


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

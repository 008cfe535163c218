"""pgstack-drill: drills (``logical``, ``pitr``, ``rebuild``) and helpers (workload, heartbeat).

Exit codes: 0 passed, 1 verification failed or an objective missed, 2 usage, 3 precondition (no
backup, a live target, no disk, another drill running, the rebuilt host unreachable), 4
unexpected (SIGTERM included).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pgstack_drill import heartbeat, logical, pitr, rebuild, workload
from pgstack_drill.errors import DrillError, ExitCode


class Parser(argparse.ArgumentParser):
    """Usage errors exit with ExitCode.USAGE (argparse's own 2, kept explicit)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pgstack-drill", description="Restore drills and their helpers.")
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in (logical, pitr, rebuild, workload, heartbeat):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else int(ExitCode.USAGE)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.run(args))
    except DrillError as exc:
        logging.getLogger("pgstack_drill").error("%s", exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.UNEXPECTED)

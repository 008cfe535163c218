"""pgstack-dashboards: write the dashboards' JSON, or check that the files are up to date.

Exit codes: 0 ok, 1 ``--check`` found a file that differs from what the code generates,
2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pgstack_common.errors import ExitCode
from pgstack_dashboards.boards import BOARDS
from pgstack_dashboards.build import render

DEFAULT_OUTPUT = Path("dashboards")


def rendered() -> dict[str, str]:
    """File name to content, for every dashboard."""
    return {board.file_name: render(board) for board in BOARDS}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pgstack-dashboards", description=__doc__)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="directory of the JSON files (default: %(default)s)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when a file is missing or differs from the generated one",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    output: Path = args.output_dir
    stale = []
    for name, text in rendered().items():
        path = output / name
        current = path.read_text() if path.is_file() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path))
            continue
        output.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run make dashboards): {', '.join(stale)}", file=sys.stderr)
        return ExitCode.VERIFICATION_FAILED
    return ExitCode.OK

"""pgstack-screenshots: make the PNG files of docs/images again with headless Chromium.

Exit codes: 0 ok, 2 usage, 3 precondition (no Chromium), 4 unexpected (Chromium failed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pgstack_common.errors import ExitCode
from pgstack_screenshots import drill, layout

DEFAULT_OUTPUT = Path("docs/images")
DEFAULT_DASHBOARDS = Path("dashboards")
# The dashboards whose layout the docs show.
LAYOUTS = ("overview", "backups")
WIDTH = 1000
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pgstack-screenshots", description=__doc__)
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT, help="%(default)s")
    parser.add_argument(
        "--dashboards-dir", type=Path, default=DEFAULT_DASHBOARDS, help="%(default)s"
    )
    parser.add_argument("--chromium", default="chromium", help="the browser (default: %(default)s)")
    return parser.parse_args(argv)


def shoot(chromium: str, work: Path, page: Path, png: Path, height: int) -> None:
    """One page, one PNG, one Chromium at a time."""
    subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={work / 'profile'}", f"--screenshot={png}",
         f"--window-size={WIDTH},{height}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    print(f"wrote {png}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    chromium = shutil.which(args.chromium)
    if chromium is None:
        print(f"no {args.chromium} on PATH (Debian's package chromium)", file=sys.stderr)
        return ExitCode.PRECONDITION
    output: Path = args.output_dir
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pgstack-screenshots-") as temp:
        work = Path(temp)
        try:
            page = drill.write_history(work / "reports")
            shoot(chromium, work, page, output / "drill-report.png", 1500)
            for name in LAYOUTS:
                source = args.dashboards_dir / f"{name}.json"
                dashboard = json.loads(source.read_text(encoding="utf-8"))
                page = work / f"{name}-layout.html"
                page.write_text(layout.render(dashboard, f"dashboards/{name}.json"))
                png = output / f"dashboard-{name}-layout.png"
                shoot(chromium, work, page, png, layout.height(dashboard))
        except subprocess.CalledProcessError as exc:
            print(
                f"chromium failed: {exc.stderr.decode(errors='replace')[-2000:]}", file=sys.stderr
            )
            return ExitCode.UNEXPECTED
    return ExitCode.OK

"""docs/benchmarks.md from every .bench/<section>.json present, one SVG per curve.

A run of one section rewrites the doc with the other sections' last results, so the doc always
shows the newest result of each section and says when and how (quick or full) each was measured.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pgstack_bench.lab import BenchLab
from pgstack_bench.model import Cell, Curve, Table
from pgstack_bench.plot import write_svg

log = logging.getLogger(__name__)

DOC = Path("docs/benchmarks.md")
SVG_DIR = Path("docs/benchmarks")

INTRO = """\
# Benchmarks

What pgstack costs and how fast it is, measured on the lab (see [lab.md](lab.md)), where it
makes sense side by side with what a user would run instead; each section says what it compared
and how. Every number below is measured by `pgstack-bench` (`scripts/pgstack_bench/`); none is
typed in by hand.

## How to run

```sh
make bench            # every section at every size (the Duration table below says how long)
make bench QUICK=1    # the smallest sizes and fewer repetitions (minutes)
.venv/bin/pgstack-bench --quick --section exporter   # one section
```

The lab must be up and converged (`make lab`). Each section writes its raw results to
`.bench/<section>.json` (git-ignored) and this page is rebuilt from every such file present, so
running one section keeps the others' last results; each section says when it ran and whether
the run was quick. Whatever a section adds to a lab host (packages, databases, processes) it
removes again when it ends.

The lab is systemd-nspawn containers on one machine whose cores the controller shares: the
numbers compare alternatives measured the same way on the same machine, and their absolute values
say little about production hardware. Quick runs are noisier than full ones.
"""


def _cell(value: Cell) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    lines = [
        f"**{table.title}**" if table.title else "",
        "",
        "| " + " | ".join(_cell(c) for c in table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    for row in table.rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in table.columns) + " |")
    return "\n".join(lines).lstrip("\n")


def _table(data: Mapping[str, Any]) -> Table:
    return Table(
        title=str(data.get("title", "")),
        columns=tuple(str(c) for c in data["columns"]),
        rows=tuple(dict(row) for row in data["rows"]),
    )


def _curve(data: Mapping[str, Any]) -> Curve:
    series = {
        str(label): tuple((float(x), float(y)) for x, y in points)
        for label, points in data["series"].items()
    }
    return Curve(
        name=str(data["name"]),
        title=str(data["title"]),
        x_label=str(data["x_label"]),
        y_label=str(data["y_label"]),
        series=series,
        log_x=bool(data.get("log_x", False)),
        log_y=bool(data.get("log_y", False)),
    )


def load_results(results_dir: Path, order: Sequence[str]) -> list[tuple[dict[str, Any], float]]:
    """The section results present, in the order given (unknown names after, by name), each
    with its file's modification time (for results written before they carried a date)."""
    found: dict[str, tuple[dict[str, Any], float]] = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            log.warning("skipping %s: %s", path.name, error)
            continue
        if not isinstance(data, dict) or "tables" not in data:
            log.warning("skipping %s: not a section result", path.name)
            continue
        found[str(data.get("name", path.stem))] = (data, path.stat().st_mtime)
    known = [found.pop(name) for name in order if name in found]
    return known + [found[name] for name in sorted(found)]


def _when(data: Mapping[str, Any], mtime: float) -> str:
    date = data.get("date")
    if isinstance(date, str) and date:
        return date
    return dt.datetime.fromtimestamp(mtime, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_section(data: Mapping[str, Any], mtime: float, svg_prefix: str) -> str:
    kind = "quick run (smallest sizes)" if data.get("quick") else "full run"
    elapsed = data.get("elapsed_s")
    took = f", took {float(elapsed):.0f} s" if isinstance(elapsed, int | float) else ""
    parts = [
        f"## {data.get('title', data.get('name', '?'))}",
        f"_{_when(data, mtime)}, {kind}{took}._",
    ]
    for table in data.get("tables", []):
        parts.append(markdown_table(_table(table)))
    for curve in data.get("curves", []):
        parts.append(f"![{curve['title']}]({svg_prefix}/{curve['name']}.svg)")
    discussion = str(data.get("discussion", "")).strip()
    if discussion:
        parts.append(discussion)
    return "\n\n".join(parts)


def render_durations(results: Sequence[tuple[dict[str, Any], float]]) -> str:
    """What each section present took, and their sum: the time a run of them all takes."""
    rows: list[dict[str, Cell]] = []
    total = 0.0
    for data, mtime in results:
        elapsed = data.get("elapsed_s")
        seconds = float(elapsed) if isinstance(elapsed, int | float) else None
        total += seconds or 0.0
        rows.append(
            {
                "section": str(data.get("title", data.get("name", "?"))),
                "run": "quick" if data.get("quick") else "full",
                "measured": _when(data, mtime),
                "took": "—" if seconds is None else f"{seconds / 60:.1f} min",
            }
        )
    rows.append(
        {"section": "all of them", "run": "", "measured": "", "took": f"{total / 60:.1f} min"}
    )
    table = Table("", ("section", "run", "measured", "took"), tuple(rows))
    return (
        "## Duration\n\nWhat each section took when it last ran; a run of every section takes "
        "about their sum.\n\n" + markdown_table(table)
    )


def render_doc(results: Sequence[tuple[dict[str, Any], float]], machine: Mapping[str, str]) -> str:
    parts = [INTRO.rstrip()]
    parts.append(
        "## Machine\n\nThe machine of the latest run (a section's result from an earlier run "
        "was measured on the machine of that run):\n"
    )
    rows = "\n".join(f"| {_cell(key)} | {_cell(value)} |" for key, value in machine.items())
    parts[-1] += "\n| | |\n|---|---|\n" + rows
    if not results:
        parts.append("No results yet: run `make bench`.")
    else:
        parts.append(render_durations(results))
    for data, mtime in results:
        parts.append(render_section(data, mtime, SVG_DIR.name))
    return "\n\n".join(parts) + "\n"


def write_doc(lab: BenchLab, machine: dict[str, str]) -> None:
    """Rewrite docs/benchmarks.md and docs/benchmarks/*.svg from .bench/*.json."""
    from pgstack_bench.cli import SECTION_MODULES  # noqa: PLC0415  (cli imports this module)

    results = load_results(lab.results_dir, SECTION_MODULES)
    for data, _ in results:
        for curve in data.get("curves", []):
            write_svg(_curve(curve), lab.repo / SVG_DIR)
    doc = lab.repo / DOC
    doc.write_text(render_doc(results, machine))
    log.info("wrote %s (%d sections)", doc.relative_to(lab.repo), len(results))

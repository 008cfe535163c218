"""pgstack-bench: run the benchmark sections on the lab, write .bench/*.json and docs/benchmarks.md.

pgstack-bench [--quick] [--section NAME ...] [--no-doc]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from pgstack_bench.lab import BenchLab
from pgstack_bench.model import Section, SectionResult
from pgstack_bench.report import write_doc

log = logging.getLogger(__name__)

# The sections, in the order the doc lists them: module pgstack_bench.<name> defines SECTION.
SECTION_MODULES = ("exporter", "pooling", "backup", "converge", "redis")


def load_sections(names: Sequence[str] = SECTION_MODULES) -> list[Section]:
    """The sections named (in the doc's order); only their modules are imported."""
    sections: list[Section] = []
    for name in SECTION_MODULES:
        if name not in names:
            continue
        module = importlib.import_module(f"pgstack_bench.{name}")
        sections.append(module.SECTION)
    return sections


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgstack-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smallest sizes only (minutes)")
    parser.add_argument(
        "--section", action="append", choices=SECTION_MODULES, help="only these sections"
    )
    parser.add_argument(
        "--no-doc", action="store_true", help="write the raw JSON only, not docs/benchmarks.md"
    )
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the pgstack checkout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    lab = BenchLab.load(args.repo.resolve(), quick=args.quick)
    wanted = set(args.section or SECTION_MODULES)
    results: list[SectionResult] = []
    failed: list[str] = []
    for section in load_sections(sorted(wanted)):
        log.info("section %s: %s", section.name, section.title)
        began = time.monotonic()
        try:
            result = section.run(lab)
        except Exception:
            log.exception("section %s failed", section.name)
            failed.append(section.name)
            continue
        elapsed = time.monotonic() - began
        raw = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "elapsed_s": round(elapsed, 1),
            "quick": lab.quick,
            **asdict(result),
        }
        (lab.results_dir / f"{section.name}.json").write_text(json.dumps(raw, indent=2) + "\n")
        log.info("section %s done in %.0f s", section.name, elapsed)
        results.append(result)
    if not args.no_doc:
        write_doc(lab, machine=lab.machine())
    print_summary(results)
    if failed:
        print(f"pgstack-bench: sections failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def print_summary(results: Sequence[SectionResult]) -> None:
    rows = [(r.title, figure, value) for r in results for figure, value in r.summary]
    if not rows:
        return
    width = max(len(figure) for _, figure, _ in rows)
    current = ""
    for title, figure, value in rows:
        if title != current:
            print(f"\n{title}")
            current = title
        print(f"  {figure:<{width}}  {value}")

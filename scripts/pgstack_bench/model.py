"""What a benchmark section produces: tables, curves, a paragraph and summary lines.

Every section module exposes ``SECTION: Section``; the CLI loops over them, writes each result as
raw JSON (``.bench/<section>.json``) and renders ``docs/benchmarks.md`` with one SVG per curve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgstack_bench.lab import BenchLab

Cell = float | int | str | None


@dataclass(frozen=True)
class Table:
    """A table of the doc: one dict per row, keys in ``columns``; floats are printed as given."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, Cell], ...]


@dataclass(frozen=True)
class Curve:
    """A cost at several sizes: one line per series, points (x, y) sorted by x."""

    name: str  # file name stem of the SVG: docs/benchmarks/<name>.svg
    title: str
    x_label: str
    y_label: str
    series: dict[str, tuple[tuple[float, float], ...]]
    log_x: bool = False
    log_y: bool = False


@dataclass(frozen=True)
class SectionResult:
    name: str
    title: str
    tables: tuple[Table, ...]
    curves: tuple[Curve, ...] = ()
    # What the numbers mean and what was changed because of them (markdown, one paragraph or more).
    discussion: str = ""
    # The key figures for the printed summary: (figure, value as text),
    # e.g. ("scrape p95 at 1000 dbs", "41 ms (0.09x)").
    summary: tuple[tuple[str, str], ...] = ()
    # Everything measured, for the raw JSON.
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    name: str  # also the CLI's --section value
    title: str
    run: Callable[[BenchLab], SectionResult]

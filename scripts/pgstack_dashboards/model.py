"""What a dashboard says, independent of Grafana's JSON: boards, rows, panels, thresholds.

``build.py`` turns these into grafana-foundation-sdk builders; docs/dashboards.md and the tests
read the generated JSON.
"""

from __future__ import annotations

import dataclasses
import enum


class Kind(enum.StrEnum):
    STAT = "stat"
    TIMESERIES = "timeseries"


@dataclasses.dataclass(frozen=True)
class Step:
    """A threshold step: from ``value`` up (``None``: the base step), the panel shows ``color``."""

    value: float | None
    color: str


@dataclasses.dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclasses.dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    kind: Kind = Kind.STAT
    unit: str = "none"
    steps: tuple[Step, ...] = ()
    # Value to text, for a stat that shows a state (1 up, 0 down).
    mappings: tuple[tuple[str, str, str], ...] = ()
    no_value: str | None = None
    width: int = 0
    height: int = 0
    decimals: int | None = None
    min_value: float | None = None
    max_value: float | None = None


@dataclasses.dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]
    # A variable the row is repeated for, once per selected value ("" = shown once).
    repeat: str = ""


@dataclasses.dataclass(frozen=True)
class Variable:
    """A query variable from label_values; ``.*`` (all) by default, several values allowed."""

    name: str
    label: str
    query: str


@dataclasses.dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    variables: tuple[Variable, ...]
    rows: tuple[Row, ...]

    @property
    def file_name(self) -> str:
        return f"{self.uid.removeprefix('pgstack-')}.json"


GREEN = "green"
YELLOW = "yellow"
ORANGE = "orange"
RED = "red"
BLUE = "blue"

# A 0/1 health gauge: 0 red, 1 green.
UP_STEPS = (Step(None, RED), Step(1, GREEN))
UP_MAPPINGS = (("0", "down", RED), ("1", "up", GREEN))
OK_MAPPINGS = (("0", "failed", RED), ("1", "ok", GREEN))


def above(warning: float, critical: float | None = None) -> tuple[Step, ...]:
    """Green below ``warning``, orange from it, red from ``critical``: an alert's thresholds."""
    steps = [Step(None, GREEN), Step(warning, ORANGE)]
    if critical is not None:
        steps.append(Step(critical, RED))
    return tuple(steps)


def below(critical: float, warning: float | None = None) -> tuple[Step, ...]:
    """Red below ``critical``, orange below ``warning``, green above: for ratios that fall."""
    steps = [Step(None, RED)]
    if warning is not None:
        steps.append(Step(critical, ORANGE))
        steps.append(Step(warning, GREEN))
    else:
        steps.append(Step(critical, GREEN))
    return tuple(steps)

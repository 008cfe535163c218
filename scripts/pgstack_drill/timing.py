"""Phase timing: each drill is a sequence of named phases measured on a monotonic clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol


class Clock(Protocol):
    """Wall time for the records, monotonic time for the durations (tests pass a fake)."""

    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass(frozen=True)
class Phase:
    name: str
    start_seconds: float  # offset from the start of the drill
    duration_seconds: float
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start_seconds": round(self.start_seconds, 3),
            "duration_seconds": round(self.duration_seconds, 3),
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Phase:
        return cls(
            name=str(data["name"]),
            start_seconds=float(data["start_seconds"]),
            duration_seconds=float(data["duration_seconds"]),
            detail=str(data.get("detail", "")),
        )


class PhaseTimer:
    """Records phases in order; a phase left by an exception is recorded too (up to the failure).

    Offsets count from ``started_at``: now, or an earlier moment given (a drill that began before
    this process, such as a rebuild whose first phases a playbook ran).
    """

    def __init__(
        self,
        clock: Clock,
        started_at: datetime | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> None:
        self.clock = clock
        now = clock.now()
        self.started_at = started_at or now
        self._origin = clock.monotonic() - (now - self.started_at).total_seconds()
        self.phases: list[Phase] = []
        self.current: str | None = None
        self._details: dict[str, str] = {}
        self._on_phase = on_phase

    def elapsed(self) -> float:
        return self.clock.monotonic() - self._origin

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self.elapsed()
        self.current = name
        if self._on_phase is not None:
            self._on_phase(name)
        try:
            yield
        finally:
            self.phases.append(
                Phase(name, start, self.elapsed() - start, self._details.pop(name, ""))
            )
            self.current = None

    def record(self, phase: Phase) -> None:
        """A phase measured elsewhere (offsets from ``started_at``), kept in order."""
        self.phases.append(phase)

    def note(self, detail: str) -> None:
        """A short detail for the running phase (e.g. "12 tables, 48213 rows")."""
        if self.current is not None:
            self._details[self.current] = detail

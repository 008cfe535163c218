"""Phase timing with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pgstack_drill.timing import Phase, PhaseTimer


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> datetime:
        return datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t


def test_phases_are_recorded_in_order_with_offsets_and_details() -> None:
    clock = FakeClock()
    timer = PhaseTimer(clock)
    with timer.phase("fetch"):
        clock.t += 2.0
        timer.note("3 files")
    clock.t += 0.5
    with timer.phase("restore"):
        clock.t += 10.0
    assert timer.phases == [
        Phase("fetch", 0.0, 2.0, "3 files"),
        Phase("restore", 2.5, 10.0, ""),
    ]
    assert timer.elapsed() == pytest.approx(12.5)


def test_a_phase_ended_by_an_exception_is_recorded_up_to_the_failure() -> None:
    clock = FakeClock()
    timer = PhaseTimer(clock)

    def fail() -> None:
        with timer.phase("verify"):
            clock.t += 3.0
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    assert timer.phases == [Phase("verify", 0.0, 3.0, "")]
    assert timer.current is None


def test_phase_json_round_trip() -> None:
    phase = Phase("data", 1.23456, 7.5, "12 MiB")
    assert Phase.from_json(phase.to_json()) == Phase("data", 1.235, 7.5, "12 MiB")

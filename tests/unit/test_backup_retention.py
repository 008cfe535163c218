"""Dump retention: the newest dump always survives, then the min count, then the age window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pgstack_backup.retention import (
    MANIFEST_FILE,
    PARTIAL_PREFIX,
    Dump,
    parse_name,
    prune,
    select_expired,
    stamp,
)

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def dumps_aged(*days: float) -> list[Dump]:
    return [
        Dump(taken_at=NOW - timedelta(days=d), name=stamp(NOW - timedelta(days=d))) for d in days
    ]


def ages(expired: list[Dump]) -> list[float]:
    return sorted((NOW - d.taken_at) / timedelta(days=1) for d in expired)


def test_dumps_inside_the_window_are_kept() -> None:
    dumps = dumps_aged(0, 1, 2, 3, 4, 5, 6, 7)
    assert select_expired(dumps, now=NOW, max_age=timedelta(days=7), min_count=3) == []


def test_dumps_older_than_the_window_expire_beyond_the_min_count() -> None:
    dumps = dumps_aged(0, 1, 2, 8, 9, 30)
    expired = select_expired(dumps, now=NOW, max_age=timedelta(days=7), min_count=3)
    assert ages(expired) == [8, 9, 30]


def test_min_count_keeps_old_dumps_when_there_are_few_new_ones() -> None:
    dumps = dumps_aged(1, 10, 20, 30, 40)
    expired = select_expired(dumps, now=NOW, max_age=timedelta(days=7), min_count=3)
    assert ages(expired) == [30, 40]


def test_the_newest_dump_is_kept_even_when_older_than_the_window() -> None:
    dumps = dumps_aged(60, 61, 90)
    expired = select_expired(dumps, now=NOW, max_age=timedelta(days=7), min_count=1)
    assert ages(expired) == [61, 90]


def test_the_newest_dump_is_kept_with_a_zero_min_count_and_zero_window() -> None:
    dumps = dumps_aged(2, 3)
    expired = select_expired(dumps, now=NOW, max_age=timedelta(0), min_count=0)
    assert ages(expired) == [3]


def test_a_dump_exactly_at_the_window_edge_is_kept() -> None:
    dumps = dumps_aged(0, 7)
    assert select_expired(dumps, now=NOW, max_age=timedelta(days=7), min_count=1) == []


def test_dumps_from_the_future_are_kept() -> None:
    dumps = dumps_aged(-1, 0, 20)
    expired = select_expired(dumps, now=NOW, max_age=timedelta(days=7), min_count=1)
    assert ages(expired) == [20]


def test_nothing_to_select_from() -> None:
    assert select_expired([], now=NOW, max_age=timedelta(days=7), min_count=3) == []


def test_order_of_the_input_does_not_matter() -> None:
    dumps = dumps_aged(30, 0, 9, 1, 8)
    expired = select_expired(dumps, now=NOW, max_age=timedelta(days=7), min_count=2)
    assert ages(expired) == [8, 9, 30]


@pytest.mark.parametrize(("max_age", "min_count"), [(timedelta(days=-1), 1), (timedelta(1), -1)])
def test_nonsense_parameters_are_refused(max_age: timedelta, min_count: int) -> None:
    with pytest.raises(ValueError, match="must"):
        select_expired(dumps_aged(1), now=NOW, max_age=max_age, min_count=min_count)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("20261123T030000Z", datetime(2026, 11, 23, 3, 0, tzinfo=UTC)),
        ("20261123T030000Z-before-0042", None),  # labelled: never pruned
        (".partial-20261123T030000Z", None),
        ("20261123T0300Z", None),
        ("notes.txt", None),
    ],
)
def test_only_scheduled_dump_names_take_part(name: str, parsed: datetime | None) -> None:
    dump = parse_name(name)
    assert (dump.taken_at if dump else None) == parsed


def test_prune_deletes_expired_dumps_and_partials_and_keeps_the_rest(tmp_path: Path) -> None:
    def make(name: str, *, manifest: bool = True) -> None:
        (tmp_path / name).mkdir()
        if manifest:
            (tmp_path / name / MANIFEST_FILE).write_text("{}")

    old, older, newest = (stamp(NOW - timedelta(days=d)) for d in (20, 30, 10))
    for name in (old, older, newest, f"{stamp(NOW - timedelta(days=40))}-before-0042"):
        make(name)
    make(f"{PARTIAL_PREFIX}{stamp(NOW)}", manifest=False)
    make(stamp(NOW - timedelta(days=50)), manifest=False)  # no manifest: not a finished dump

    deleted = prune(tmp_path, now=NOW, max_age=timedelta(days=7), min_count=1)

    assert sorted(deleted) == sorted([old, older, f"{PARTIAL_PREFIX}{stamp(NOW)}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [newest, f"{stamp(NOW - timedelta(days=40))}-before-0042", stamp(NOW - timedelta(days=50))]
    )


def test_prune_of_a_missing_directory_deletes_nothing(tmp_path: Path) -> None:
    assert prune(tmp_path / "none", now=NOW, max_age=timedelta(days=7), min_count=1) == []

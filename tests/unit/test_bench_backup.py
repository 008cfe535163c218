"""The pure parts of the backup benchmark: sizes, extrapolation, timing lines, the result."""

from __future__ import annotations

import pytest

from pgstack_bench.backup import (
    DEFAULT_SIZES_MB,
    QUICK_SIZES_MB,
    SizeResult,
    build_result,
    disk_needed_mb,
    estimate_seconds,
    linear_fit,
    parse_elapsed,
    parse_sizes,
    phases,
    size_at,
)


def test_sizes_default_and_quick() -> None:
    assert parse_sizes(None, quick=False) == DEFAULT_SIZES_MB
    assert parse_sizes("", quick=True) == QUICK_SIZES_MB
    assert len(QUICK_SIZES_MB) == 1


def test_sizes_from_text_sorted_and_unique() -> None:
    assert parse_sizes(" 400,100 ,400,1600", quick=True) == (100.0, 400.0, 1600.0)


@pytest.mark.parametrize(("text", "message"), [("100,abc", "not a number"), ("0", "positive")])
def test_sizes_refuse_bad_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sizes(text, quick=False)


def test_linear_fit_recovers_a_line() -> None:
    slope, intercept = linear_fit([(100.0, 25.0), (400.0, 85.0), (1600.0, 325.0)])
    assert slope == pytest.approx(0.2)
    assert intercept == pytest.approx(5.0)


def test_linear_fit_single_point_goes_through_the_origin() -> None:
    assert linear_fit([(50.0, 10.0)]) == (0.2, 0.0)
    with pytest.raises(ValueError, match="x = 0"):
        linear_fit([(0.0, 3.0)])
    with pytest.raises(ValueError, match="no points"):
        linear_fit([])


def test_size_at_the_one_hour_line() -> None:
    assert size_at(3600.0, (0.2, 5.0)) == pytest.approx(17975.0)
    assert size_at(3600.0, (0.0, 5.0)) is None
    assert size_at(3600.0, (-1.0, 5.0)) is None
    assert size_at(3600.0, (1.0, 5000.0)) == 0.0  # already past it


def test_parse_elapsed() -> None:
    out = "some output\n@@elapsed 1700000000.250000000 1700000012.750000000\n"
    seconds, rest = parse_elapsed(out)
    assert seconds == pytest.approx(12.5)
    assert rest == "some output"
    with pytest.raises(ValueError, match="no @@elapsed"):
        parse_elapsed("pg_dump: error: connection failed\n")


def test_disk_and_time_planning() -> None:
    assert disk_needed_mb(100.0) == pytest.approx(100.0 * 13 + 512)
    assert disk_needed_mb(1024.0) > disk_needed_mb(256.0)
    assert estimate_seconds([64.0, 256.0], 0.5, 30.0) == pytest.approx(64 * 0.5 + 256 * 0.5 + 60)


def test_phases_of_a_report() -> None:
    report = {
        "phases": [
            {"name": "restore", "duration_seconds": 1.5},
            {"name": "recover", "duration_seconds": 0.25},
        ]
    }
    assert phases(report) == {"restore": 1.5, "recover": 0.25}
    assert phases({}) == {}


def _size(size_mb: float, factor: float) -> SizeResult:
    return SizeResult(
        size_mb=size_mb,
        db_bytes=int(size_mb * 1.2 * 2**20),
        dumps=[{"dump": "custom -Z1", "level": 1, "seconds": size_mb / 50, "bytes": 1000}],
        restore={
            "single": factor * 3,
            "parallel": factor * 2,
            "floor": factor * 1.5,
            "floor_copy": factor,
            "floor_indexes": factor / 2,
        },
        pgbackrest={"full_s": 1.0, "diff_s": 0.5, "restore_s": 1.0, "replay_mib_s": 100.0},
        logical={"rto_s": 10.0 + size_mb / 10, "result": "passed", "phases": {"data": 1.0}},
        pitr={"rto_s": 5.0 + size_mb / 20, "result": "passed", "phases": {}},
    )


def test_build_result_tables_curves_and_extrapolation() -> None:
    result = build_result([_size(100.0, 1.0), _size(400.0, 4.0)])
    titles = [table.title for table in result.tables]
    assert any("RTO passes 1 h" in title for title in titles)
    limit = next(t for t in result.tables if "RTO passes 1 h" in t.title)
    rows = {row["drill"]: row for row in limit.rows}
    # logical: 10 s + 0.1 s per MiB of rows, i.e. per 1.2 MiB of database
    assert rows["logical"]["RTO = 1 h at (GiB)"] == pytest.approx(
        round((3600 - 10) / (0.1 / 1.2) / 1024, 1)
    )
    names = {curve.name for curve in result.curves}
    assert names == {"backup-dump-time", "backup-restore-time", "backup-rto"}
    rto = next(c for c in result.curves if c.name == "backup-rto")
    assert rto.series["1 h"][0][1] == 3600.0
    assert rto.series["logical, extrapolated"][-1][1] == 3600.0
    restore = next(t for t in result.tables if t.title.startswith("pg_restore"))
    assert restore.rows[0]["-j 2 / floor"] == pytest.approx(1.33)

"""The workload generator: deterministic rows in COPY text format."""

from __future__ import annotations

from pgstack_drill.workload import RESULT_COLUMNS, Generator, _line


def test_the_same_seed_gives_the_same_rows() -> None:
    first, second, other = Generator(7).batch(50), Generator(7).batch(50), Generator(8).batch(50)
    assert first == second
    assert first.jobs != other.jobs


def test_rows_are_realistic_and_well_formed() -> None:
    batch = Generator(1).batch(400)
    jobs = [line.split("\t") for line in batch.jobs.splitlines()]
    assert len(jobs) == 400
    assert all(len(row) == 12 for row in jobs)
    statuses = {row[2] for row in jobs}
    assert {"COMPLETE", "FAILED", "PENDING"} <= statuses
    failed = [row for row in jobs if row[2] == "FAILED"]
    assert all(row[6].startswith("E_") for row in failed)
    pending = [row for row in jobs if row[2] == "PENDING"]
    assert all(row[10] == "\\N" and row[11] == "\\N" for row in pending)
    results = [line.split("\t") for line in batch.results.splitlines()]
    assert batch.result_count == len(results) > 0
    assert all(len(row) == len(RESULT_COLUMNS) for row in results)
    assert {row[1] for row in results} <= {row[0] for row in jobs}


def test_copy_text_escapes_separators() -> None:
    assert _line(("a\tb", "line\nbreak", "back\\slash", None)) == (
        "a\\tb\tline\\nbreak\tback\\\\slash\t\\N\n"
    )


def test_batches_stop_at_the_size() -> None:
    batches = list(Generator(3).batches(200_000))
    size = sum(len(b.jobs) + len(b.results) for b in batches)
    assert 200_000 <= size < 200_000 + max(len(b.jobs) + len(b.results) for b in batches) + 1

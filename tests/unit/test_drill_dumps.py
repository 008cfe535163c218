"""The dump layout and manifest as docs/backup.md documents them, and the table comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import release
from pgstack_drill.dumps import TableSummary, compare_tables, find_dump, parse_manifest
from pgstack_drill.errors import PreconditionError, VerificationFailed

# What pg_dump's runner records as server_version on each supported release (its Debian package's).
SERVER_VERSIONS = [
    f"{facts['postgresql']}.4 (Debian {facts['postgresql']}.4-1)"
    for facts in release.all_facts().values()
]
# The example of docs/backup.md, completed.
EXAMPLE: dict[str, Any] = {
    "version": 1,
    "cluster": "db1",
    "database": "app",
    "label": None,
    "started_at": "2026-11-23T03:00:00Z",
    "finished_at": "2026-11-23T03:00:12Z",
    "snapshot": "00000003-0000001B-1",
    "server_version": SERVER_VERSIONS[0],
    "compress_level": 1,
    "tables": [{"schema": "public", "name": "orders", "rows": 1000, "checksum": "-123456789"}],
    "files": {
        "data.dump": {"size_bytes": 1234, "sha256": "a" * 64},
        "schema.dump": {"size_bytes": 100, "sha256": "b" * 64},
        "globals.sql": {"size_bytes": 10, "sha256": "c" * 64},
    },
}


@pytest.mark.parametrize("server_version", SERVER_VERSIONS)
def test_the_documented_example_parses(server_version: str) -> None:
    manifest = parse_manifest({**EXAMPLE, "server_version": server_version}, "example")
    assert manifest.server_version == server_version
    assert manifest.tables == (TableSummary("public", "orders", 1000, "-123456789"),)
    assert manifest.size_bytes == 1344
    assert manifest.files["data.dump"].sha256 == "a" * 64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "format version 1"),
        ({"tables": [{"schema": "public"}]}, "name"),
        ({"files": {"data.dump": {"size_bytes": 1, "sha256": "x"}}}, "schema.dump"),
    ],
)
def test_a_bad_manifest_is_a_verification_failure(change: dict[str, Any], message: str) -> None:
    with pytest.raises(VerificationFailed, match=message):
        parse_manifest({**EXAMPLE, **change}, "m.json")


def _dump(parent: Path, name: str, manifest: bool = True) -> None:
    (parent / name).mkdir(parents=True)
    if manifest:
        (parent / name / "manifest.json").write_text(json.dumps(EXAMPLE))


def test_the_newest_complete_dump_is_chosen(tmp_path: Path) -> None:
    app = tmp_path / "app"
    _dump(app, "20261121T030000Z")
    _dump(app, "20261122T030000Z-before-0042")
    _dump(app, "20261123T030000Z", manifest=False)  # not complete
    _dump(app, ".partial-20261124T030000Z")
    _dump(app, "notes")
    assert find_dump(tmp_path, "app").name == "20261122T030000Z-before-0042"
    assert find_dump(tmp_path, "app", "before-0042").name == "20261122T030000Z-before-0042"
    assert find_dump(tmp_path, "app", "20261121T030000Z").name == "20261121T030000Z"


def test_no_dump_or_no_such_label_is_a_precondition(tmp_path: Path) -> None:
    with pytest.raises(PreconditionError, match="no complete dump"):
        find_dump(tmp_path, "app")
    _dump(tmp_path / "app", "20261121T030000Z")
    with pytest.raises(PreconditionError, match="before-0042"):
        find_dump(tmp_path, "app", "before-0042")


def test_compare_names_every_difference() -> None:
    expected = [
        TableSummary("public", "jobs", 10, "5"),
        TableSummary("public", "results", 3, "7"),
        TableSummary("public", "gone", 1, "1"),
    ]
    actual = [
        TableSummary("public", "jobs", 9, "5"),
        TableSummary("public", "results", 3, "8"),
        TableSummary("public", "extra", 0, "0"),
    ]
    assert compare_tables(expected, actual) == [
        "public.gone: missing from the restored database",
        "public.jobs: 9 rows, the manifest says 10",
        "public.results: checksum 8, the manifest says 7",
        "public.extra: restored but not in the manifest",
    ]
    assert compare_tables(expected, list(expected)) == []

"""Logical drills on a dump made by the real dump tool (scripts/pgstack_backup)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from drill_helpers import CLUSTER, DrillDirs, Dumps

from pgstack_drill.cli import main


def logical(dirs: DrillDirs, dumps_root: Path, *extra: str) -> int:
    return main(
        [
            "logical",
            *dirs.common(),
            "--no-progress",
            "--database",
            "app",
            "--dumps-dir",
            str(dumps_root),
            *extra,
        ]
    )


def test_a_good_dump_passes_with_rto_and_phases(app_dump: Dumps, drill_dirs: DrillDirs) -> None:
    assert logical(drill_dirs, app_dump.root) == 0
    report = drill_dirs.report()
    assert report["result"] == "passed"
    assert 0 < report["rto_seconds"] < 3600
    names = [phase["name"] for phase in report["phases"]]
    assert names == [
        "fetch",
        "scratch cluster",
        "globals",
        "schema",
        "data",
        "indexes and constraints",
        "verify",
        "cleanup",
    ]
    tables = {t["table"]: t for t in report["verification"]["tables"]}
    assert set(tables) == {"public.jobs", "public.results"}
    assert all(t["ok"] for t in tables.values())
    assert tables["public.jobs"]["rows"] > 1000
    assert report["source"]["dump"] == str(app_dump.path)
    status = drill_dirs.status_file("logical")
    assert status["last_attempt"]["result"] == "passed"
    assert status["last_success"]["rto_seconds"] == pytest.approx(report["rto_seconds"], abs=0.1)
    assert drill_dirs.leftovers() == []
    for suffix in (".md", ".html"):
        assert list(drill_dirs.reports.glob(f"*{suffix}"))


def _copy(dump: Dumps, tmp: Path) -> Path:
    target = tmp / "dumps" / CLUSTER / "app" / dump.path.name
    shutil.copytree(dump.path, target)
    return target


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


def _rewrite_manifest(dump_dir: Path, change: str) -> None:
    manifest_path = dump_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if change == "rows":
        jobs = next(t for t in manifest["tables"] if t["name"] == "jobs")
        jobs["rows"] += 1
    else:  # the data file cut in half, and the manifest made to agree with it
        data = dump_dir / "data.dump"
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
        import hashlib  # noqa: PLC0415

        manifest["files"]["data.dump"] = {
            "size_bytes": data.stat().st_size,
            "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        }
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "named"),
    [("bytes", "data.dump"), ("rows", "public.jobs"), ("truncated", "pg_restore --section=data")],
)
def test_a_damaged_dump_fails_naming_the_problem(
    app_dump: Dumps,
    drill_dirs: DrillDirs,
    damage: str,
    named: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dump_dir = _copy(app_dump, drill_dirs.scratch.parent)
    if damage == "bytes":
        _flip_bytes(dump_dir / "data.dump")
    else:
        _rewrite_manifest(dump_dir, damage)
    assert logical(drill_dirs, drill_dirs.scratch.parent / "dumps") == 1
    report = drill_dirs.report()
    assert report["result"] == "failed"
    assert named in report["error"]
    assert named in capsys.readouterr().out
    assert drill_dirs.status_file("logical")["last_attempt"]["exit_code"] == 1
    assert drill_dirs.leftovers() == []


def test_no_dump_is_a_precondition_failure(drill_dirs: DrillDirs) -> None:
    empty = drill_dirs.scratch.parent / "dumps"
    (empty / CLUSTER).mkdir(parents=True)
    assert logical(drill_dirs, empty) == 3
    attempt = drill_dirs.status_file("logical")["last_attempt"]
    assert attempt["result"] == "error"
    assert "no complete dump" in attempt["error"]
    assert drill_dirs.leftovers() == []

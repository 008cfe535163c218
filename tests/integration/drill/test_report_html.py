"""The HTML report in a real browser: Debian's headless Chromium draws the timeline and history."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pgstack_drill import report
from pgstack_drill.timing import Phase

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path: Path, *args: str) -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("needs Debian's chromium (make host-deps installs it)")
    result = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


def write_reports(reports: Path) -> Path:
    start = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    path = reports
    for quarter in range(4):
        for kind, rto, rpo in (
            ("logical", 300.0 + 40 * quarter, None),
            ("pitr", 900.0 - 100 * quarter, 6.0 + quarter),
        ):
            moment = start + timedelta(days=91 * quarter, hours=1 if kind == "pitr" else 0)
            phases = [
                Phase("fetch", 0, rto * 0.1),
                Phase("data", rto * 0.1, rto * 0.6),
                Phase("verify", rto * 0.7, rto * 0.3),
                Phase("cleanup", rto, 1.0),
            ]
            doc = report.build(
                drill=kind,
                cluster="db1",
                database="app" if kind == "logical" else None,
                host="backup1",
                started_at=moment,
                finished_at=moment + timedelta(seconds=rto),
                result="passed",
                exit_code=0,
                error=None,
                objectives={"rto_seconds": 3600.0, "rpo_seconds": 300.0},
                phases=phases,
                facts={},
                outcome={
                    "rto_seconds": rto,
                    "rpo_seconds": rpo,
                    "source": {"dump": "d"},
                    "verification": {"tables": [{"table": "public.jobs", "rows": 10, "ok": True}]},
                },
            )
            path = report.write_all(reports, doc)
    return path.with_suffix(".html")


def test_chromium_draws_the_timeline_and_the_history(tmp_path: Path) -> None:
    page = write_reports(tmp_path / "reports")
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    timeline = re.search(r'<svg id="timeline".*?</svg>', dom, re.S)
    assert timeline is not None
    assert len(re.findall(r'<rect class="phase"', timeline.group())) == 4
    rto = re.search(r'<svg id="history-rto".*?</svg>', dom, re.S)
    rpo = re.search(r'<svg id="history-rpo".*?</svg>', dom, re.S)
    assert rto is not None
    assert rpo is not None
    assert len(re.findall(r'<circle class="point"', rto.group())) == 8
    assert len(re.findall(r'<polyline class="series"', rto.group())) == 2
    assert len(re.findall(r'<circle class="point"', rpo.group())) == 4
    assert ">PASSED<" in dom

    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri())
    assert shot.stat().st_size > 10_000

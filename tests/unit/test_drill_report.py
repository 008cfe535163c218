"""Report rendering: JSON content, Markdown, self-contained HTML with the timeline and history."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgstack_drill import report
from pgstack_drill.timing import Phase

PHASES = [Phase("fetch", 0.0, 1.5), Phase("data", 1.5, 20.0, "1.2 GiB"), Phase("verify", 21.5, 4.0)]


def doc(
    started: str = "2026-11-23T03:00:00Z", rto: float | None = 25.5, **kw: Any
) -> dict[str, Any]:
    moment = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    outcome = (
        None
        if rto is None
        else {
            "rto_seconds": rto,
            "rpo_seconds": kw.pop("rpo", None),
            "source": {"dump": "/d/20261123T030000Z"},
            "verification": {"tables": [{"table": "public.jobs", "rows": 5, "ok": True}]},
        }
    )
    fields: dict[str, Any] = {
        "drill": "logical",
        "cluster": "db1",
        "database": "app",
        "host": "backup1",
        "started_at": moment,
        "finished_at": moment,
        "result": "passed",
        "exit_code": 0,
        "error": None,
        "objectives": {"rto_seconds": 3600.0, "rpo_seconds": 300.0},
        "phases": PHASES,
        "facts": {},
        "outcome": outcome,
    }
    fields.update(kw)
    return report.build(**fields)


def test_the_json_report_has_the_verdict_phases_and_source() -> None:
    built = doc()
    assert built["kind"] == "drill_report"
    assert built["rto_seconds"] == 25.5
    assert [p["name"] for p in built["phases"]] == ["fetch", "data", "verify"]
    assert built["source"] == {"dump": "/d/20261123T030000Z"}
    assert report.summary_line(built) == (
        "logical drill of db1/app: PASSED; RTO 25.5 s (objective 3600 s)"
    )


def test_html_is_self_contained_with_one_bar_per_phase_and_a_point_per_drill() -> None:
    history = [
        doc("2026-08-23T03:00:00Z", 30.0),
        doc("2026-09-23T03:00:00Z", rto=None, result="error", exit_code=3, error="no dump"),
        doc(),
    ]
    page = report.render_html(history[-1], history)
    assert len(re.findall(r'<rect class="phase"', page)) == 3
    rto_chart = page[page.index('id="history-rto"') : page.index('id="history-rpo"')]
    assert rto_chart.count('<circle class="point"') == 2  # the error measured no RTO
    assert 'class="objective"' in rto_chart
    assert "no drill measured RPO yet" in page
    assert not re.search(r"(src|href)=|<script|@import|url\(", page)


def test_markdown_lists_phases_verification_and_history() -> None:
    built = doc(result="failed", exit_code=1, error="verification: public.jobs: 4 rows")
    text = report.render_markdown(built, [built])
    assert "**FAILED** (exit 1)" in text
    assert "> verification: public.jobs: 4 rows" in text
    assert "| data | 1.5 s | 20.00 s |" in text
    assert "| public.jobs | 5 |" in text


def test_history_is_the_clusters_readable_reports_oldest_first(tmp_path: Path) -> None:
    newer, older = doc("2026-11-23T03:00:00Z"), doc("2026-10-23T03:00:00Z")
    other = {**doc(), "cluster": "db2"}
    for name, content in (("a.json", newer), ("b.json", older), ("c.json", other)):
        (tmp_path / name).write_text(json.dumps(content))
    (tmp_path / "d.json").write_text("{broken")
    (tmp_path / "e.json").write_text(json.dumps({"version": 1, "kind": "drill"}))
    history = report.load_history(tmp_path, "db1")
    assert [h["started_at"] for h in history] == ["2026-10-23T03:00:00Z", "2026-11-23T03:00:00Z"]


def test_write_all_writes_three_files_and_never_overwrites(tmp_path: Path) -> None:
    first = report.write_all(tmp_path, doc())
    second = report.write_all(tmp_path, doc())
    assert first.name == "20261123T030000Z-logical.json"
    assert second.name == "20261123T030000Z-logical-2.json"
    assert (
        sorted(p.suffix for p in tmp_path.iterdir()) == [".html"] * 2 + [".json"] * 2 + [".md"] * 2
    )
    page = second.with_suffix(".html").read_text()
    assert page.count('<circle class="point"') == 2  # both drills in the RTO history

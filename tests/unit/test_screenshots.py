"""pgstack-screenshots without a browser: the drill history is real drill reports, the layout page
draws every panel of a dashboard and says it is a layout, a missing Chromium is a precondition."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pgstack_screenshots import cli, drill, layout

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_drill_history_is_reports_of_the_drill_tool(tmp_path: Path) -> None:
    page = drill.write_history(tmp_path)
    reports = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert len(reports) == 8
    assert {(r["version"], r["kind"], r["result"]) for r in reports} == {
        (1, "drill_report", "passed")
    }
    text = page.read_text()
    assert page.suffix == ".html"
    assert '<svg id="timeline"' in text
    assert '<svg id="history-rto"' in text


def test_the_layout_draws_every_panel_and_says_what_it_is() -> None:
    dashboard = json.loads((REPO_ROOT / "dashboards/backups.json").read_text())
    page = layout.render(dashboard, "dashboards/backups.json")
    titles = [p["title"] for p in layout.panels(dashboard)]
    assert len(re.findall(r'<div class="panel', page)) == len(titles)
    assert "Not a Grafana screenshot" in page
    assert all(title in page for title in titles)
    assert layout.height(dashboard) > 24 * layout.ROW


def test_without_chromium_nothing_is_written(tmp_path: Path) -> None:
    code = cli.main(["--output-dir", str(tmp_path / "out"), "--chromium", "no-such-browser"])
    assert code == 3
    assert not (tmp_path / "out").exists()

"""pgstack-bench's SVG plots and docs/benchmarks.md, from sample results (no lab, no network)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pgstack_bench import report
from pgstack_bench.model import Curve, Table
from pgstack_bench.plot import linear_ticks, log_ticks, render_svg, write_svg

SVG = "{http://www.w3.org/2000/svg}"

CURVE = Curve(
    name="exporter-scrape-p50",
    title="Scrape latency p50 vs databases",
    x_label="databases",
    y_label="ms",
    series={
        "pgstack-exporter": ((3.0, 8.0), (100.0, 12.0), (1000.0, 40.0)),
        "postgres_exporter": ((3.0, 30.0), (100.0, 90.0), (1000.0, 800.0)),
    },
    log_x=True,
    log_y=True,
)


def _polylines(svg: str) -> list[list[tuple[float, float]]]:
    root = ET.fromstring(svg)  # noqa: S314  (our own output)
    lines = []
    for element in root.iter(f"{SVG}polyline"):
        if element.get("stroke-width") == "2":
            points = element.get("points", "").split()
            lines.append([(float(p.split(",")[0]), float(p.split(",")[1])) for p in points])
    return lines


def test_svg_is_valid_xml_with_title_legend_and_one_line_per_series() -> None:
    svg = render_svg(CURVE)
    root = ET.fromstring(svg)  # noqa: S314  (our own output)
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Scrape latency p50 vs databases" in texts
    assert "pgstack-exporter" in texts
    assert "postgres_exporter" in texts
    assert "databases (log scale)" in texts
    assert len(_polylines(svg)) == 2
    # one marker per point: 3 + 3 on the lines, one per series in the legend
    markers = list(root.iter(f"{SVG}circle")) + list(root.iter(f"{SVG}rect"))
    assert len(markers) - 1 == 8  # the background is a rect too


def test_log_x_axis_spaces_decades_evenly() -> None:
    (line, _) = _polylines(render_svg(CURVE))
    xs = [x for x, _ in line]
    # 3 -> 100 -> 1000: log10 distances 1.52 and 1.0
    assert (xs[1] - xs[0]) / (xs[2] - xs[1]) == pytest.approx(1.523, abs=0.01)
    linear = Curve(**{**CURVE.__dict__, "log_x": False, "log_y": False})
    (line, _) = _polylines(render_svg(linear))
    xs = [x for x, _ in line]
    assert (xs[1] - xs[0]) / (xs[2] - xs[1]) == pytest.approx(97 / 900, abs=0.01)


def test_higher_values_are_drawn_higher() -> None:
    (ours, theirs) = _polylines(render_svg(CURVE))
    assert all(o[1] > t[1] for o, t in zip(ours, theirs, strict=True))  # SVG y grows downwards


def test_log_axis_ignores_values_it_cannot_draw() -> None:
    curve = Curve(**{**CURVE.__dict__, "series": {"a": ((0.0, 1.0), (10.0, 5.0), (100.0, 9.0))}})
    (line,) = _polylines(render_svg(curve))
    assert len(line) == 2


def test_ticks() -> None:
    assert log_ticks(3, 1000) == [1, 10, 100, 1000]
    assert log_ticks(2, 30) == [1, 2, 5, 10, 20, 50, 100]
    assert linear_ticks(0, 97) == [0, 20, 40, 60, 80, 100]


def test_output_is_deterministic(tmp_path: Path) -> None:
    first = write_svg(CURVE, tmp_path / "a").read_bytes()
    second = write_svg(CURVE, tmp_path / "b").read_bytes()
    assert first == second
    assert (tmp_path / "a" / "exporter-scrape-p50.svg").exists()


def _result(name: str, title: str, *, quick: bool, date: str | None) -> dict[str, object]:
    data: dict[str, object] = {
        "elapsed_s": 42.0,
        "quick": quick,
        "name": name,
        "title": title,
        "tables": [
            {
                "title": "Each exporter",
                "columns": ["exporter", "p95 ms", "note"],
                "rows": [
                    {"exporter": "pgstack-exporter", "p95 ms": 12.5, "note": "a | b"},
                    {"exporter": "postgres_exporter", "p95 ms": None, "note": "no answer"},
                ],
            }
        ],
        "curves": [
            {
                "name": f"{name}-curve",
                "title": f"{title} curve",
                "x_label": "x",
                "y_label": "y",
                "series": {"s": [[1, 2], [10, 3]]},
                "log_x": True,
                "log_y": False,
            }
        ],
        "discussion": f"What {name} means.",
        "summary": [],
        "raw": {},
    }
    if date:
        data["date"] = date
    return data


class _Lab:
    def __init__(self, repo: Path) -> None:
        self.repo = repo

    @property
    def results_dir(self) -> Path:
        path = self.repo / ".bench"
        path.mkdir(exist_ok=True)
        return path


def test_doc_lists_every_result_present_in_section_order(tmp_path: Path) -> None:
    lab = _Lab(tmp_path)
    (tmp_path / "docs").mkdir()
    results = lab.results_dir
    (results / "redis.json").write_text(
        json.dumps(_result("redis", "Redis over TLS", quick=True, date="2026-12-01 10:00 UTC"))
    )
    (results / "exporter.json").write_text(
        json.dumps(_result("exporter", "Exporter cost", quick=False, date=None))
    )
    (results / "broken.json").write_text("{not json")
    report.write_doc(lab, machine={"cpu": "Test CPU", "cores": "2"})  # type: ignore[arg-type]

    doc = (tmp_path / "docs/benchmarks.md").read_text()
    assert doc.startswith("# Benchmarks\n")
    assert "make bench QUICK=1" in doc
    assert "| cpu | Test CPU |" in doc
    assert doc.index("## Exporter cost") < doc.index("## Redis over TLS")
    assert "_2026-12-01 10:00 UTC, quick run (smallest sizes), took 42 s._" in doc
    assert "full run" in doc  # the exporter result: dated by its file
    assert "| exporter | p95 ms | note |" in doc
    assert "| pgstack-exporter | 12.5 | a \\| b |" in doc
    assert "| postgres_exporter | — | no answer |" in doc
    assert "![Exporter cost curve](benchmarks/exporter-curve.svg)" in doc
    assert "What redis means." in doc
    assert "| Redis over TLS | quick | 2026-12-01 10:00 UTC | 0.7 min |" in doc
    assert "| all of them |  |  | 1.4 min |" in doc  # each section took 42 s
    for name in ("exporter-curve", "redis-curve"):
        ET.parse(tmp_path / f"docs/benchmarks/{name}.svg")  # noqa: S314


def test_doc_without_results_says_so(tmp_path: Path) -> None:
    doc = report.render_doc([], {"cpu": "x"})
    assert "No results yet" in doc


def test_markdown_table_formats_cells() -> None:
    table = Table("T", ("a", "b"), ({"a": 1234, "b": "x"}, {"a": None}))
    assert report.markdown_table(table).splitlines() == [
        "**T**",
        "",
        "| a | b |",
        "|---|---|",
        "| 1,234 | x |",
        "| — | — |",
    ]


def test_a_single_value_sits_inside_the_plot() -> None:
    curve = Curve(**{**CURVE.__dict__, "log_x": False, "series": {"a": ((48.0, 2.0),)}})
    root = ET.fromstring(render_svg(curve))  # noqa: S314  (our own output)
    (marker, _legend) = root.iter(f"{SVG}circle")
    x = float(marker.get("cx", "0"))
    assert 78 < x < 780 - 120

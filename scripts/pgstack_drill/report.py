"""Drill reports: JSON for machines, Markdown and a self-contained HTML page for people.

Each drill writes ``<reports_dir>/<YYYYmmddTHHMMSSZ>-<drill>.{json,md,html}``. The HTML page has
no script and loads nothing: CSS and the charts (inline SVG) are in the page. The history chart
is drawn from the earlier JSON reports of the same cluster in the same directory.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pgstack_common.files import write_atomic
from pgstack_drill.status import format_time, parse_time
from pgstack_drill.timing import Phase

log = logging.getLogger(__name__)

REPORT_VERSION = 1
REPORT_KIND = "drill_report"
COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "error": "#ef6c00", "running": "#757575"}
KIND_COLOURS = {"logical": "#1565c0", "pitr": "#6a1b9a", "rebuild": "#00838f"}
PHASE_COLOURS = ("#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#4e342e", "#283593", "#558b2f")


def build(
    *,
    drill: str,
    cluster: str,
    database: str | None,
    host: str,
    started_at: datetime,
    finished_at: datetime,
    result: str,
    exit_code: int,
    error: str | None,
    objectives: dict[str, float],
    phases: Sequence[Phase],
    facts: dict[str, Any],
    outcome: dict[str, Any] | None,
) -> dict[str, Any]:
    outcome = outcome or {}
    return {
        "version": REPORT_VERSION,
        "kind": REPORT_KIND,
        "drill": drill,
        "cluster": cluster,
        "database": database,
        "host": host,
        "started_at": format_time(started_at),
        "finished_at": format_time(finished_at),
        "result": result,
        "exit_code": exit_code,
        "error": error,
        "objectives": objectives,
        "rto_seconds": _rounded(outcome.get("rto_seconds")),
        "rpo_seconds": _rounded(outcome.get("rpo_seconds")),
        "rpo_note": outcome.get("rpo_note") or None,
        "phases": [phase.to_json() for phase in phases],
        "source": outcome.get("source") or facts.get("source") or {},
        "verification": outcome.get("verification") or facts.get("verification") or {},
    }


def _rounded(value: Any) -> float | None:
    return round(float(value), 3) if value is not None else None


def summary_line(doc: dict[str, Any]) -> str:
    parts = [
        f"{doc['drill']} drill of {doc['cluster']}"
        + (f"/{doc['database']}" if doc.get("database") else ""),
        doc["result"].upper(),
    ]
    if doc.get("rto_seconds") is not None:
        parts.append(
            f"RTO {doc['rto_seconds']:.1f} s (objective {doc['objectives']['rto_seconds']:.0f} s)"
        )
    if doc.get("rpo_seconds") is not None:
        parts.append(
            f"RPO {doc['rpo_seconds']:.1f} s (objective {doc['objectives']['rpo_seconds']:.0f} s)"
        )
    if doc.get("error"):
        parts.append(doc["error"])
    return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if parts[2:] else "")


# --- files


def report_stem(reports_dir: Path, doc: dict[str, Any]) -> Path:
    stamp = doc["started_at"].replace("-", "").replace(":", "")
    stem = reports_dir / f"{stamp}-{doc['drill']}"
    number = 1
    while stem.with_suffix(".json").exists():
        number += 1
        stem = reports_dir / f"{stamp}-{doc['drill']}-{number}"
    return stem


def write_all(reports_dir: Path, doc: dict[str, Any]) -> Path:
    """Write the three reports; return the JSON report's path."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stem = report_stem(reports_dir, doc)
    json_path = stem.with_suffix(".json")
    write_atomic(json_path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), mode=0o644)
    history = load_history(reports_dir, doc["cluster"], doc["drill"])
    write_atomic(stem.with_suffix(".md"), render_markdown(doc, history).encode(), mode=0o644)
    write_atomic(stem.with_suffix(".html"), render_html(doc, history).encode(), mode=0o644)
    return json_path


def history_group(drill: str) -> str:
    """Rebuild drills time a whole host's rebuild: their history is kept apart from restores'."""
    return "rebuild" if drill == "rebuild" else "restore"


def load_history(reports_dir: Path, cluster: str, drill: str | None = None) -> list[dict[str, Any]]:
    """Every readable drill report of ``cluster`` in ``reports_dir``, oldest first.

    With ``drill``, only the reports of its history group: the restore drills (logical, pitr)
    together, the rebuild drills on their own.
    """
    history = []
    for path in reports_dir.glob("*.json"):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(doc, dict)
            and doc.get("version") == REPORT_VERSION
            and doc.get("kind") == REPORT_KIND
            and doc.get("cluster") == cluster
            and isinstance(doc.get("started_at"), str)
            and (drill is None or history_group(str(doc.get("drill"))) == history_group(drill))
        ):
            history.append(doc)
    return sorted(history, key=lambda d: (d["started_at"], d.get("drill", "")))


# --- Markdown


def _seconds(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1f} s"


def render_markdown(doc: dict[str, Any], history: list[dict[str, Any]]) -> str:
    lines = [f"# {_title(doc)}", ""]
    lines += [
        f"**{doc['result'].upper()}** (exit {doc['exit_code']}) on {doc['host']}, "
        f"{doc['started_at']} to {doc['finished_at']}.",
        "",
    ]
    if doc.get("error"):
        lines += [f"> {doc['error']}", ""]
    lines += ["| measure | value | objective | met |", "|---|---|---|---|"]
    for name, key in (("RTO", "rto_seconds"), ("RPO", "rpo_seconds")):
        value, objective = doc.get(key), doc["objectives"][key]
        met = "n/a" if value is None else ("yes" if value <= objective else "**no**")
        lines.append(f"| {name} | {_seconds(value)} | {objective:.0f} s | {met} |")
    if doc.get("rpo_note"):
        lines += ["", f"RPO: {doc['rpo_note']}"]
    total = max((p["start_seconds"] + p["duration_seconds"] for p in doc["phases"]), default=0.0)
    lines += ["", "## Phases", "", "| phase | start | duration | |", "|---|---|---|---|"]
    for phase in doc["phases"]:
        bar = "#" * max(1, round(40 * phase["duration_seconds"] / total)) if total else ""
        detail = f" {phase['detail']}" if phase.get("detail") else ""
        lines.append(
            f"| {phase['name']} | {phase['start_seconds']:.1f} s | "
            f"{phase['duration_seconds']:.2f} s | `{bar}`{detail} |"
        )
    lines += ["", "## Source", ""]
    lines += [f"- {key}: `{value}`" for key, value in sorted(doc.get("source", {}).items())]
    verification = doc.get("verification", {})
    if verification:
        lines += ["", "## Verification"]
    databases = verification.get("databases", {})
    if databases:
        lines += ["", "| database | tables |", "|---|---|"]
        lines += [f"| {name} | {count} |" for name, count in sorted(databases.items())]
    without_connect = verification.get("without_connect", [])
    if without_connect:
        lines += [
            "",
            f"Not entered (the drill's role has no CONNECT): {', '.join(without_connect)}",
        ]
    tables = verification.get("tables", [])
    if tables:
        lines += ["", "| table | rows | checksum | ok |", "|---|---|---|---|"]
        for table in tables:
            lines.append(
                f"| {table['table']} | {table.get('rows')} | {table.get('checksum', '')} | "
                f"{'yes' if table.get('ok') else '**no**'} |"
            )
    items = [f"- problem: {problem}" for problem in verification.get("problems", [])]
    items += [
        f"- check `{check['sql']}` on {check['database']}: {'passed' if check['ok'] else 'FAILED'}"
        for check in verification.get("checks", [])
    ]
    if items:
        lines += ["", *items]
    lines += [
        "",
        "## History",
        "",
        "| started | drill | result | RTO | RPO |",
        "|---|---|---|---|---|",
    ]
    for old in history:
        lines.append(
            f"| {old['started_at']} | {old['drill']} | {old['result']} | "
            f"{_seconds(old.get('rto_seconds'))} | {_seconds(old.get('rpo_seconds'))} |"
        )
    return "\n".join(lines) + "\n"


def _target(doc: dict[str, Any]) -> str:
    return str(doc["cluster"]) + (f"/{doc['database']}" if doc.get("database") else "")


def _title(doc: dict[str, Any]) -> str:
    if doc["drill"] == "rebuild":
        return f"Rebuild drill: {_target(doc)}"
    return f"Restore drill: {doc['drill']}, {_target(doc)}"


# --- HTML and SVG

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #212121; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
.verdict { display: inline-block; padding: .2em .7em; color: #fff; border-radius: 4px;
           font-weight: 600; }
.error { background: #fff3e0; border-left: 4px solid #ef6c00; padding: .4em .8em; }
svg text { font: 12px system-ui, sans-serif; fill: #212121; }
code { font-size: 90%; }
"""


def render_html(doc: dict[str, Any], history: list[dict[str, Any]]) -> str:
    e = html.escape
    colour = COLOURS.get(doc["result"], "#757575")
    rows = []
    for name, key in (("RTO", "rto_seconds"), ("RPO", "rpo_seconds")):
        value, objective = doc.get(key), doc["objectives"][key]
        met = "n/a" if value is None else ("yes" if value <= objective else "no")
        rows.append(
            f"<tr><td>{name}</td><td>{e(_seconds(value))}</td>"
            f"<td>{objective:.0f} s</td><td>{met}</td></tr>"
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(_title(doc))} {e(doc['started_at'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{e(_title(doc))}</h1>",
        f'<p><span class="verdict" id="verdict" style="background:{colour}">'
        f"{e(doc['result'].upper())}</span> exit {doc['exit_code']} on {e(doc['host'])}, "
        f"{e(doc['started_at'])} to {e(doc['finished_at'])}</p>",
    ]
    if doc.get("error"):
        parts.append(f'<p class="error">{e(doc["error"])}</p>')
    parts.append(
        "<table><tr><th>measure</th><th>value</th><th>objective</th><th>met</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    if doc.get("rpo_note"):
        parts.append(f"<p>RPO: {e(doc['rpo_note'])}</p>")
    parts += ["<h2>Timeline</h2>", timeline_svg(doc["phases"], doc.get("rto_seconds"))]
    parts.append(
        "<table><tr><th>phase</th><th>start</th><th>duration</th><th>detail</th></tr>"
        + "".join(
            f"<tr><td>{e(p['name'])}</td><td>{p['start_seconds']:.1f} s</td>"
            f"<td>{p['duration_seconds']:.2f} s</td><td>{e(p.get('detail', ''))}</td></tr>"
            for p in doc["phases"]
        )
        + "</table>"
    )
    source = doc.get("source", {})
    if source:
        parts.append(
            "<h2>Source</h2><table>"
            + "".join(
                f"<tr><th>{e(str(k))}</th><td><code>{e(str(v))}</code></td></tr>"
                for k, v in sorted(source.items())
            )
            + "</table>"
        )
    verification = doc.get("verification", {})
    if verification:
        parts.append("<h2>Verification</h2>")
        databases = verification.get("databases", {})
        if databases:
            parts.append(
                "<table><tr><th>database</th><th>tables</th></tr>"
                + "".join(
                    f"<tr><td>{e(str(name))}</td><td>{e(str(count))}</td></tr>"
                    for name, count in sorted(databases.items())
                )
                + "</table>"
            )
        without_connect = verification.get("without_connect", [])
        if without_connect:
            parts.append(
                "<p>Not entered (the drill's role has no CONNECT): "
                f"{e(', '.join(without_connect))}</p>"
            )
        tables = verification.get("tables", [])
        if tables:
            parts.append(
                "<table><tr><th>table</th><th>rows</th><th>checksum</th><th>ok</th></tr>"
                + "".join(
                    f"<tr><td>{e(t['table'])}</td><td>{e(str(t.get('rows')))}</td>"
                    f"<td>{e(str(t.get('checksum', '')))}</td>"
                    f"<td>{'yes' if t.get('ok') else 'no'}</td></tr>"
                    for t in tables
                )
                + "</table>"
            )
        items = [f"problem: {p}" for p in verification.get("problems", [])]
        items += [
            f"check {c['sql']} on {c['database']}: {'passed' if c['ok'] else 'FAILED'}"
            for c in verification.get("checks", [])
        ]
        if items:
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>")
    parts += [
        "<h2>History</h2>",
        history_svg(history, "rto_seconds", "RTO", doc["objectives"]["rto_seconds"], "history-rto"),
        history_svg(history, "rpo_seconds", "RPO", doc["objectives"]["rpo_seconds"], "history-rpo"),
        "<table><tr><th>started</th><th>drill</th><th>result</th><th>RTO</th><th>RPO</th></tr>"
        + "".join(
            f"<tr><td>{e(h['started_at'])}</td><td>{e(h['drill'])}</td><td>{e(h['result'])}</td>"
            f"<td>{e(_seconds(h.get('rto_seconds')))}</td><td>{e(_seconds(h.get('rpo_seconds')))}</td></tr>"
            for h in history
        )
        + "</table>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def timeline_svg(phases: Sequence[dict[str, Any]], rto: float | None) -> str:
    """One horizontal bar per phase on a common time axis; the RTO as a vertical line."""
    width, left, row, top = 760, 150, 26, 10
    total = max([p["start_seconds"] + p["duration_seconds"] for p in phases] + [rto or 0, 0.001])
    scale = (width - left - 70) / total  # room for the last bar's label
    height = top + row * len(phases) + 40
    out = [
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="phases of the drill on a time axis">'
    ]
    for index, phase in enumerate(phases):
        y = top + index * row
        x = left + phase["start_seconds"] * scale
        w = max(1.0, phase["duration_seconds"] * scale)
        colour = PHASE_COLOURS[index % len(PHASE_COLOURS)]
        name = html.escape(phase["name"])
        out.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{name}</text>')
        out.append(
            f'<rect class="phase" data-phase="{name}" x="{x:.1f}" y="{y + 3}" '
            f'width="{w:.1f}" height="{row - 8}" fill="{colour}">'
            f"<title>{name}: {phase['duration_seconds']:.2f} s</title></rect>"
        )
        out.append(
            f'<text x="{x + w + 4:.1f}" y="{y + 16}">{phase["duration_seconds"]:.1f} s</text>'
        )
    axis_y = top + row * len(phases) + 6
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - 20}" y2="{axis_y}" stroke="#555"/>')
    for tick in _ticks(total):
        x = left + tick * scale
        out.append(
            f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 5}" stroke="#555"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle">{tick:g} s</text>')
    if rto is not None:
        x = left + rto * scale
        out.append(
            f'<line class="rto" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}" '
            f'stroke="#c62828" stroke-dasharray="4 3"><title>RTO {rto:.1f} s</title></line>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _ticks(total: float) -> list[float]:
    step = 10 ** len(str(int(total))) / 10 if total >= 1 else 0.1
    while total / step > 10:
        step *= 2
    while total / step < 3:
        step /= 2
    count = int(total / step) + 1
    return [round(i * step, 6) for i in range(count)]


def history_svg(
    history: Sequence[dict[str, Any]], key: str, label: str, objective: float, svg_id: str
) -> str:
    """``key`` of each earlier drill over time (one point per drill), with the objective line."""
    width, height, left, top, bottom = 760, 220, 60, 20, 40
    points = [(d, float(d[key])) for d in history if d.get(key) is not None]
    out = [
        f'<svg id="{svg_id}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{label} of earlier drills">'
    ]
    out.append(
        f'<text x="{left}" y="14">{label} per drill (seconds); dashed: objective '
        f"{objective:.0f} s</text>"
    )
    plot_h = height - top - bottom
    highest = max([v for _, v in points] + [objective * 1.1])

    def y_of(value: float) -> float:
        return top + plot_h - (value / highest) * plot_h

    bottom_y = top + plot_h
    out.append(
        f'<line x1="{left}" y1="{bottom_y}" x2="{width - 10}" y2="{bottom_y}" stroke="#555"/>'
    )
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#555"/>')
    out.append(
        f'<line class="objective" x1="{left}" y1="{y_of(objective):.1f}" x2="{width - 10}" '
        f'y2="{y_of(objective):.1f}" stroke="#c62828" stroke-dasharray="6 4"/>'
    )
    for fraction in (0.0, 0.5, 1.0):
        value = highest * fraction
        out.append(
            f'<text x="{left - 6}" y="{y_of(value) + 4:.1f}" text-anchor="end">{value:.0f}</text>'
        )
    if not points:
        out.append(
            f'<text x="{left + 10}" y="{top + plot_h / 2}">no drill measured {label} yet</text>'
        )
    times = [parse_time(doc["started_at"]).timestamp() for doc, _ in points]
    span = (max(times) - min(times)) if times else 0.0
    by_kind: dict[str, list[tuple[float, float]]] = {}
    for moment, (doc, value) in zip(times, points, strict=True):
        # on a time axis; a single drill (or several at one instant) in the middle
        fraction = (moment - min(times)) / span if span else 0.5
        x = left + 10 + fraction * (width - left - 30)
        by_kind.setdefault(doc["drill"], []).append((x, y_of(value)))
        colour = COLOURS.get(doc.get("result", ""), "#757575")
        title = html.escape(f"{doc['started_at']} {doc['drill']} {doc['result']}: {value:.1f} s")
        out.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y_of(value):.1f}" r="4" fill="{colour}">'
            f"<title>{title}</title></circle>"
        )
    for index, (kind, coords) in enumerate(sorted(by_kind.items())):
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            out.append(
                f'<polyline class="series" data-drill="{html.escape(kind)}" points="{path}" '
                f'fill="none" stroke="{KIND_COLOURS.get(kind, "#555")}" stroke-width="1.5"/>'
            )
        out.append(
            f'<text class="legend" x="{width - 160 + 80 * index}" y="14" '
            f'style="fill:{KIND_COLOURS.get(kind, "#555")}">&#9632; {html.escape(kind)}</text>'
        )
    if points:
        out.append(
            f'<text x="{left}" y="{height - 12}">{html.escape(points[0][0]["started_at"])}</text>'
        )
        out.append(
            f'<text x="{width - 10}" y="{height - 12}" text-anchor="end">'
            f"{html.escape(points[-1][0]['started_at'])}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)

"""The panel layout of a dashboard, drawn from its JSON as an HTML page: each panel's box where
Grafana's 24-column grid puts it, with its title, kind and unit. No query runs and nothing comes
from Grafana: the page says it is a layout."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

COLUMN = 40  # pixels per grid column (24 columns)
ROW = 30  # pixels per grid row, Grafana's own cell height
KIND_COLOURS = {"stat": "#e3f2fd", "timeseries": "#f3e5f5", "row": "#eceff1"}

CSS = """
body { font: 13px sans-serif; margin: 16px; color: #212121; background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; }
.label { background: #fff3e0; border: 1px solid #ef6c00; padding: 6px 10px; margin: 8px 0 12px;
         display: inline-block; }
.grid { position: relative; }
.panel { position: absolute; box-sizing: border-box; border: 1px solid #90a4ae; border-radius: 3px;
         padding: 4px 6px; overflow: hidden; }
.panel b { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.panel small { color: #546e7a; }
.row { border: none; border-bottom: 2px solid #546e7a; font-weight: bold; padding-top: 6px; }
"""


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel in grid order, rows included, the panels of a collapsed row after it."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def box(panel: dict[str, Any]) -> str:
    grid = panel["gridPos"]
    kind = str(panel.get("type", "?"))
    style = (
        f"left:{grid['x'] * COLUMN}px;top:{grid['y'] * ROW}px;"
        f"width:{grid['w'] * COLUMN}px;height:{grid['h'] * ROW}px;"
        f"background:{KIND_COLOURS.get(kind, '#fafafa')}"
    )
    title = html.escape(str(panel.get("title", "")))
    if kind == "row":
        repeat = panel.get("repeat")
        note = f" <small>(one row per ${html.escape(repeat)})</small>" if repeat else ""
        return f'<div class="panel row" style="{style}">{title}{note}</div>'
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    detail = html.escape(kind + (f", {unit}" if unit else ""))
    return f'<div class="panel" style="{style}"><b>{title}</b><small>{detail}</small></div>'


def render(dashboard: dict[str, Any], source: str) -> str:
    boxes = list(panels(dashboard))
    bottom = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in boxes), default=0)
    title = html.escape(str(dashboard.get("title", source)))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}: panel layout</title><style>{CSS}</style></head><body>"
        f"<h1>{title}</h1>"
        f'<div class="label">Panel layout drawn from <code>{html.escape(source)}</code> by '
        "pgstack-screenshots: where each panel sits, its title, kind and unit. Not a Grafana "
        "screenshot: no data, no Grafana.</div>"
        f'<div class="grid" style="width:{24 * COLUMN}px;height:{bottom * ROW}px">'
        + "".join(box(p) for p in boxes)
        + "</div></body></html>\n"
    )


def height(dashboard: dict[str, Any]) -> int:
    """Pixels the page needs: the grid and the heading above it."""
    boxes = list(panels(dashboard))
    return max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in boxes), default=0) * ROW + 110

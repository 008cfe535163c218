"""Boards (model.py) to Grafana dashboard JSON, through grafana-foundation-sdk's builders.

Output is deterministic: panel ids count up in board order, grid positions follow from the
panels' sizes, keys are sorted.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

from pgstack_dashboards.model import GREEN, Board, Kind, Panel, Step, Variable

DATASOURCE_VARIABLE = "datasource"
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
# Every board's default time range and refresh.
TIME_FROM = "now-6h"
REFRESH = "1m"
DEFAULT_SIZE = {Kind.STAT: (4, 4), Kind.TIMESERIES: (12, 8)}


def datasource_variable() -> dash.DatasourceVariable:
    return (
        dash.DatasourceVariable(DATASOURCE_VARIABLE)
        .label("Prometheus")
        .type("prometheus")
        .description("The Prometheus that scrapes pgstack-exporter (job pgstack).")
    )


def query_variable(variable: Variable) -> dash.QueryVariable:
    return (
        dash.QueryVariable(variable.name)
        .label(variable.label)
        .datasource(DATASOURCE)
        .query({"query": variable.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(models.VariableOption(selected=True, text="All", value="$__all"))
    )


def _mappings(panel: Panel) -> list[models.ValueMapping]:
    if not panel.mappings:
        return []
    options = {
        value: models.ValueMappingResult(text=text, color=color, index=index)
        for index, (value, text, color) in enumerate(panel.mappings)
    }
    return [models.ValueMap(options=options)]


def _thresholds(panel: Panel) -> dash.ThresholdsConfig:
    steps = panel.steps or (Step(None, GREEN),)
    return (
        dash.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=step.value, color=step.color) for step in steps])
    )


def panel_builder(panel: Panel, panel_id: int) -> stat.Panel | timeseries.Panel:
    builder: stat.Panel | timeseries.Panel
    if panel.kind is Kind.STAT:
        builder = (
            stat.Panel()
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        )
    else:
        builder = (
            timeseries.Panel()
            .legend(
                common_builders.VizLegendOptions()
                .display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM)
                .show_legend(True)
            )
            .fill_opacity(10)
        )
        if panel.steps:
            builder = builder.thresholds_style(
                common_builders.GraphThresholdsStyleConfig().mode(
                    common.GraphThresholdsStyleMode.LINE
                )
            )
    width, height = DEFAULT_SIZE[panel.kind]
    builder = (
        builder.id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .span(panel.width or width)
        .height(panel.height or height)
        .unit(panel.unit)
        .thresholds(_thresholds(panel))
    )
    for index, query in enumerate(panel.queries):
        target = (
            prometheus.Dataquery()
            .expr(query.expr)
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
        )
        if query.legend:
            target = target.legend_format(query.legend)
        target = target.instant() if panel.kind is Kind.STAT else target.range()
        builder = builder.with_target(target)
    if panel.mappings:
        builder = builder.mappings(_mappings(panel))
    if panel.no_value is not None:
        builder = builder.no_value(panel.no_value)
    if panel.decimals is not None:
        builder = builder.decimals(panel.decimals)
    if panel.min_value is not None:
        builder = builder.min(panel.min_value)
    if panel.max_value is not None:
        builder = builder.max(panel.max_value)
    return builder


def dashboard(board: Board) -> dict[str, Any]:
    """The dashboard's JSON model as plain data."""
    builder = (
        dash.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(list(board.tags))
        .editable()
        .timezone("browser")
        .time(TIME_FROM, "now")
        .refresh(REFRESH)
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
    )
    for variable in board.variables:
        builder = builder.with_variable(query_variable(variable))
    panel_id = 0
    for row in board.rows:
        panel_id += 1
        row_builder = dash.Row(row.title).id(panel_id)
        if row.repeat:
            row_builder = row_builder.repeat(row.repeat)
        builder = builder.with_row(row_builder)
        for panel in row.panels:
            panel_id += 1
            builder = builder.with_panel(panel_builder(panel, panel_id))
    data: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return data


def render(board: Board) -> str:
    """The dashboard as the file holds it: sorted keys, two-space indent, a final newline."""
    return json.dumps(dashboard(board), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

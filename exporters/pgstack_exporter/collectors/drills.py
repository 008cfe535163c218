"""drills: the last run, result and measured RTO/RPO of every restore drill (``drill-*.json``).

Off when the configuration says ``status_files.drills: false``.
"""

from __future__ import annotations

from pathlib import Path

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import StatusFiles
from pgstack_exporter.metrics import Sample, gauge, sample
from pgstack_exporter.runtime import Clock
from pgstack_exporter.status_files import (
    FILE_VALID,
    KIND,
    FormatError,
    document,
    field_number,
    field_object,
    field_string,
    opt_time,
    parse_time,
    read_all,
)

DRILL = ("cluster", "drill", "database")
DRILL_RUN = gauge(
    "drill_last_run_timestamp_seconds", "When the last restore drill started.", *DRILL
)
DRILL_SUCCESS = gauge(
    "drill_last_success_timestamp_seconds",
    "When the last passed drill finished (0: never).",
    *DRILL,
)
DRILL_RTO = gauge(
    "drill_rto_seconds", "Recovery time measured by the last drill that measured it.", *DRILL
)
DRILL_RPO = gauge(
    "drill_rpo_seconds",
    "Recovery point (data lost) measured by the last drill that measured it.",
    *DRILL,
)
DRILL_RTO_OBJECTIVE = gauge("drill_rto_objective_seconds", "The drill's RTO objective.", *DRILL)
DRILL_RPO_OBJECTIVE = gauge("drill_rpo_objective_seconds", "The drill's RPO objective.", *DRILL)
DRILL_RESULT = gauge(
    "drill_last_result",
    "1 for the result of the last drill (running, passed, failed, error).",
    *DRILL,
    "result",
)


DRILL_RESULTS = ("running", "passed", "failed", "error")
DRILL_KINDS = ("logical", "pitr", "rebuild")
PATTERN = "drill-*.json"


def drill_samples(path: Path) -> list[Sample]:
    data = document(path, "drill")
    drill = field_string(data, "drill")
    if drill not in DRILL_KINDS:
        raise FormatError(f"drill: unknown {drill!r}")
    database = data.get("database")
    if database is not None and not isinstance(database, str):
        raise FormatError("database: not a string or null")
    labels = {"cluster": field_string(data, "cluster"), "drill": drill, "database": database or ""}
    out: list[Sample] = []
    objectives = field_object(data.get("objectives"), "objectives") or {}
    for spec, key in ((DRILL_RTO_OBJECTIVE, "rto_seconds"), (DRILL_RPO_OBJECTIVE, "rpo_seconds")):
        value = field_number(objectives.get(key), f"objectives.{key}")
        if value is not None:
            out.append(sample(spec, value, **labels))
    attempt = field_object(data.get("last_attempt"), "last_attempt")
    success = field_object(data.get("last_success"), "last_success")
    if attempt is not None:
        result = attempt.get("result")
        if result not in DRILL_RESULTS:
            raise FormatError(f"last_attempt.result: unknown {result!r}")
        out.append(sample(DRILL_RUN, parse_time(attempt.get("started_at")), **labels))
        out += [sample(DRILL_RESULT, float(r == result), result=r, **labels) for r in DRILL_RESULTS]
    # RTO/RPO: the last attempt's measurement; when it has none, the last measured one (files
    # without last_measured: the last success's).
    measured = field_object(data.get("last_measured"), "last_measured")
    for spec, key in ((DRILL_RTO, "rto_seconds"), (DRILL_RPO, "rpo_seconds")):
        for source in (attempt, measured, success):
            value = field_number((source or {}).get(key), key)
            if value is not None:
                out.append(sample(spec, value, **labels))
                break
    finished = opt_time(success.get("finished_at")) if success is not None else None
    out.append(sample(DRILL_SUCCESS, finished or 0.0, **labels))
    return out


def factory(settings: StatusFiles, _clock: Clock) -> Collect[list[Path]] | None:
    if not settings.drills:
        return None
    return lambda paths: read_all(paths, PATTERN, drill_samples)


COLLECTOR = CollectorSpec(
    name="drills",
    kind=KIND,
    metrics=(
        FILE_VALID,
        DRILL_RUN,
        DRILL_SUCCESS,
        DRILL_RTO,
        DRILL_RPO,
        DRILL_RTO_OBJECTIVE,
        DRILL_RPO_OBJECTIVE,
        DRILL_RESULT,
    ),
    factory=factory,
)

"""The status files of the pg_dump runner and of the restore drills (both JSON, format version 1).

Read here from their documented formats (docs/backup.md, docs/metrics.md), never by importing the
writers: ``pg_dump-<cluster>-<database>.json`` and ``drill-<cluster>-<kind>.json`` in one directory.
A file that cannot be read or parsed shows as ``pgstack_status_file_valid 0``, never as an error.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgstack_exporter.metrics import MetricSpec, Sample, gauge, sample
from pgstack_exporter.runtime import Clock, Executor, Health, PartRecorder, ScrapeResult, Target

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DUMP = ("cluster", "database")
DRILL = ("cluster", "drill", "database")

FILE_VALID = gauge(
    "status_file_valid", "1 when a status file parses as format version 1, else 0.", "file"
)
DUMP_ATTEMPT = gauge(
    "dump_last_attempt_timestamp_seconds", "When the last pg_dump attempt started.", *DUMP
)
DUMP_SUCCESS = gauge(
    "dump_last_success_timestamp_seconds",
    "When the last successful pg_dump finished (0: never).",
    *DUMP,
)
DUMP_DURATION = gauge(
    "dump_last_duration_seconds", "Wall time of the last finished pg_dump attempt.", *DUMP
)
DUMP_SIZE = gauge("dump_last_success_size_bytes", "Bytes of the last successful dump.", *DUMP)
DUMP_STATUS = gauge(
    "dump_last_attempt_status",
    "1 for the exit status of the last attempt (running, success, failed).",
    *DUMP,
    "status",
)
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

DUMP_METRICS: tuple[MetricSpec, ...] = (
    DUMP_ATTEMPT,
    DUMP_SUCCESS,
    DUMP_DURATION,
    DUMP_SIZE,
    DUMP_STATUS,
)
DRILL_METRICS: tuple[MetricSpec, ...] = (
    DRILL_RUN,
    DRILL_SUCCESS,
    DRILL_RTO,
    DRILL_RPO,
    DRILL_RTO_OBJECTIVE,
    DRILL_RPO_OBJECTIVE,
    DRILL_RESULT,
)
METRICS: tuple[MetricSpec, ...] = (FILE_VALID, *DUMP_METRICS, *DRILL_METRICS)

DUMP_STATUSES = ("running", "success", "failed")
DRILL_RESULTS = ("running", "passed", "failed", "error")
DRILL_KINDS = ("logical", "pitr", "rebuild")


class FormatError(ValueError):
    pass


def parse_time(value: Any) -> float:
    if not isinstance(value, str):
        raise FormatError(f"not a timestamp: {value!r}")
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise FormatError(f"not a UTC timestamp YYYY-MM-DDTHH:MM:SSZ: {value!r}") from None
    return moment.timestamp()


def _opt_time(value: Any) -> float | None:
    return None if value is None else parse_time(value)


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"{what}: not a number: {value!r}")
    return float(value)


def _object(value: Any, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FormatError(f"{what}: not an object")
    return value


def _string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise FormatError(f"{key}: not a string")
    return value


def _document(path: Path, kind: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"unreadable: {error}") from None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise FormatError("not a document of format version 1")
    if data.get("kind", kind) != kind:
        raise FormatError(f"kind is {data.get('kind')!r}, not {kind!r}")
    return data


def dump_samples(path: Path) -> list[Sample]:
    data = _document(path, "pg_dump")
    labels = {"cluster": _string(data, "cluster"), "database": _string(data, "database")}
    attempt = _object(data.get("last_attempt"), "last_attempt")
    success = _object(data.get("last_success"), "last_success")
    out: list[Sample] = []
    if attempt is not None:
        status = attempt.get("exit_status")
        if status not in DUMP_STATUSES:
            raise FormatError(f"last_attempt.exit_status: unknown {status!r}")
        out.append(sample(DUMP_ATTEMPT, parse_time(attempt.get("started_at")), **labels))
        out += [sample(DUMP_STATUS, float(s == status), status=s, **labels) for s in DUMP_STATUSES]
        duration = _number(attempt.get("duration_seconds"), "last_attempt.duration_seconds")
        if duration is not None:
            out.append(sample(DUMP_DURATION, duration, **labels))
    finished = None
    if success is not None:
        finished = _opt_time(success.get("finished_at"))
        size = _number(success.get("size_bytes"), "last_success.size_bytes")
        if size is not None:
            out.append(sample(DUMP_SIZE, size, **labels))
    out.append(sample(DUMP_SUCCESS, finished or 0.0, **labels))
    return out


def drill_samples(path: Path) -> list[Sample]:
    data = _document(path, "drill")
    drill = _string(data, "drill")
    if drill not in DRILL_KINDS:
        raise FormatError(f"drill: unknown {drill!r}")
    database = data.get("database")
    if database is not None and not isinstance(database, str):
        raise FormatError("database: not a string or null")
    labels = {"cluster": _string(data, "cluster"), "drill": drill, "database": database or ""}
    out: list[Sample] = []
    objectives = _object(data.get("objectives"), "objectives") or {}
    for spec, key in ((DRILL_RTO_OBJECTIVE, "rto_seconds"), (DRILL_RPO_OBJECTIVE, "rpo_seconds")):
        value = _number(objectives.get(key), f"objectives.{key}")
        if value is not None:
            out.append(sample(spec, value, **labels))
    attempt = _object(data.get("last_attempt"), "last_attempt")
    success = _object(data.get("last_success"), "last_success")
    if attempt is not None:
        result = attempt.get("result")
        if result not in DRILL_RESULTS:
            raise FormatError(f"last_attempt.result: unknown {result!r}")
        out.append(sample(DRILL_RUN, parse_time(attempt.get("started_at")), **labels))
        out += [sample(DRILL_RESULT, float(r == result), result=r, **labels) for r in DRILL_RESULTS]
    # RTO/RPO: the last attempt's measurement; when it has none, the last measured one (files
    # without last_measured: the last success's).
    measured = _object(data.get("last_measured"), "last_measured")
    for spec, key in ((DRILL_RTO, "rto_seconds"), (DRILL_RPO, "rpo_seconds")):
        for source in (attempt, measured, success):
            value = _number((source or {}).get(key), key)
            if value is not None:
                out.append(sample(spec, value, **labels))
                break
    finished = _opt_time(success.get("finished_at")) if success is not None else None
    out.append(sample(DRILL_SUCCESS, finished or 0.0, **labels))
    return out


class StatusFilesTarget(Target):
    """The status directory; ``up`` is 1 while it can be listed."""

    kind = "status_files"

    def __init__(
        self,
        directory: Path,
        clock: Clock,
        executor: Executor,
        dumps: bool = True,
        drills: bool = True,
    ) -> None:
        super().__init__(str(directory), 5.0, clock, executor)
        self.directory = directory
        self._readers = []
        if dumps:
            self._readers.append(("dumps", "pg_dump-*.json", dump_samples))
        if drills:
            self._readers.append(("drills", "drill-*.json", drill_samples))

    def scrape(self) -> ScrapeResult:
        recorder = PartRecorder(self.clock, self.name)
        try:
            names = sorted(p.name for p in self.directory.iterdir())
        except OSError as error:
            for collector, _pattern, _reader in self._readers:
                recorder.fail(collector, self.clock.monotonic())
            message = f"cannot list {self.directory}: {error.strerror}"
            log.warning("status files: %s", message)
            return ScrapeResult(
                up=False, parts=recorder.parts, health=Health(up=False, message=message)
            )
        for collector, pattern, reader in self._readers:
            paths = [self.directory / n for n in names if Path(n).match(pattern)]
            recorder.run(collector, lambda paths=paths, reader=reader: _read_all(paths, reader))  # type: ignore[misc]
        return ScrapeResult(
            up=True, samples=tuple(recorder.samples), parts=recorder.parts, health=Health(up=True)
        )


def _read_all(paths: list[Path], reader: Any) -> list[Sample]:
    out: list[Sample] = []
    for path in paths:
        try:
            samples: list[Sample] = reader(path)
        except (FormatError, KeyError, TypeError) as error:
            log.warning("status file %s: %s", path.name, error)
            out.append(sample(FILE_VALID, 0.0, file=path.name))
            continue
        out.append(sample(FILE_VALID, 1.0, file=path.name))
        out += samples
    return out

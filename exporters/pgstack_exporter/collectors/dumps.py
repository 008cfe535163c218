"""dumps: the last attempt and the last success of every pg_dump (``pg_dump-*.json``).

Off when the configuration says ``status_files.dumps: false``.
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

DUMP = ("cluster", "database")
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

DUMP_STATUSES = ("running", "success", "failed")
PATTERN = "pg_dump-*.json"


def dump_samples(path: Path) -> list[Sample]:
    data = document(path, "pg_dump")
    labels = {"cluster": field_string(data, "cluster"), "database": field_string(data, "database")}
    attempt = field_object(data.get("last_attempt"), "last_attempt")
    success = field_object(data.get("last_success"), "last_success")
    out: list[Sample] = []
    if attempt is not None:
        status = attempt.get("exit_status")
        if status not in DUMP_STATUSES:
            raise FormatError(f"last_attempt.exit_status: unknown {status!r}")
        out.append(sample(DUMP_ATTEMPT, parse_time(attempt.get("started_at")), **labels))
        out += [sample(DUMP_STATUS, float(s == status), status=s, **labels) for s in DUMP_STATUSES]
        duration = field_number(attempt.get("duration_seconds"), "last_attempt.duration_seconds")
        if duration is not None:
            out.append(sample(DUMP_DURATION, duration, **labels))
    finished = None
    if success is not None:
        finished = opt_time(success.get("finished_at"))
        size = field_number(success.get("size_bytes"), "last_success.size_bytes")
        if size is not None:
            out.append(sample(DUMP_SIZE, size, **labels))
    out.append(sample(DUMP_SUCCESS, finished or 0.0, **labels))
    return out


def factory(settings: StatusFiles, _clock: Clock) -> Collect[list[Path]] | None:
    if not settings.dumps:
        return None
    return lambda paths: read_all(paths, PATTERN, dump_samples)


COLLECTOR = CollectorSpec(
    name="dumps",
    kind=KIND,
    metrics=(FILE_VALID, DUMP_ATTEMPT, DUMP_SUCCESS, DUMP_DURATION, DUMP_SIZE, DUMP_STATUS),
    factory=factory,
)

"""The status files of the pg_dump runner and of the restore drills (both JSON, format version 1).

Read from their documented formats (docs/backup.md, docs/metrics.md), never by importing the
writers: ``pg_dump-<cluster>-<database>.json`` and ``drill-<cluster>-*.json`` in one directory,
by the collectors ``dumps`` and ``drills`` (``collectors/``); this module lists the directory and
holds what both read with. A file that cannot be read or parsed shows as
``pgstack_status_file_valid 0``, never as an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgstack_exporter.collector import Bound
from pgstack_exporter.metrics import Sample, gauge, sample
from pgstack_exporter.runtime import Clock, Executor, Health, PartRecorder, ScrapeResult, Target

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
KIND = "status_files"

FILE_VALID = gauge(
    "status_file_valid", "1 when a status file parses as format version 1, else 0.", "file"
)


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


def opt_time(value: Any) -> float | None:
    return None if value is None else parse_time(value)


def field_number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"{what}: not a number: {value!r}")
    return float(value)


def field_object(value: Any, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FormatError(f"{what}: not an object")
    return value


def field_string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise FormatError(f"{key}: not a string")
    return value


def document(path: Path, kind: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"unreadable: {error}") from None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise FormatError("not a document of format version 1")
    if data.get("kind", kind) != kind:
        raise FormatError(f"kind is {data.get('kind')!r}, not {kind!r}")
    return data


class StatusFilesTarget(Target):
    """The status directory; ``up`` is 1 while it can be listed. Its collectors get the listing."""

    kind = KIND

    def __init__(
        self,
        directory: Path,
        clock: Clock,
        executor: Executor,
        collectors: Sequence[Bound[list[Path]]],
    ) -> None:
        super().__init__(str(directory), 5.0, clock, executor)
        self.directory = directory
        self.collectors = tuple(collectors)

    def scrape(self) -> ScrapeResult:
        recorder = PartRecorder(self.clock, self.name)
        start = self.clock.monotonic()
        try:
            paths = sorted(self.directory.iterdir())
        except OSError as error:
            message = f"cannot list {self.directory}: {error.strerror}"
            for collector in self.collectors:
                recorder.fail(collector.name, start)
            log.warning("status files: %s", message)
            return ScrapeResult(
                up=False, parts=recorder.parts, health=Health(up=False, message=message)
            )
        for collector in self.collectors:
            recorder.run(collector.name, lambda c=collector: c.collect(paths))  # type: ignore[misc]
        return ScrapeResult(
            up=True, samples=tuple(recorder.samples), parts=recorder.parts, health=Health(up=True)
        )


def read_all(
    paths: Iterable[Path], pattern: str, reader: Callable[[Path], list[Sample]]
) -> list[Sample]:
    """The samples of every file matching ``pattern``; a file that does not parse shows as
    ``pgstack_status_file_valid 0`` (and is logged), never as a failure."""
    out: list[Sample] = []
    for path in paths:
        if not path.match(pattern):
            continue
        try:
            samples = reader(path)
        except (FormatError, KeyError, TypeError) as error:
            log.warning("status file %s: %s", path.name, error)
            out.append(sample(FILE_VALID, 0.0, file=path.name))
            continue
        out.append(sample(FILE_VALID, 1.0, file=path.name))
        out += samples
    return out

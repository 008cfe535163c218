"""Retention: which dumps to delete (a pure function of their times, the age window and a minimum
count) and deleting them from a database's dump directory."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pgstack_common.files import fsync_path
from pgstack_common.manifest import MANIFEST_FILE

log = logging.getLogger(__name__)

# A finished dump holds its manifest; a run writes into PARTIAL_PREFIX<final name> until it is read
# back whole and renamed.
PARTIAL_PREFIX = ".partial-"

# Final names of scheduled dumps; labelled dumps (<stamp>-<label>) are never pruned.
DUMP_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)$")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, order=True)
class Dump:
    taken_at: datetime
    name: str


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def parse_name(name: str) -> Dump | None:
    """The dump a directory name stands for, or None for anything that is not a scheduled dump."""
    match = DUMP_NAME.match(name)
    if match is None:
        return None
    taken_at = datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
    return Dump(taken_at=taken_at, name=name)


def select_expired(
    dumps: Iterable[Dump], *, now: datetime, max_age: timedelta, min_count: int
) -> list[Dump]:
    """The dumps to delete, oldest first.

    Kept: the newest dump whatever its age; the ``min_count`` newest; every dump not older than
    ``max_age``. Everything else expires.
    """
    if min_count < 0:
        raise ValueError("min_count must be 0 or more")
    if max_age < timedelta(0):
        raise ValueError("max_age must not be negative")
    newest_first = sorted(set(dumps), reverse=True)
    keep_count = max(min_count, 1)
    expired = [
        dump
        for index, dump in enumerate(newest_first)
        if index >= keep_count and now - dump.taken_at > max_age
    ]
    return sorted(expired)


def prune(parent: Path, *, now: datetime, max_age: timedelta, min_count: int) -> list[str]:
    """Delete the expired scheduled dumps in ``parent`` and leftovers of killed runs.

    The caller holds the dump lock, so no run is writing a partial directory. Returns the names
    deleted. Labelled dumps and directories without a manifest are never touched.
    """
    if not parent.is_dir():
        return []
    deleted = []
    dumps = []
    for entry in parent.iterdir():
        if entry.name.startswith(PARTIAL_PREFIX):
            shutil.rmtree(entry)
            deleted.append(entry.name)
            continue
        dump = parse_name(entry.name)
        if dump is not None and (entry / MANIFEST_FILE).is_file():
            dumps.append(dump)
    for dump in select_expired(dumps, now=now, max_age=max_age, min_count=min_count):
        shutil.rmtree(parent / dump.name)
        deleted.append(dump.name)
    if deleted:
        fsync_path(parent)
        log.info("retention in %s deleted %s", parent, ", ".join(sorted(deleted)))
    return deleted

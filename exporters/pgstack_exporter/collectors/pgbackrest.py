"""pgbackrest: stanzas, newest backups, repository size and archived WAL, from the last answer
of ``pgbackrest --output=json info`` (run in the background, see ``pgbackrest.py``)."""

from __future__ import annotations

from typing import Any

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PgBackRest as PgBackRestConfig
from pgstack_exporter.metrics import Sample, gauge, sample
from pgstack_exporter.pgbackrest import KIND, InfoAnswer
from pgstack_exporter.runtime import Clock, Failed, first_line

S = ("stanza",)
INFO_SUCCESS = gauge("pgbackrest_info_success", "1 when the last pgbackrest info run succeeded.")
INFO_AGE = gauge(
    "pgbackrest_info_age_seconds",
    "Age of the pgbackrest info answer served (from its last successful run).",
)
STANZA_STATUS = gauge(
    "pgbackrest_stanza_status", "Status code of a stanza as pgbackrest info reports it (0: ok).", *S
)
LAST_BACKUP = gauge(
    "pgbackrest_last_backup_completion_timestamp_seconds",
    "When the newest backup of a type finished.",
    *S,
    "type",
)
BACKUP_SIZE = gauge(
    "pgbackrest_last_backup_size_bytes", "Database size of the newest backup of a type.", *S, "type"
)
BACKUP_REPO_SIZE = gauge(
    "pgbackrest_last_backup_repository_bytes",
    "Bytes the newest backup of a type added to the repository.",
    *S,
    "type",
)
REPO_SIZE = gauge(
    "pgbackrest_repository_size_bytes",
    "Bytes of all backups of a stanza in the repository (sum of their deltas; WAL not included).",
    *S,
)
BACKUPS = gauge("pgbackrest_backups", "Backups of a stanza in the repository, by type.", *S, "type")
ARCHIVE_WAL = gauge(
    "pgbackrest_archive_wal_position_bytes",
    "WAL position of the oldest (min) and newest (max) archived segment, 16 MiB segments.",
    *S,
    "bound",
)
ARCHIVE_TIMELINE = gauge(
    "pgbackrest_archive_timeline",
    "Timeline of the oldest (min) and newest (max) archived segment.",
    *S,
    "bound",
)


BACKUP_TYPES = ("full", "diff", "incr")
WAL_SEGMENT_BYTES = 16 * 1024 * 1024


def wal_position(segment: str) -> tuple[int, int]:
    """(timeline, byte position) of a WAL segment name such as 000000010000000000000005."""
    if len(segment) != 24:
        raise ValueError(f"not a WAL segment name: {segment!r}")
    timeline, log_id, seg = (int(segment[i : i + 8], 16) for i in (0, 8, 16))
    return timeline, log_id * 0x100000000 + seg * WAL_SEGMENT_BYTES


def info_samples(document: Any) -> list[Sample]:
    if not isinstance(document, list):
        raise ValueError("pgbackrest info: not a list of stanzas")
    out: list[Sample] = []
    for stanza in document:
        name = str(stanza["name"])
        out.append(
            sample(STANZA_STATUS, float(stanza.get("status", {}).get("code", -1)), stanza=name)
        )
        backups: list[dict[str, Any]] = list(stanza.get("backup") or [])
        repo_total = sum(float(b["info"]["repository"].get("delta", 0)) for b in backups)
        out.append(sample(REPO_SIZE, repo_total, stanza=name))
        for kind in BACKUP_TYPES:
            of_kind = [b for b in backups if b.get("type") == kind]
            out.append(sample(BACKUPS, float(len(of_kind)), stanza=name, type=kind))
            if not of_kind:
                continue
            newest = max(of_kind, key=lambda b: b["timestamp"]["stop"])
            out.append(
                sample(LAST_BACKUP, float(newest["timestamp"]["stop"]), stanza=name, type=kind)
            )
            out.append(sample(BACKUP_SIZE, float(newest["info"]["size"]), stanza=name, type=kind))
            repo_delta = float(newest["info"]["repository"]["delta"])
            out.append(sample(BACKUP_REPO_SIZE, repo_delta, stanza=name, type=kind))
        archives = [a for a in stanza.get("archive") or [] if a.get("min") and a.get("max")]
        if archives:
            current = archives[-1]
            for bound in ("min", "max"):
                timeline, position = wal_position(str(current[bound]))
                out.append(sample(ARCHIVE_WAL, float(position), stanza=name, bound=bound))
                out.append(sample(ARCHIVE_TIMELINE, float(timeline), stanza=name, bound=bound))
    return out


def factory(_config: PgBackRestConfig, _clock: Clock) -> Collect[InfoAnswer]:
    def collect(answer: InfoAnswer) -> list[Sample]:
        # The last good answer is served while a newer run fails; the collector fails then.
        try:
            out = [] if answer.document is None else info_samples(answer.document)
        except (KeyError, TypeError, ValueError) as error:
            raise Failed(
                f"unexpected pgbackrest info: {first_line(error)}", [sample(INFO_SUCCESS, 0.0)]
            ) from None
        out.append(sample(INFO_SUCCESS, 1.0 if answer.ok else 0.0))
        if answer.age_seconds is not None:
            out.append(sample(INFO_AGE, answer.age_seconds))
        if not answer.ok:
            raise Failed(answer.error, out)
        return out

    return collect


COLLECTOR = CollectorSpec(
    name="pgbackrest",
    kind=KIND,
    metrics=(
        INFO_SUCCESS,
        INFO_AGE,
        STANZA_STATUS,
        LAST_BACKUP,
        BACKUP_SIZE,
        BACKUP_REPO_SIZE,
        REPO_SIZE,
        BACKUPS,
        ARCHIVE_WAL,
        ARCHIVE_TIMELINE,
    ),
    factory=factory,
)

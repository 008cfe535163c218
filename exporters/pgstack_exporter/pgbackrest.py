"""pgBackRest's repository, from ``pgbackrest --output=json info``.

``info`` reads the whole repository and can take seconds, so it runs in the background at most
every ``interval_seconds``; scrapes serve the last answer and expose its age.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from pgstack_exporter.config import PgBackRest as PgBackRestConfig
from pgstack_exporter.metrics import MetricSpec, Sample, gauge, sample
from pgstack_exporter.runtime import Clock, Executor, Health, PartRecorder, ScrapeResult, Target

log = logging.getLogger(__name__)

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

METRICS: tuple[MetricSpec, ...] = (
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
)

BACKUP_TYPES = ("full", "diff", "incr")
WAL_SEGMENT_BYTES = 16 * 1024 * 1024


class CommandRunner(Protocol):
    def __call__(self, argv: Sequence[str], timeout: float) -> str:
        """stdout of ``argv``; raises on a non-zero exit or after ``timeout`` seconds."""
        ...


def run_command(argv: Sequence[str], timeout: float) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"exit {done.returncode}: {lines[-1] if lines else ''}")
    return done.stdout


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


class PgBackRestTarget(Target):
    kind = "pgbackrest"

    def __init__(
        self, config: PgBackRestConfig, run: CommandRunner, clock: Clock, executor: Executor
    ) -> None:
        super().__init__("repository", 2.0, clock, executor)
        self.config = config
        self._command = run
        self._state_lock = threading.Lock()
        self._refreshing = False
        self._attempted_at: float | None = None  # monotonic
        self._samples: list[Sample] = []
        self._success_at: float | None = None  # monotonic
        self._last_ok = False
        self._error = "not run yet"

    def argv(self) -> list[str]:
        argv = [
            self.config.command,
            "--output=json",
            "--log-level-console=warn",
            "--log-level-file=off",
        ]
        if self.config.config_file is not None:
            argv.append(f"--config={self.config.config_file}")
        return [*argv, "info"]

    def refresh(self) -> None:
        """Run ``pgbackrest info`` once (on a background thread) and keep its answer."""
        with self._state_lock:
            self._attempted_at = self.clock.monotonic()
        try:
            output = self._command(self.argv(), self.config.timeout_seconds)
            samples = info_samples(json.loads(output))
        except Exception as error:
            message = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            log.warning("pgbackrest info failed: %s", message)
            with self._state_lock:
                self._last_ok, self._error, self._refreshing = False, message, False
            return
        with self._state_lock:
            self._samples, self._success_at = samples, self.clock.monotonic()
            self._last_ok, self._refreshing = True, False

    def _maybe_refresh(self) -> None:
        now = self.clock.monotonic()
        with self._state_lock:
            due = (
                self._attempted_at is None
                or now - self._attempted_at >= self.config.interval_seconds
            )
            if self._refreshing or not due:
                return
            self._refreshing, self._attempted_at = True, now
        threading.Thread(target=self.refresh, name="pgbackrest-info", daemon=True).start()

    def scrape(self) -> ScrapeResult:
        self._maybe_refresh()
        recorder = PartRecorder(self.clock, self.name)
        start = self.clock.monotonic()
        with self._state_lock:
            samples, success_at, ok, error = (
                list(self._samples),
                self._success_at,
                self._last_ok,
                self._error,
            )
        out = [*samples, sample(INFO_SUCCESS, 1.0 if ok else 0.0)]
        if success_at is not None:
            out.append(sample(INFO_AGE, self.clock.monotonic() - success_at))
        recorder.run("pgbackrest", lambda: out)
        if not ok:
            recorder.fail("pgbackrest", start)
        return ScrapeResult(
            up=success_at is not None,
            samples=tuple(recorder.samples),
            parts=recorder.parts,
            health=Health(up=ok, message=None if ok else error),
        )

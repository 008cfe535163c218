"""pgBackRest's repository, from ``pgbackrest --output=json info``.

``info`` reads the whole repository and can take seconds, so it runs in the background at most
every ``interval_seconds``; scrapes hand the last answer (and its age) to the collector
(``collectors/pgbackrest.py``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from pgstack_exporter.collector import Bound
from pgstack_exporter.config import PgBackRest as PgBackRestConfig
from pgstack_exporter.runtime import (
    Clock,
    Executor,
    Health,
    PartRecorder,
    ScrapeResult,
    Target,
    first_line,
)

log = logging.getLogger(__name__)

KIND = "pgbackrest"


@dataclasses.dataclass(frozen=True)
class InfoAnswer:
    """What a scrape hands the collector: the last document ``info`` printed (None before the
    first success), whether the last run succeeded (and why not), and the document's age."""

    document: Any
    ok: bool
    error: str
    age_seconds: float | None


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


class PgBackRestTarget(Target):
    kind = KIND

    def __init__(
        self,
        config: PgBackRestConfig,
        run: CommandRunner,
        clock: Clock,
        executor: Executor,
        collectors: Sequence[Bound[InfoAnswer]],
    ) -> None:
        super().__init__("repository", 2.0, clock, executor)
        self.config = config
        self.collectors = tuple(collectors)
        self._command = run
        self._state_lock = threading.Lock()
        self._refreshing = False
        self._attempted_at: float | None = None  # monotonic
        self._document: Any = None
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
            document = json.loads(output)
            if not isinstance(document, list):
                raise ValueError("pgbackrest info: not a list of stanzas")
        except Exception as error:
            message = first_line(error)
            log.warning("pgbackrest info failed: %s", message)
            with self._state_lock:
                self._last_ok, self._error, self._refreshing = False, message, False
            return
        with self._state_lock:
            self._document, self._success_at = document, self.clock.monotonic()
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
        with self._state_lock:
            success_at, ok, error = self._success_at, self._last_ok, self._error
            answer = InfoAnswer(
                document=self._document,
                ok=ok,
                error=error,
                age_seconds=None if success_at is None else self.clock.monotonic() - success_at,
            )
        for collector in self.collectors:
            recorder.run(collector.name, lambda c=collector: c.collect(answer))  # type: ignore[misc]
        return ScrapeResult(
            up=success_at is not None,
            samples=tuple(recorder.samples),
            parts=recorder.parts,
            health=Health(up=ok, message=None if ok else error),
        )

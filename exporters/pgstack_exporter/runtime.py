"""Targets: one per thing the exporter reads, each scraped by at most one thread at a time.

A target's scrape runs on a worker thread. Concurrent HTTP scrapes share the scrape in flight
(so a target never holds more than one connection), and every waiter stops waiting at the
target's deadline: a hanging target reports ``up 0`` within its timeout and never delays the others.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

from pgstack_exporter.metrics import Sample

log = logging.getLogger(__name__)


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations, deadlines)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Executor(Protocol):
    def submit(self, fn: Callable[[], ScrapeResult], /) -> Future[ScrapeResult]: ...


class ScrapePool:
    """The scrape threads, one per target, started once every target is known.

    A target never has more than one scrape in flight, so one thread per target lets every
    scrape of a round run at once, and a hanging target holds only its own thread.
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self.workers = 0

    def start(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="scrape")

    def submit(self, fn: Callable[[], ScrapeResult], /) -> Future[ScrapeResult]:
        if self._executor is None:
            raise RuntimeError("the scrape pool is not started")
        return self._executor.submit(fn)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


@dataclasses.dataclass(frozen=True)
class Part:
    """One collector's outcome on one target (pgstack_collector_success / _duration_seconds)."""

    collector: str
    success: bool
    duration_seconds: float


@dataclasses.dataclass(frozen=True)
class Health:
    """A target's state for /health. ``latency_ms`` is always a number: the probe's round trip
    when up, and when down the time until the failure was known (0 before the first probe)."""

    up: bool
    latency_ms: float = 0.0
    message: str | None = None
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ScrapeResult:
    up: bool
    samples: tuple[Sample, ...] = ()
    parts: tuple[Part, ...] = ()
    health: Health = Health(up=False, message="not probed yet")
    finished_at: float = 0.0  # wall clock


def _ms_since(clock: Clock, start: float) -> float:
    """Milliseconds from monotonic ``start`` until now, as /health reports them."""
    return round((clock.monotonic() - start) * 1000, 1)


def first_line(error: BaseException) -> str:
    """A short, single-line reason (drivers' messages never carry the password we pass them)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class Failed(Exception):
    """Raised by a collector that failed but has samples to show all the same (a stale answer
    and its age, a probe that did not verify): the samples are kept, the collector fails."""

    def __init__(self, message: str, samples: list[Sample]) -> None:
        super().__init__(message)
        self.samples = samples


class PartRecorder:
    """Runs the steps of one scrape, timing each; steps of one collector add up to one Part."""

    def __init__(self, clock: Clock, target: str) -> None:
        self._clock = clock
        self._target = target
        self._parts: dict[str, Part] = {}
        self.samples: list[Sample] = []

    @property
    def parts(self) -> tuple[Part, ...]:
        return tuple(self._parts.values())

    def _record(self, collector: str, success: bool, duration: float) -> None:
        before = self._parts.get(collector)
        if before is not None:
            success = success and before.success
            duration += before.duration_seconds
        self._parts[collector] = Part(collector, success, duration)

    def run(self, collector: str, fn: Callable[[], list[Sample]]) -> bool:
        start = self._clock.monotonic()
        try:
            samples = fn()
        except Failed as failed:
            self.samples.extend(failed.samples)
            self._record(collector, False, self._clock.monotonic() - start)
            return False
        except Exception as error:  # a failed step must not hide the other steps
            log.warning("%s on %s failed: %s", collector, self._target, first_line(error))
            self._record(collector, False, self._clock.monotonic() - start)
            return False
        self.samples.extend(samples)
        self._record(collector, True, self._clock.monotonic() - start)
        return True

    def fail(self, collector: str, start: float) -> None:
        """Record ``collector`` as failed, from monotonic ``start`` until now."""
        self._record(collector, False, self._clock.monotonic() - start)


class Target(abc.ABC):
    """Something scraped: a server, a status directory, a TLS endpoint."""

    kind: str = ""

    def __init__(self, name: str, timeout: float, clock: Clock, executor: Executor) -> None:
        self.name = name
        self.timeout = timeout
        self.clock = clock
        self._executor = executor
        self._lock = threading.Lock()
        self._inflight: Future[ScrapeResult] | None = None
        self._inflight_started = 0.0
        self._aborted = False
        self._last: ScrapeResult | None = None
        self._outcome: ScrapeResult | None = None

    @abc.abstractmethod
    def scrape(self) -> ScrapeResult:
        """One scrape, on a worker thread; never called twice at the same time."""

    def abort(self) -> None:  # noqa: B027 (most targets have nothing to break)
        """Break a scrape that overran its deadline (e.g. shut its socket down). Thread-safe."""

    def close(self) -> None:  # noqa: B027 (most targets hold no connection)
        """Release connections at shutdown."""

    def down(
        self, recorder: PartRecorder, collectors: Iterable[str], start: float, error: Exception
    ) -> ScrapeResult:
        """The result of a scrape that could not reach the target (logged once, in one line):
        every one of its ``collectors`` failed."""
        self.close()
        reason = first_line(error)
        log.warning("%s %s: down: %s", self.kind, self.name, reason)
        for collector in collectors:
            recorder.fail(collector, start)
        health = Health(up=False, latency_ms=_ms_since(self.clock, start), message=reason)
        return ScrapeResult(up=False, parts=recorder.parts, health=health)

    def _run(self) -> ScrapeResult:
        began = self.clock.monotonic()
        try:
            result = self.scrape()
        except Exception as error:  # the scrape itself must never take the exporter down
            log.warning("%s %s: scrape failed: %s", self.kind, self.name, first_line(error))
            health = Health(
                up=False, latency_ms=_ms_since(self.clock, began), message=first_line(error)
            )
            result = ScrapeResult(up=False, health=health)
        result = dataclasses.replace(result, finished_at=self.clock.time())
        with self._lock:
            self._last = result
        return result

    def start(self) -> tuple[Future[ScrapeResult], float]:
        """The scrape in flight, or a new one: (future, monotonic start)."""
        with self._lock:
            if self._inflight is None or self._inflight.done():
                self._inflight = self._executor.submit(self._run)
                self._inflight_started = self.clock.monotonic()
                self._aborted = False
            return self._inflight, self._inflight_started

    def collect(self) -> ScrapeResult:
        """The result of the scrape in flight (started if none), waiting until its deadline."""
        future, started = self.start()
        remaining = started + self.timeout - self.clock.monotonic()
        try:
            result = future.result(timeout=max(remaining, 0.0))
        except FutureTimeout:
            result = self._overran()
        with self._lock:
            self._outcome = result
        return result

    def outcome(self) -> ScrapeResult:
        """What the latest ``collect()`` returned (collecting now if there was none)."""
        with self._lock:
            outcome = self._outcome
        return outcome if outcome is not None else self.collect()

    def _overran(self) -> ScrapeResult:
        with self._lock:
            first = not self._aborted
            self._aborted = True
        if first:
            log.warning("%s %s: no answer within %.1f s", self.kind, self.name, self.timeout)
            self.abort()
        message = f"no answer within {self.timeout:g} s"
        health = Health(up=False, latency_ms=round(self.timeout * 1000, 1), message=message)
        return ScrapeResult(up=False, health=health)

    def health(self) -> Health:
        """Without waiting: the last result, or down while the scrape in flight is overdue."""
        with self._lock:
            inflight, started, last = self._inflight, self._inflight_started, self._last
        overdue = self.clock.monotonic() - started > self.timeout
        if inflight is not None and not inflight.done() and overdue:
            return Health(
                up=False,
                latency_ms=_ms_since(self.clock, started),
                message=f"no answer within {self.timeout:g} s",
            )
        if last is None:
            return Health(up=False, message="not probed yet")
        return last.health

"""Wiring: targets from the configuration, one Collector per target kind, and /health."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from pgstack_exporter import (
    __version__,
    pgbackrest,
    pgbouncer,
    postgresql,
    redis_target,
    status_files,
    tls,
)
from pgstack_exporter.config import Config
from pgstack_exporter.metrics import MetricSpec, build_families, empty_families, gauge
from pgstack_exporter.pgbackrest import CommandRunner, PgBackRestTarget, run_command
from pgstack_exporter.pgbouncer import PgBouncerTarget
from pgstack_exporter.postgresql import PostgresTarget
from pgstack_exporter.redis_target import RedisConnector, RedisTarget, redis_py_connect
from pgstack_exporter.runtime import Clock, Health, SystemClock, Target
from pgstack_exporter.sql import SqlConnector, psycopg_connect
from pgstack_exporter.status_files import StatusFilesTarget
from pgstack_exporter.tls import CertificateProbe, Endpoint, TlsTarget, probe_certificate

UP = gauge(
    "up", "1 when the target answered its last scrape within its timeout, else 0.", "kind", "target"
)
COLLECTOR_SUCCESS = gauge(
    "collector_success",
    "1 when a collector's queries on a target all succeeded.",
    "collector",
    "target",
)
COLLECTOR_DURATION = gauge(
    "collector_duration_seconds",
    "Time a collector spent on a target in its last scrape.",
    "collector",
    "target",
)
BUILD_INFO = gauge("exporter_build_info", "Always 1; the exporter's version as a label.", "version")
METRICS: tuple[MetricSpec, ...] = (UP, COLLECTOR_SUCCESS, COLLECTOR_DURATION, BUILD_INFO)

# Every collector the command line can switch off (--no-collector.<name>).
COLLECTORS = (
    "postgresql",
    "archiver",
    "pgbouncer",
    "redis",
    "dumps",
    "drills",
    "pgbackrest",
    "tls",
)
# The Metric specs of every module: the catalogue in docs/metrics.md lists exactly these.
ALL_METRICS: tuple[MetricSpec, ...] = (
    *METRICS,
    *postgresql.METRICS,
    *pgbouncer.METRICS,
    *redis_target.METRICS,
    *status_files.METRICS,
    *pgbackrest.METRICS,
    *tls.METRICS,
)
HEALTH_KINDS = ("postgresql", "pgbouncer", "redis")


@dataclasses.dataclass(frozen=True)
class Seams:
    """What the exporter talks through: real drivers by default, fakes in unit tests."""

    clock: Clock = dataclasses.field(default_factory=SystemClock)
    sql: SqlConnector = psycopg_connect
    redis: RedisConnector = redis_py_connect
    command: CommandRunner = run_command
    certificate: CertificateProbe = probe_certificate


class KindCollector(Collector):
    """One kind of target (every PostgreSQL, every Redis, ...): fresh families per scrape."""

    def __init__(self, specs: Sequence[MetricSpec], targets: Sequence[Target]) -> None:
        self._specs = tuple(specs)
        self._targets = tuple(targets)

    def describe(self) -> Iterable[Metric]:
        return empty_families(self._specs)

    def collect(self) -> Iterator[Metric]:
        for target in self._targets:
            target.start()  # all of this kind at once
        results = [target.collect() for target in self._targets]
        yield from build_families(self._specs, (s for r in results for s in r.samples))


class ExporterCollector(Collector):
    """pgstack_up and the per-collector success and duration of the scrape in progress."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self._targets = tuple(targets)

    def describe(self) -> Iterable[Metric]:
        return empty_families(METRICS)

    def collect(self) -> Iterator[Metric]:
        families = {
            spec: GaugeMetricFamily(spec.family_name, spec.help, labels=list(spec.labels))
            for spec in METRICS
        }
        for target in self._targets:
            result = target.outcome()
            families[UP].add_metric([target.kind, target.name], 1.0 if result.up else 0.0)
            for part in result.parts:
                families[COLLECTOR_SUCCESS].add_metric(
                    [part.collector, target.name], float(part.success)
                )
                families[COLLECTOR_DURATION].add_metric(
                    [part.collector, target.name], part.duration_seconds
                )
        families[BUILD_INFO].add_metric([__version__], 1.0)
        yield from families.values()


def tls_endpoints(config: Config) -> list[Endpoint]:
    """Every TLS endpoint to probe: the configured servers' own, then tls.probes."""
    out: list[Endpoint] = []
    for pg in config.postgresql:
        if pg.tls_probe and pg.sslmode != "disable" and not pg.host.startswith("/"):
            out.append(
                Endpoint(f"postgresql/{pg.name}", pg.host, pg.port, "postgres", pg.sslrootcert)
            )
    for pgb in config.pgbouncer:
        if pgb.tls_probe and pgb.sslmode != "disable" and not pgb.host.startswith("/"):
            out.append(
                Endpoint(f"pgbouncer/{pgb.name}", pgb.host, pgb.port, "postgres", pgb.sslrootcert)
            )
    for rd in config.redis:
        if rd.tls_probe and rd.tls:
            out.append(Endpoint(f"redis/{rd.name}", rd.host, rd.port, "tls", rd.ca_file))
    for p in config.tls.probes:
        out.append(Endpoint(p.name, p.host, p.port, p.protocol, p.ca_file, p.server_name))
    return out


class Exporter:
    """Every target of one configuration, its collectors, and the background health probing."""

    def __init__(
        self, config: Config, enabled: Iterable[str] = COLLECTORS, seams: Seams | None = None
    ) -> None:
        self.config = config
        self.seams = seams or Seams()
        on = set(enabled)
        self.enabled = on
        clock = self.seams.clock
        count = (
            len(config.postgresql)
            + len(config.pgbouncer)
            + len(config.redis)
            + 4
            + len(config.tls.probes) * 2
        )
        self._pool = ThreadPoolExecutor(max_workers=max(4, count * 2), thread_name_prefix="scrape")
        pool = self._pool
        self.kinds: dict[str, tuple[tuple[MetricSpec, ...], list[Target]]] = {}
        if "postgresql" in on:
            self._add(
                "postgresql",
                postgresql.METRICS,
                [
                    PostgresTarget(c, self.seams.sql, clock, pool, archiver="archiver" in on)
                    for c in config.postgresql
                ],
            )
        if "pgbouncer" in on:
            self._add(
                "pgbouncer",
                pgbouncer.METRICS,
                [PgBouncerTarget(c, self.seams.sql, clock, pool) for c in config.pgbouncer],
            )
        if "redis" in on:
            self._add(
                "redis",
                redis_target.METRICS,
                [RedisTarget(c, self.seams.redis, clock, pool) for c in config.redis],
            )
        files = config.status_files
        if files is not None and ({"dumps", "drills"} & on) and (files.dumps or files.drills):
            target = StatusFilesTarget(
                files.directory,
                clock,
                pool,
                dumps=files.dumps and "dumps" in on,
                drills=files.drills and "drills" in on,
            )
            self._add("status_files", status_files.METRICS, [target])
        if config.pgbackrest is not None and "pgbackrest" in on:
            self._add(
                "pgbackrest",
                pgbackrest.METRICS,
                [PgBackRestTarget(config.pgbackrest, self.seams.command, clock, pool)],
            )
        if "tls" in on:
            settings = config.tls
            self._add(
                "tls",
                tls.METRICS,
                [
                    TlsTarget(
                        endpoint,
                        interval=settings.interval_seconds,
                        timeout=settings.timeout_seconds,
                        probe=self.seams.certificate,
                        clock=clock,
                        executor=pool,
                    )
                    for endpoint in tls_endpoints(config)
                ],
            )
        self._stop = threading.Event()
        self._health_thread: threading.Thread | None = None

    def _add(self, kind: str, specs: tuple[MetricSpec, ...], targets: Sequence[Target]) -> None:
        if targets:
            self.kinds[kind] = (specs, list(targets))

    @property
    def targets(self) -> list[Target]:
        return [t for _specs, targets in self.kinds.values() for t in targets]

    def registry(self) -> CollectorRegistry:
        """A private registry holding this exporter's collectors (and nothing of the process)."""
        registry = CollectorRegistry(auto_describe=True)
        for specs, targets in self.kinds.values():
            registry.register(KindCollector(specs, targets))
        registry.register(ExporterCollector(self.targets))
        return registry

    def start_round(self) -> None:
        """Start every target's scrape at once, so the collectors' waits overlap."""
        for target in self.targets:
            target.start()

    # /health

    def health_targets(self) -> list[Target]:
        return [t for kind in HEALTH_KINDS for t in self.kinds.get(kind, ((), []))[1]]

    def start_health(self) -> None:
        """Probe the health targets in the background, every health.interval_seconds."""

        def loop() -> None:
            while not self._stop.is_set():
                for target in self.health_targets():
                    target.start()
                self._stop.wait(self.config.health.interval_seconds)

        self._health_thread = threading.Thread(target=loop, name="health", daemon=True)
        self._health_thread.start()

    def health(self) -> dict[str, Any]:
        """The /health document, from the last probes (never waits for a target)."""
        services: dict[str, Any] = {}
        for kind in HEALTH_KINDS:
            targets = self.kinds.get(kind, ((), []))[1]
            for target in targets:
                key = kind if len(targets) == 1 else f"{kind}:{target.name}"
                services[key] = _service(target.health(), kind)
        return {
            "status": overall_status(services),
            "version": __version__,
            "timestamp": datetime.fromtimestamp(self.seams.clock.time(), UTC).isoformat(
                timespec="seconds"
            ),
            "services": services,
        }

    def close(self) -> None:
        self._stop.set()
        for target in self.targets:
            target.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _service(health: Health, kind: str) -> dict[str, Any]:
    service: dict[str, Any] = {
        "status": "up" if health.up else "down",
        "latencyMs": health.latency_ms,
    }
    if not health.up:
        service["message"] = health.message or "down"
    if kind == "redis":
        defaults = {
            "memoryPercent": None,
            "evictedKeys": None,
            "latencyStatus": "timeout",
            "memoryWarning": False,
        }
        service |= defaults | dict(health.details) if health.up else defaults
    return service


def overall_status(services: dict[str, Any]) -> str:
    """unhealthy: a PostgreSQL or PgBouncer is down; degraded: Redis down, slow or nearly full."""
    status = "healthy"
    for key, service in services.items():
        kind = key.split(":", 1)[0]
        if kind in ("postgresql", "pgbouncer") and service["status"] != "up":
            return "unhealthy"
        if kind == "redis" and (
            service["status"] != "up"
            or service["latencyStatus"] != "good"
            or service["memoryWarning"]
        ):
            status = "degraded"
    return status

"""Wiring: targets from the configuration, the registry's collectors on them, and /health."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from pgstack_exporter import __version__
from pgstack_exporter.collector import AnySpec, Bound, SettingsT, bind
from pgstack_exporter.collectors import DEFAULT_ON, REGISTRY, SWITCHES, selected
from pgstack_exporter.config import Config
from pgstack_exporter.config import RedisTarget as RedisConfig
from pgstack_exporter.metrics import MetricSpec, build_families, empty_families, gauge
from pgstack_exporter.pgbackrest import CommandRunner, PgBackRestTarget, run_command
from pgstack_exporter.pgbouncer import PgBouncerTarget
from pgstack_exporter.postgresql import PostgresTarget
from pgstack_exporter.redis_target import (
    RedisConnector,
    RedisTarget,
    SentinelTarget,
    redis_py_connect,
)
from pgstack_exporter.runtime import Clock, Executor, Health, ScrapePool, SystemClock, Target
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

# Every name --[no-]collector.<name> takes.
COLLECTORS = SWITCHES
# Every metric the exporter can emit: the catalogue in docs/metrics.md lists exactly these.
ALL_METRICS: tuple[MetricSpec, ...] = tuple(
    dict.fromkeys([*METRICS, *(m for spec in REGISTRY for m in spec.metrics)])
)
HEALTH_KINDS = ("postgresql", "pgbouncer", "redis", "sentinel")
# /health's figures of a kind beyond status and latency, as they read while it is down.
HEALTH_DEFAULTS: dict[str, dict[str, Any]] = {
    "redis": {
        "memoryPercent": None,
        "evictedKeys": None,
        "latencyStatus": "timeout",
        "memoryWarning": False,
    },
    "sentinel": {"latencyStatus": "timeout"},
}


@dataclasses.dataclass(frozen=True)
class Seams:
    """What the exporter talks through: real drivers by default, fakes in unit tests."""

    clock: Clock = dataclasses.field(default_factory=SystemClock)
    sql: SqlConnector = psycopg_connect
    redis: RedisConnector = redis_py_connect  # Redis and Redis Sentinel
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
    """pgstack_up and the per-collector success and duration of the scrape in progress.

    A collector split from another (``part_of``) also counts towards that one's series, which
    succeed when all its parts on the target did and last as long as they took together.
    """

    def __init__(self, targets: Sequence[Target], part_of: Mapping[str, str]) -> None:
        self._targets = tuple(targets)
        self._part_of = dict(part_of)

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
            groups: dict[str, tuple[bool, float]] = {}
            for part in result.parts:
                self._add(
                    families, part.collector, target.name, part.success, part.duration_seconds
                )
                group = self._part_of.get(part.collector)
                if group is not None:
                    success, duration = groups.get(group, (True, 0.0))
                    groups[group] = (success and part.success, duration + part.duration_seconds)
            for group, (success, duration) in groups.items():
                self._add(families, group, target.name, success, duration)
        families[BUILD_INFO].add_metric([__version__], 1.0)
        yield from families.values()

    @staticmethod
    def _add(
        families: dict[MetricSpec, GaugeMetricFamily],
        collector: str,
        target: str,
        success: bool,
        duration: float,
    ) -> None:
        families[COLLECTOR_SUCCESS].add_metric([collector, target], float(success))
        families[COLLECTOR_DURATION].add_metric([collector, target], duration)


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
    for kind, redis_targets in (("redis", config.redis), ("sentinel", config.sentinel)):
        for rd in redis_targets:
            if rd.tls_probe and rd.tls:
                out.append(Endpoint(f"{kind}/{rd.name}", rd.host, rd.port, "tls", rd.ca_file))
    for p in config.tls.probes:
        out.append(Endpoint(p.name, p.host, p.port, p.protocol, p.ca_file, p.server_name))
    return out


# How each kind of target is built from the configuration, given the collectors that run on it;
# a target none of them runs on (its settings switch them all off) is not built.
Builder = Callable[[Config, Seams, Executor, Sequence[AnySpec]], list[Target]]


def _each_configured(
    configs: Sequence[SettingsT],
    specs: Sequence[AnySpec],
    seams: Seams,
    make: Callable[[SettingsT, list[Bound[Any]]], Target],
) -> list[Target]:
    """A target per configured server that at least one of the collectors runs on."""
    out: list[Target] = []
    for c in configs:
        bound = bind(specs, c, seams.clock)
        if bound:
            out.append(make(c, bound))
    return out


def _postgresql(
    config: Config, seams: Seams, pool: Executor, specs: Sequence[AnySpec]
) -> list[Target]:
    return _each_configured(
        config.postgresql,
        specs,
        seams,
        lambda c, bound: PostgresTarget(c, seams.sql, seams.clock, pool, bound),
    )


def _pgbouncer(
    config: Config, seams: Seams, pool: Executor, specs: Sequence[AnySpec]
) -> list[Target]:
    return _each_configured(
        config.pgbouncer,
        specs,
        seams,
        lambda c, bound: PgBouncerTarget(c, seams.sql, seams.clock, pool, bound),
    )


def _redis_kind(
    target: type[RedisTarget], section: Callable[[Config], Sequence[RedisConfig]]
) -> Builder:
    """The builder of the targets of a section read through the Redis connector: Redis, and
    Redis Sentinel (the same connection, another target)."""

    def build(
        config: Config, seams: Seams, pool: Executor, specs: Sequence[AnySpec]
    ) -> list[Target]:
        return _each_configured(
            section(config),
            specs,
            seams,
            lambda c, bound: target(c, seams.redis, seams.clock, pool, bound),
        )

    return build


def _status_files(
    config: Config, seams: Seams, pool: Executor, specs: Sequence[AnySpec]
) -> list[Target]:
    files = config.status_files
    bound = [] if files is None else bind(specs, files, seams.clock)
    if files is None or not bound:
        return []
    return [StatusFilesTarget(files.directory, seams.clock, pool, bound)]


def _pgbackrest(
    config: Config, seams: Seams, pool: Executor, specs: Sequence[AnySpec]
) -> list[Target]:
    settings = config.pgbackrest
    bound = [] if settings is None else bind(specs, settings, seams.clock)
    if settings is None or not bound:
        return []
    return [PgBackRestTarget(settings, seams.command, seams.clock, pool, bound)]


def _tls(config: Config, seams: Seams, pool: Executor, specs: Sequence[AnySpec]) -> list[Target]:
    out: list[Target] = []
    for endpoint in tls_endpoints(config):
        bound = bind(specs, endpoint, seams.clock)
        if bound:
            out.append(
                TlsTarget(
                    endpoint,
                    interval=config.tls.interval_seconds,
                    timeout=config.tls.timeout_seconds,
                    probe=seams.certificate,
                    clock=seams.clock,
                    executor=pool,
                    collectors=bound,
                )
            )
    return out


KINDS: dict[str, Builder] = {
    "postgresql": _postgresql,
    "pgbouncer": _pgbouncer,
    "redis": _redis_kind(RedisTarget, lambda config: config.redis),
    "sentinel": _redis_kind(SentinelTarget, lambda config: config.sentinel),
    "status_files": _status_files,
    "pgbackrest": _pgbackrest,
    "tls": _tls,
}


class Exporter:
    """Every target of one configuration, its collectors, and the background health probing."""

    def __init__(
        self, config: Config, enabled: Iterable[str] = DEFAULT_ON, seams: Seams | None = None
    ) -> None:
        self.config = config
        self.seams = seams or Seams()
        self.collectors = selected(enabled)
        self.enabled = {spec.name for spec in self.collectors}
        self._pool = ScrapePool()
        self.kinds: dict[str, tuple[tuple[MetricSpec, ...], list[Target]]] = {}
        for kind, build in KINDS.items():
            specs = [spec for spec in self.collectors if spec.kind == kind]
            targets = build(config, self.seams, self._pool, specs) if specs else []
            if targets:
                metrics = tuple(dict.fromkeys(m for spec in specs for m in spec.metrics))
                self.kinds[kind] = (metrics, targets)
        # One scrape thread per target (a target never has two scrapes in flight).
        self._pool.start(len(self.targets))
        self._stop = threading.Event()
        self._health_thread: threading.Thread | None = None

    @property
    def targets(self) -> list[Target]:
        return [t for _specs, targets in self.kinds.values() for t in targets]

    @property
    def workers(self) -> int:
        return self._pool.workers

    def registry(self) -> CollectorRegistry:
        """A private registry holding this exporter's collectors (and nothing of the process)."""
        registry = CollectorRegistry(auto_describe=True)
        for specs, targets in self.kinds.values():
            registry.register(KindCollector(specs, targets))
        part_of = {s.name: s.part_of for s in self.collectors if s.part_of is not None}
        registry.register(ExporterCollector(self.targets, part_of))
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
        self._pool.shutdown()


def _service(health: Health, kind: str) -> dict[str, Any]:
    service: dict[str, Any] = {
        "status": "up" if health.up else "down",
        "latencyMs": health.latency_ms,
    }
    if not health.up:
        service["message"] = health.message or "down"
    defaults = HEALTH_DEFAULTS.get(kind)
    if defaults is not None:
        service |= defaults | dict(health.details) if health.up else defaults
    return service


def overall_status(services: dict[str, Any]) -> str:
    """unhealthy: a PostgreSQL or PgBouncer is down; degraded: Redis down, slow or nearly full,
    or a Redis Sentinel down or slow."""
    status = "healthy"
    for key, service in services.items():
        kind = key.split(":", 1)[0]
        if kind in ("postgresql", "pgbouncer") and service["status"] != "up":
            return "unhealthy"
        if kind in HEALTH_DEFAULTS and (
            service["status"] != "up"
            or service["latencyStatus"] != "good"
            or service.get("memoryWarning", False)
        ):
            status = "degraded"
    return status

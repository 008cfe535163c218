"""Redis over TLS as the ACL user ``monitoring`` (commands: PING, INFO, CONFIG GET)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Protocol

import redis

from pgstack_exporter.config import RedisTarget as RedisConfig
from pgstack_exporter.config import read_secret
from pgstack_exporter.metrics import MetricSpec, Sample, counter, gauge, sample
from pgstack_exporter.runtime import (
    Clock,
    Executor,
    Health,
    PartRecorder,
    ScrapeResult,
    Target,
)

log = logging.getLogger(__name__)

T = ("target",)
MEMORY_USED = gauge("redis_memory_used_bytes", "Memory Redis has allocated (used_memory).", *T)
MEMORY_MAX = gauge("redis_memory_max_bytes", "The maxmemory limit (0: none).", *T)
EVICTED = counter("redis_evicted_keys", "Keys evicted because of maxmemory.", *T)
EXPIRED = counter("redis_expired_keys", "Keys removed because they expired.", *T)
CONNECTED = gauge("redis_connected_clients", "Client connections.", *T)
BLOCKED = gauge("redis_blocked_clients", "Clients in a blocking call (BLPOP, WAIT, ...).", *T)
MAXCLIENTS = gauge("redis_max_clients", "The maxclients setting.", *T)
REJECTED = counter("redis_rejected_connections", "Connections refused because of maxclients.", *T)
COMMANDS = counter("redis_commands_processed", "Commands processed.", *T)
DB_KEYS = gauge("redis_db_keys", "Keys in a logical database (db0 always, 0 when empty).", *T, "db")
RDB_LAST_SAVE = gauge(
    "redis_rdb_last_save_timestamp_seconds", "When the last RDB snapshot was saved.", *T
)
RDB_LAST_OK = gauge(
    "redis_rdb_last_bgsave_success", "1 when the last RDB background save succeeded.", *T
)
PING = gauge("redis_ping_seconds", "Round-trip time of a PING.", *T)

METRICS: tuple[MetricSpec, ...] = (
    MEMORY_USED,
    MEMORY_MAX,
    EVICTED,
    EXPIRED,
    CONNECTED,
    BLOCKED,
    MAXCLIENTS,
    REJECTED,
    COMMANDS,
    DB_KEYS,
    RDB_LAST_SAVE,
    RDB_LAST_OK,
    PING,
)

# /health: PING faster than this is "good", then "slow", else "timeout". The round trip is the
# fastest of PINGS: redis-py connects lazily (and reconnects after a restart) inside the first
# command, so a single PING would time a TCP and TLS handshake rather than Redis.
PINGS = 2
LATENCY_GOOD_MS = 10.0
LATENCY_SLOW_MS = 100.0
MEMORY_WARNING_PERCENT = 80.0


class RedisSession(Protocol):
    def ping(self) -> None: ...

    def info(self) -> dict[str, Any]: ...

    def config_get(self, name: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class RedisConnector(Protocol):
    def __call__(self, config: RedisConfig) -> RedisSession: ...


class RedisPySession:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def ping(self) -> None:
        self._client.ping()

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._client.info("all")
        return result

    def config_get(self, name: str) -> dict[str, Any]:
        result: Any = self._client.config_get(name)
        return {str(key): value for key, value in dict(result).items()}

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError, OSError):
            self._client.close()


def redis_py_connect(config: RedisConfig) -> RedisSession:
    """One connection (single_connection_client), every socket operation bounded by a timeout."""
    kwargs: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "username": config.username,
        "password": read_secret(config.password_file),
        "socket_timeout": config.timeout_seconds * 0.8,
        "socket_connect_timeout": config.timeout_seconds * 0.5,
        "single_connection_client": True,
        "retry_on_timeout": False,
    }
    if config.tls:
        tls: dict[str, Any] = {
            "ssl": True,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_ca_certs": str(config.ca_file) if config.ca_file else None,
            "ssl_certfile": str(config.cert_file) if config.cert_file else None,
            "ssl_keyfile": str(config.key_file) if config.key_file else None,
        }
        kwargs.update(tls)
    return RedisPySession(redis.Redis(**kwargs))


def _n(info: dict[str, Any], key: str) -> float:
    value = info.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


class RedisTarget(Target):
    kind = "redis"

    def __init__(
        self, config: RedisConfig, connect: RedisConnector, clock: Clock, executor: Executor
    ) -> None:
        super().__init__(config.name, config.timeout_seconds, clock, executor)
        self.config = config
        self._connect = connect
        self._session: RedisSession | None = None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # A hung Redis is broken by redis-py's socket timeout; nothing to do from another thread.

    def scrape(self) -> ScrapeResult:
        recorder = PartRecorder(self.clock, self.name)
        start = self.clock.monotonic()
        try:
            if self._session is None:
                self._session = self._connect(self.config)
            session = self._session
            ping = min(self._ping(session) for _ in range(PINGS))
            info = session.info()
        except Exception as error:
            return self.down(recorder, "redis", start, error)
        recorder.run("redis", lambda: self._samples(info, ping))
        maxclients = info.get("maxclients")
        if maxclients is None:  # older INFO without maxclients: ask CONFIG GET
            recorder.run("redis", lambda: self._maxclients(session))
        else:
            recorder.samples.append(sample(MAXCLIENTS, float(maxclients), target=self.name))
        return ScrapeResult(
            up=True,
            samples=tuple(recorder.samples),
            parts=recorder.parts,
            health=self._health(info, ping),
        )

    def _ping(self, session: RedisSession) -> float:
        start = self.clock.monotonic()
        session.ping()
        return self.clock.monotonic() - start

    def _maxclients(self, session: RedisSession) -> list[Sample]:
        value = session.config_get("maxclients").get("maxclients", 0)
        return [sample(MAXCLIENTS, float(value), target=self.name)]

    def _samples(self, info: dict[str, Any], ping: float) -> list[Sample]:
        simple: tuple[tuple[MetricSpec, str], ...] = (
            (MEMORY_USED, "used_memory"),
            (MEMORY_MAX, "maxmemory"),
            (EVICTED, "evicted_keys"),
            (EXPIRED, "expired_keys"),
            (CONNECTED, "connected_clients"),
            (BLOCKED, "blocked_clients"),
            (REJECTED, "rejected_connections"),
            (COMMANDS, "total_commands_processed"),
            (RDB_LAST_SAVE, "rdb_last_save_time"),
        )
        out = [sample(spec, _n(info, key), target=self.name) for spec, key in simple]
        ok = 1.0 if info.get("rdb_last_bgsave_status") == "ok" else 0.0
        out.append(sample(RDB_LAST_OK, ok, target=self.name))
        out.append(sample(PING, ping, target=self.name))
        # INFO lists a database only while it holds keys; db0, the default, is always reported.
        keys = {"db0": 0.0}
        for key, value in info.items():
            if key.startswith("db") and key[2:].isdigit() and isinstance(value, dict):
                keys[key] = float(value.get("keys", 0))
        out += [sample(DB_KEYS, n, target=self.name, db=db) for db, n in keys.items()]
        return out

    def _health(self, info: dict[str, Any], ping: float) -> Health:
        latency_ms = ping * 1000
        used, limit = _n(info, "used_memory"), _n(info, "maxmemory")
        percent = round(100.0 * used / limit, 1) if limit > 0 else None
        if latency_ms < LATENCY_GOOD_MS:
            latency_status = "good"
        elif latency_ms < LATENCY_SLOW_MS:
            latency_status = "slow"
        else:
            latency_status = "timeout"
        details = {
            "memoryPercent": percent,
            "evictedKeys": int(_n(info, "evicted_keys")),
            "latencyStatus": latency_status,
            "memoryWarning": percent is not None and percent > MEMORY_WARNING_PERCENT,
        }
        return Health(up=True, latency_ms=round(latency_ms, 2), details=details)

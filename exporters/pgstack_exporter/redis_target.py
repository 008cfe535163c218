"""Redis over TLS as the ACL user ``monitoring`` (commands: PING, INFO, CONFIG GET): one
connection per Redis, and the scrape that runs its collectors (``collectors/redis.py``).

A Redis Sentinel is reached the same way, as its own ``monitoring`` user (PING, INFO and the
SENTINEL subcommands of ``collectors/sentinel.py``): ``SentinelTarget``."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pgstack_exporter.collector import Bound
from pgstack_exporter.config import RedisTarget as RedisConfig
from pgstack_exporter.config import read_secret
from pgstack_exporter.runtime import Clock, Executor, Health, PartRecorder, ScrapeResult, Target

log = logging.getLogger(__name__)

KIND = "redis"
SENTINEL_KIND = "sentinel"

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

    def command(self, *args: str) -> Any:
        """The server's reply to one command as the protocol gives it (bytes and lists of them
        over RESP2; maps as dicts over RESP3, which redis-py 8 speaks by default); an error
        reply raises ``redis.ResponseError``."""
        ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class RedisAnswer:
    """What a Redis scrape hands its collectors: INFO, the PING round trip, and the session."""

    info: dict[str, Any]
    ping_seconds: float
    session: RedisSession


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

    def command(self, *args: str) -> Any:
        # redis-py reshapes only the replies of commands it names with their subcommand
        # ("SENTINEL MASTER"); sent as separate words, the reply stays the protocol's.
        execute: Callable[..., Any] = self._client.execute_command
        return execute(*args)

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError, OSError):
            self._client.close()


def redis_py_connect(config: RedisConfig) -> RedisSession:
    """One connection (single_connection_client), every socket operation bounded by a timeout
    and tried once: redis-py 6 and later retry a refused connect or login three times with a
    growing wait, which would outlast the target's deadline (the next scrape tries again)."""
    kwargs: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "username": config.username,
        "password": read_secret(config.password_file),
        "socket_timeout": config.timeout_seconds * 0.8,
        "socket_connect_timeout": config.timeout_seconds * 0.5,
        "single_connection_client": True,
        "retry": Retry(NoBackoff(), 0),
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


def latency_status(latency_ms: float) -> str:
    """/health's latencyStatus of a PING round trip."""
    if latency_ms < LATENCY_GOOD_MS:
        return "good"
    if latency_ms < LATENCY_SLOW_MS:
        return "slow"
    return "timeout"


def info_number(info: dict[str, Any], key: str) -> float:
    """A numeric INFO field (0 when missing or not a number)."""
    value = info.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


class RedisTarget(Target):
    kind = KIND

    def __init__(
        self,
        config: RedisConfig,
        connect: RedisConnector,
        clock: Clock,
        executor: Executor,
        collectors: Sequence[Bound[RedisAnswer]],
    ) -> None:
        super().__init__(config.name, config.timeout_seconds, clock, executor)
        self.config = config
        self.collectors = tuple(collectors)
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
            return self.down(recorder, (c.name for c in self.collectors), start, error)
        answer = RedisAnswer(info, ping, session)
        for collector in self.collectors:
            recorder.run(collector.name, lambda c=collector: c.collect(answer))  # type: ignore[misc]
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

    def _health(self, info: dict[str, Any], ping: float) -> Health:
        latency_ms = ping * 1000
        details = {"latencyStatus": latency_status(latency_ms), **self._details(info)}
        return Health(up=True, latency_ms=round(latency_ms, 2), details=details)

    def _details(self, info: dict[str, Any]) -> dict[str, Any]:
        """/health's figures of this kind beyond the latency."""
        used, limit = info_number(info, "used_memory"), info_number(info, "maxmemory")
        percent = round(100.0 * used / limit, 1) if limit > 0 else None
        return {
            "memoryPercent": percent,
            "evictedKeys": int(info_number(info, "evicted_keys")),
            "memoryWarning": percent is not None and percent > MEMORY_WARNING_PERCENT,
        }


class SentinelTarget(RedisTarget):
    """A Redis Sentinel: the same connection and PINGs as a Redis; /health has its latency only
    (a sentinel holds no data)."""

    kind = SENTINEL_KIND

    def _details(self, info: dict[str, Any]) -> dict[str, Any]:
        return {}

"""/health: the JSON document load balancers read, and the HTTP endpoints."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from test_exporter_collectors import PG_ANSWERS, PGBOUNCER_ANSWERS, REDIS_INFO
from test_exporter_support import FakeClock, FakeRedisConnector, FakeSqlConnector

from pgstack_exporter.config import parse
from pgstack_exporter.exporter import Exporter, Seams, overall_status
from pgstack_exporter.server import make_server, parse_listen_address

ANSWERS = {**PG_ANSWERS, **PGBOUNCER_ANSWERS, "probe": PG_ANSWERS["probe"]}
SERVERS = {
    "postgresql": [{"name": "db1", "host": "h", "user": "m", "tls_probe": False}],
    "pgbouncer": [{"name": "db1", "host": "h", "user": "m", "tls_probe": False}],
    "redis": [{"name": "db1", "host": "h", "username": "monitoring", "tls_probe": False}],
}


def exporter_with(
    sql: FakeSqlConnector, redis: FakeRedisConnector, clock: FakeClock | None = None
) -> Exporter:
    return Exporter(
        parse({"version": 1, **SERVERS}),
        seams=Seams(clock=clock or FakeClock(), sql=sql, redis=redis),
    )


def probed(exporter: Exporter) -> dict[str, Any]:
    for target in exporter.health_targets():
        target.collect()
    return exporter.health()


def test_all_up_is_healthy_with_every_field() -> None:
    exporter = exporter_with(
        FakeSqlConnector(ANSWERS), FakeRedisConnector({**REDIS_INFO, "used_memory": 100})
    )
    document = probed(exporter)
    assert document["status"] == "healthy"
    assert document["version"] == "0.1.0"
    assert document["timestamp"].endswith("+00:00")
    assert set(document["services"]) == {"postgresql", "pgbouncer", "redis"}
    assert document["services"]["postgresql"]["status"] == "up"
    assert isinstance(document["services"]["postgresql"]["latencyMs"], float)
    redis = document["services"]["redis"]
    assert redis["memoryPercent"] == 10.0
    assert redis["evictedKeys"] == 3
    assert redis["latencyStatus"] == "good"
    assert redis["memoryWarning"] is False
    assert "message" not in redis


def test_redis_near_maxmemory_is_degraded() -> None:
    exporter = exporter_with(
        FakeSqlConnector(ANSWERS), FakeRedisConnector({**REDIS_INFO, "used_memory": 810})
    )
    document = probed(exporter)
    assert document["services"]["redis"]["memoryWarning"] is True
    assert document["status"] == "degraded"


def test_redis_down_is_degraded_and_says_why() -> None:
    redis = FakeRedisConnector(REDIS_INFO)
    redis.fail = ConnectionRefusedError("Connection refused")
    document = probed(exporter_with(FakeSqlConnector(ANSWERS), redis))
    assert document["status"] == "degraded"
    assert document["services"]["redis"]["status"] == "down"
    assert document["services"]["redis"]["message"] == "Connection refused"
    assert document["services"]["redis"]["latencyStatus"] == "timeout"


def test_postgresql_down_is_unhealthy() -> None:
    sql = FakeSqlConnector(ANSWERS)
    sql.fail = psycopg.OperationalError('connection to server at "h" failed: Connection refused')
    document = probed(exporter_with(sql, FakeRedisConnector(REDIS_INFO)))
    assert document["status"] == "unhealthy"
    assert document["services"]["postgresql"]["message"].endswith("Connection refused")


def test_a_down_service_reports_the_time_until_its_failure_was_known() -> None:
    """latencyMs is a number in every answer (typed clients read it as one): for a service that
    is down, how long the probe took to learn it (a refused connect here: 2.5 s and 0.75 s)."""
    clock = FakeClock()
    sql = FakeSqlConnector(ANSWERS)
    sql.fail = psycopg.OperationalError('connection to server at "h" failed: Connection refused')
    sql.on_fail = lambda: clock.advance(2.5)
    redis = FakeRedisConnector(REDIS_INFO)
    redis.fail = ConnectionRefusedError("Connection refused")
    redis.on_fail = lambda: clock.advance(0.75)
    services = probed(exporter_with(sql, redis, clock))["services"]
    assert {name: service["status"] for name, service in services.items()} == dict.fromkeys(
        ("postgresql", "pgbouncer", "redis"), "down"
    )
    assert services["postgresql"]["latencyMs"] == 2500.0
    assert services["pgbouncer"]["latencyMs"] == 2500.0
    assert services["redis"]["latencyMs"] == 750.0
    assert all(type(service["latencyMs"]) is float for service in services.values())


def test_latency_is_a_number_before_the_first_probe() -> None:
    exporter = exporter_with(FakeSqlConnector(ANSWERS), FakeRedisConnector(REDIS_INFO))
    services = exporter.health()["services"]
    assert {name: (s["status"], s["latencyMs"]) for name, s in services.items()} == dict.fromkeys(
        ("postgresql", "pgbouncer", "redis"), ("down", 0.0)
    )
    # And it serialises as a JSON number, never null.
    assert "null" not in json.dumps([s["latencyMs"] for s in services.values()])


@pytest.mark.parametrize(
    ("latency", "expected"), [("good", "healthy"), ("slow", "degraded"), ("timeout", "degraded")]
)
def test_redis_latency_status_decides_degraded(latency: str, expected: str) -> None:
    services = {
        "redis": {"status": "up", "latencyStatus": latency, "memoryWarning": False},
        "postgresql": {"status": "up"},
    }
    assert overall_status(services) == expected


@pytest.mark.parametrize(
    ("costs_ms", "status", "latency_ms"),
    [([40.0, 1.0, 1.0], "good", 1.0), ([40.0, 30.0, 30.0], "slow", 30.0)],
)
def test_redis_latency_is_a_round_trip_not_the_handshake(
    costs_ms: list[float], status: str, latency_ms: float
) -> None:
    """The first PING on a new connection carries the TCP and TLS handshake; it does not count."""
    clock = FakeClock()
    costs = iter(costs_ms)
    redis = FakeRedisConnector(REDIS_INFO)
    redis.on_ping = lambda: clock.advance(next(costs) / 1000)
    exporter = Exporter(
        parse({"version": 1, **SERVERS}),
        seams=Seams(clock=clock, sql=FakeSqlConnector(ANSWERS), redis=redis),
    )
    service = probed(exporter)["services"]["redis"]
    assert (service["latencyStatus"], service["latencyMs"]) == (status, latency_ms)


def test_before_the_first_probe_every_service_is_down() -> None:
    document = exporter_with(FakeSqlConnector(ANSWERS), FakeRedisConnector(REDIS_INFO)).health()
    assert document["status"] == "unhealthy"
    assert document["services"]["postgresql"]["message"] == "not probed yet"


@pytest.fixture
def served() -> Iterator[tuple[str, threading.Event]]:
    release = threading.Event()

    def hang() -> list[dict[str, Any]]:
        release.wait(10)
        return PG_ANSWERS["probe"]

    sql = FakeSqlConnector({**ANSWERS, "probe": hang})
    cfg = parse({"version": 1, **SERVERS, "health": {"interval_seconds": 1}})
    exporter = Exporter(cfg, seams=Seams(sql=sql, redis=FakeRedisConnector(REDIS_INFO)))
    server = make_server(exporter, exporter.registry(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    exporter.start_health()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", release
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        exporter.close()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (a local test URL)
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_health_answers_fast_while_a_target_hangs(served: tuple[str, threading.Event]) -> None:
    url, _release = served
    time.sleep(3.5)  # the hanging PostgreSQL probe is overdue (timeout 3 s)
    start = time.monotonic()
    code, headers, body = get(url + "/health")
    assert time.monotonic() - start < 0.5
    assert code == 503
    assert headers["Cache-Control"] == "no-store"
    document = json.loads(body)
    assert document["services"]["postgresql"]["status"] == "down"
    assert document["services"]["redis"]["status"] == "up"


def test_metrics_and_index(served: tuple[str, threading.Event]) -> None:
    url, release = served
    release.set()
    code, headers, body = get(url + "/metrics")
    assert code == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert b'pgstack_up{kind="redis",target="db1"} 1.0' in body
    assert get(url + "/")[0] == 200
    assert get(url + "/nothing")[0] == 404


def test_listen_addresses() -> None:
    assert parse_listen_address(":9716") == ("", 9716)
    assert parse_listen_address("127.0.0.1:1") == ("127.0.0.1", 1)
    assert parse_listen_address("[::1]:9716") == ("::1", 9716)
    with pytest.raises(ValueError, match="host:port"):
        parse_listen_address("9716")

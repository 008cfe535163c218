"""Under faults: a stopped or hanging target is down within its timeout, the others unaffected."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import exporter_servers as servers
import pytest
from exporter_servers import ADMIN_USER, MONITORING_USER, PG_BIN
from exporter_stack import ExporterProcess, Stack
from test_exporter_metrics import value

# Every target's timeout is at most 3 s (the defaults): a whole scrape stays within that + slack.
SCRAPE_BOUND = 4.0


def timed_metrics(
    exporter: ExporterProcess,
) -> tuple[float, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    start = time.monotonic()
    metrics = exporter.metrics()
    return time.monotonic() - start, metrics


def ups(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, float]:
    return {
        dict(labels)["target"]: v
        for (name, labels), v in metrics.items()
        if name == "pgstack_up" and dict(labels)["kind"] in ("postgresql", "pgbouncer", "redis")
    }


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"not within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture
def redis_stopped(stack: Stack) -> Iterator[None]:
    stack.redis.process.stop()
    try:
        yield
    finally:
        stack.redis.process.start()
        servers.wait_port(stack.redis.port)


def test_a_stopped_redis_flips_up_and_health_while_the_others_report(
    stack: Stack, exporter: ExporterProcess
) -> None:
    assert ups(exporter.metrics()) == {"primary": 1, "standby": 1, "bouncer": 1, "cache": 1}
    assert exporter.health()[1]["status"] == "healthy"
    stack.redis.process.stop()
    try:
        elapsed, metrics = timed_metrics(exporter)
        assert elapsed < SCRAPE_BOUND
        assert ups(metrics) == {"primary": 1, "standby": 1, "bouncer": 1, "cache": 0}
        flipped = wait_until(
            lambda: exporter.health()[1]["services"]["redis"]["status"] == "down", 4
        )
        code, document = exporter.health()
        assert (code, document["status"]) == (200, "degraded")
        assert document["services"]["postgresql:primary"]["status"] == "up"
        assert document["services"]["redis"]["message"]
        print(f"\n/health showed Redis down {flipped:.1f} s after the stop")
    finally:
        stack.redis.process.start()
        servers.wait_port(stack.redis.port)
    wait_until(lambda: ups(exporter.metrics())["cache"] == 1, 5)


def test_a_stopped_pgbouncer_makes_health_unhealthy(
    stack: Stack, exporter: ExporterProcess
) -> None:
    exporter.metrics()
    stack.pgbouncer.process.stop()
    try:
        elapsed, metrics = timed_metrics(exporter)
        assert elapsed < SCRAPE_BOUND
        assert ups(metrics) == {"primary": 1, "standby": 1, "bouncer": 0, "cache": 1}
        wait_until(lambda: exporter.health()[0] == 503, 4)
        start = time.monotonic()
        code, document = exporter.health()
        assert time.monotonic() - start < 0.5
        assert (code, document["status"]) == (503, "unhealthy")
        assert document["services"]["pgbouncer"]["status"] == "down"
    finally:
        stack.pgbouncer.process.start()
        servers.wait_port(stack.pgbouncer.port)
    wait_until(lambda: ups(exporter.metrics())["bouncer"] == 1, 5)


def test_a_lock_held_on_the_catalogue_does_not_stretch_the_scrape(
    stack: Stack, exporter: ExporterProcess
) -> None:
    exporter.metrics()  # the exporter's connection exists before the lock is taken
    # A client that disconnects does not end pg_sleep, and while pg_database is locked nobody can
    # connect to cancel it: the holder sleeps for a bounded time and ends its transaction itself.
    holder = subprocess.Popen(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "psql"),
            "-X",
            "-q",
            "-h",
            str(stack.primary.socket_dir),
            "-p",
            str(stack.primary.port),
            "-d",
            "postgres",
            "-c",
            "BEGIN; LOCK TABLE pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE;"
            " SELECT pg_sleep(6); COMMIT;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(1)
        elapsed, metrics = timed_metrics(exporter)
        assert elapsed < SCRAPE_BOUND
        assert (
            value(metrics, "pgstack_collector_success", collector="postgresql", target="primary")
            == 0
        )
        # Only the collectors whose queries read pg_database fail; the others still report.
        assert (
            value(metrics, "pgstack_collector_success", collector="databases", target="primary")
            == 0
        )
        assert (
            value(metrics, "pgstack_collector_success", collector="settings", target="primary") == 1
        )
        assert value(metrics, "pgstack_up", kind="postgresql", target="primary") == 1
        assert ups(metrics)["bouncer"] == 1
        assert ups(metrics)["cache"] == 1
    finally:
        holder.wait(30)
    wait_until(
        lambda: (
            value(
                exporter.metrics(),
                "pgstack_collector_success",
                collector="postgresql",
                target="primary",
            )
            == 1
        ),
        10,
    )


def test_a_paused_redis_is_down_within_its_timeout(stack: Stack, exporter: ExporterProcess) -> None:
    exporter.metrics()
    servers.redis_cli(stack.redis, stack.pki, "CLIENT", "PAUSE", "6000", "ALL")
    try:
        elapsed, metrics = timed_metrics(exporter)
        assert elapsed < SCRAPE_BOUND
        assert ups(metrics) == {"primary": 1, "standby": 1, "bouncer": 1, "cache": 0}
    finally:
        servers.redis_cli(stack.redis, stack.pki, "CLIENT", "UNPAUSE")
    wait_until(lambda: ups(exporter.metrics())["cache"] == 1, 5)


def pgbouncer_admin(stack: Stack, command: str) -> str:
    return servers.run(
        [
            str(PG_BIN / "psql"),
            "-X",
            "-At",
            "-c",
            command,
            f"host=127.0.0.1 port={stack.pgbouncer.port} dbname=pgbouncer user={ADMIN_USER}"
            " sslmode=require",
        ],
        env={**os.environ, "PGPASSWORD": stack.pgbouncer.admin_password},
    )


def test_a_paused_pgbouncer_keeps_reporting_and_shows_the_pause(
    stack: Stack, exporter: ExporterProcess
) -> None:
    pgbouncer_admin(stack, "PAUSE app")
    waiting = subprocess.Popen(
        [
            str(PG_BIN / "psql"),
            "-X",
            "-c",
            "SELECT 1",
            f"host=127.0.0.1 port={stack.pgbouncer.port} dbname=app user={MONITORING_USER}"
            " sslmode=require",
        ],
        env={**os.environ, "PGPASSWORD": stack.monitoring_password},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(1)
        elapsed, metrics = timed_metrics(exporter)
        assert elapsed < SCRAPE_BOUND
        assert ups(metrics)["bouncer"] == 1
        assert (
            value(metrics, "pgstack_pgbouncer_database_paused", target="bouncer", database="app")
            == 1
        )
        pool = {"target": "bouncer", "database": "app", "user": MONITORING_USER}
        assert (
            value(metrics, "pgstack_pgbouncer_pool_client_connections", state="waiting", **pool)
            == 1
        )
    finally:
        pgbouncer_admin(stack, "RESUME app")
        # PgBouncer 1.18 does not always hand a server to a client that logged in while paused.
        os.killpg(waiting.pid, 15)
        waiting.wait(10)


def connections(stack: Stack) -> dict[str, int]:
    pg = int(
        stack.primary.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'pgstack_monitoring'"
        )
    )
    clients = pgbouncer_admin(stack, "SHOW CLIENTS").splitlines()
    bouncer = sum(
        1
        for row in clients
        if row.split("|")[1] == MONITORING_USER and row.split("|")[2] == "pgbouncer"
    )
    listing = servers.redis_cli(stack.redis, stack.pki, "CLIENT", "LIST").splitlines()
    redis = sum(1 for row in listing if " user=monitoring " in f" {row} ")
    return {"postgresql": pg, "pgbouncer": bouncer, "redis": redis}


def test_one_connection_per_target_under_20_concurrent_scrapes(
    stack: Stack, exporter: ExporterProcess
) -> None:
    exporter.metrics()
    most = {"postgresql": 0, "pgbouncer": 0, "redis": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for kind, count in connections(stack).items():
                most[kind] = max(most[kind], count)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    durations: list[float] = []
    lock = threading.Lock()

    def scrape_five() -> None:
        for _ in range(5):
            elapsed, metrics = timed_metrics(exporter)
            assert set(ups(metrics).values()) == {1.0}
            with lock:
                durations.append(elapsed)

    threads = [threading.Thread(target=scrape_five) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sampler.join()
    assert len(durations) == 100
    assert most == {"postgresql": 1, "pgbouncer": 1, "redis": 1}
    print(
        f"\nconnections held per target under 20 concurrent scrapes: {most};"
        f" slowest {max(durations):.3f} s"
    )

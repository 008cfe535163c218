"""Redis Sentinel, real: a master, its replica and three sentinels (quorum 2) as roles/redis sets
them up (TLS only, client certificates, the role's ACL rules; down-after-milliseconds 1000), each
sentinel a target of the exporter. What the exporter reports of them healthy, with the master
stopped (without and with a failover), with two sentinels gone, and with a wrong password; and
that the sentinels' monitoring user may run what the collector runs and nothing else."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import exporter_servers as servers
import pytest
import redis
from exporter_servers import SENTINEL_MASTER, SENTINEL_QUORUM, Pki, Redis, SentinelSet
from exporter_stack import ExporterProcess, running
from test_exporter_faults import wait_until
from test_exporter_metrics import CATALOGUE, Metrics, value

from pgstack_exporter.collectors.sentinel import address, count_up, fields, flags
from pgstack_exporter.config import parse
from pgstack_exporter.redis_target import redis_py_connect

TARGETS = ("s0", "s1", "s2")


@dataclasses.dataclass
class Setup:
    root: Path
    pki: Pki
    servers: SentinelSet
    password_file: Path

    def target(self, n: int, password_file: Path | None = None) -> dict[str, Any]:
        return {
            "name": TARGETS[n],
            "host": "127.0.0.1",
            "port": self.servers.sentinels[n].port,
            "username": "monitoring",
            "password_file": str(password_file or self.password_file),
            "ca_file": str(self.pki.ca),
            "cert_file": str(self.pki.client_cert),
            "key_file": str(self.pki.client_key),
            "master_name": SENTINEL_MASTER,
        }

    def config(self, *targets: dict[str, Any]) -> dict[str, Any]:
        listed = targets or tuple(self.target(n) for n in range(len(TARGETS)))
        return {"version": 1, "sentinel": list(listed), "health": {"interval_seconds": 1}}

    def admin(self, n: int) -> redis.Redis:
        """A client of sentinel ``n`` as its admin (redis-py: the password never in argv)."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.servers.sentinels[n].port,
            username="admin",
            password=self.servers.sentinels[n].admin_password,
            ssl=True,
            ssl_ca_certs=str(self.pki.ca),
            ssl_certfile=str(self.pki.client_cert),
            ssl_keyfile=str(self.pki.client_key),
            socket_timeout=5,
        )

    def ask(self, n: int, *command: str) -> Any:
        """A command to sentinel ``n`` as its admin."""
        client = self.admin(n)
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def master_address(self) -> str:
        host, port = self.ask(0, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER)
        return f"{host.decode()}:{port.decode()}"

    def healthy(self) -> bool:
        """Every sentinel sees the two others up, a linked replica, and the same master (read
        with the collector's own parsing)."""
        masters = set()
        for n in range(len(TARGETS)):
            master = fields(self.ask(n, "SENTINEL", "MASTER", SENTINEL_MASTER))
            replicas = [fields(r) for r in self.ask(n, "SENTINEL", "REPLICAS", SENTINEL_MASTER)]
            others = [fields(s) for s in self.ask(n, "SENTINEL", "SENTINELS", SENTINEL_MASTER)]
            if flags(master) != {"master"}:
                return False
            if (count_up(replicas, linked=True), count_up(others)) != (1, 2):
                return False
            masters.add(address(master))
        return len(masters) == 1


@pytest.fixture(scope="module")
def sentinels() -> Iterator[Setup]:
    with servers.scratch("pgstack-sentinel-it-") as (root, started):
        pki = servers.make_pki(root / "pki")
        password_file = root / "exporter" / "sentinel.password"
        password = servers.new_secret(password_file)
        setup = Setup(root, pki, servers.sentinel_set(root, pki, password, started), password_file)
        wait_until(setup.healthy, 20)
        yield setup


@pytest.fixture
def setup(sentinels: Setup) -> Setup:
    """The set, healthy again after whatever the test before did to it (the master may have
    moved: no test assumes which server it is)."""
    wait_until(sentinels.healthy, 30)
    return sentinels


@pytest.fixture
def exporter(setup: Setup) -> Iterator[ExporterProcess]:
    secrets = [setup.servers.monitoring_password]
    with running(setup.root / "exporter", setup.config(), secrets) as process:
        yield process


def each(metrics: Metrics, name: str, **labels: str) -> dict[str, float]:
    """The value of ``name`` on every sentinel target."""
    return {t: value(metrics, name, target=t, **labels) for t in TARGETS}


def scrape_until(
    exporter: ExporterProcess, what: str, check: Callable[[Metrics], bool], timeout: float
) -> Metrics:
    deadline = time.monotonic() + timeout
    while True:
        metrics = exporter.metrics()
        if check(metrics):
            return metrics
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


def addresses(metrics: Metrics) -> dict[str, str]:
    """The master's address as each sentinel target gives it."""
    return {
        dict(labels)["target"]: dict(labels)["address"]
        for (name, labels), _value in metrics.items()
        if name == "pgstack_sentinel_master_info"
    }


@contextlib.contextmanager
def stopped(*items: Redis) -> Iterator[None]:
    """``items`` stopped in the order given for the block, then started again the other way
    round."""
    for item in items:
        item.process.stop()
    try:
        yield
    finally:
        for item in reversed(items):
            item.process.start()
            servers.wait_port(item.port)


def current(setup: Setup) -> tuple[Redis, Redis]:
    """(master, replica) as the sentinels have them now."""
    address = setup.master_address()
    master, replica = sorted(
        (setup.servers.master, setup.servers.replica),
        key=lambda server: address != f"127.0.0.1:{server.port}",
    )
    return master, replica


def test_every_sentinel_metric_with_its_value(setup: Setup, exporter: ExporterProcess) -> None:
    metrics = exporter.metrics()
    catalogued = {name for name in CATALOGUE if name.startswith("pgstack_sentinel_")}
    assert len(catalogued) == 12
    assert sorted(catalogued - {name for name, _labels in metrics}) == []
    every = dict.fromkeys(TARGETS, 1.0)
    assert each(metrics, "pgstack_up", kind="sentinel") == every
    assert each(metrics, "pgstack_collector_success", collector="sentinel") == every
    master = {"master": SENTINEL_MASTER}
    address = setup.master_address()
    assert each(metrics, "pgstack_sentinel_master_info", address=address, **master) == every
    expected = {
        "pgstack_sentinel_master_sdown": 0,
        "pgstack_sentinel_master_odown": 0,
        "pgstack_sentinel_master_failover_in_progress": 0,
        "pgstack_sentinel_replicas": 1,
        "pgstack_sentinel_replicas_up": 1,
        "pgstack_sentinel_other_sentinels": 2,
        "pgstack_sentinel_other_sentinels_up": 2,
        "pgstack_sentinel_quorum": SENTINEL_QUORUM,
        "pgstack_sentinel_quorum_reachable": 1,
    }
    for name, number in expected.items():
        assert each(metrics, name, **master) == dict.fromkeys(TARGETS, number), name
    assert each(metrics, "pgstack_sentinel_tilt") == dict.fromkeys(TARGETS, 0.0)
    assert all(0 < v < 1 for v in each(metrics, "pgstack_sentinel_ping_seconds").values())
    now = time.time()
    for target in TARGETS:
        endpoint = f"sentinel/{target}"
        assert value(metrics, "pgstack_up", kind="tls", target=endpoint) == 1
        not_after = value(
            metrics, "pgstack_tls_certificate_not_after_timestamp_seconds", endpoint=endpoint
        )
        assert now + 6 * 86400 < not_after < now + 8 * 86400
    services = [f"sentinel:{target}" for target in TARGETS]
    wait_until(
        lambda: all(exporter.health()[1]["services"][s]["status"] == "up" for s in services), 5
    )
    code, document = exporter.health()
    assert (code, document["status"]) == (200, "healthy")
    assert set(document["services"]) == set(services)
    assert set(document["services"]["sentinel:s0"]) == {"status", "latencyMs", "latencyStatus"}


def test_the_monitoring_user_may_run_what_the_collector_runs_and_nothing_else(
    setup: Setup,
) -> None:
    """ACL DRYRUN of every command and subcommand the sentinel has (COMMAND, as admin): the
    monitoring user may run exactly the role's list; and a command it may not run is refused."""
    granted = {
        rule.removeprefix("+")
        for rule in servers.role_acl("__redis_sentinel_monitoring_commands").split()
    }
    admin = setup.admin(0)
    admin.set_response_callback("COMMAND", lambda reply, **_options: reply)
    allowed, tried = set(), 0
    try:
        for entry in admin.execute_command("COMMAND"):
            # name, arity, flags, keys (3), ACL categories, tips, key specs, subcommands
            for name, arity, *_rest in entry[9] or [entry]:
                words = name.decode().split("|")
                argv = words + ["x"] * (abs(int(arity)) - len(words))
                tried += 1
                if admin.execute_command("ACL", "DRYRUN", "monitoring", *argv) == b"OK":
                    allowed.add(name.decode())
    finally:
        admin.close()
    assert tried > 20
    # Every user may run AUTH and HELLO (to log in); beyond them, the role's list exactly.
    assert allowed == granted | {"auth", "hello"}
    session = redis_py_connect(parse(setup.config(setup.target(0))).sentinel[0])
    try:
        for words in (["SENTINEL", "FAILOVER", SENTINEL_MASTER], ["SENTINEL", "RESET", "*"]):
            with pytest.raises(redis.exceptions.NoPermissionError):
                session.command(*words)
        assert session.command("SENTINEL", "CKQUORUM", SENTINEL_MASTER).startswith(b"OK")
    finally:
        session.close()


def test_a_stopped_master_is_seen_down_by_every_sentinel(
    setup: Setup, exporter: ExporterProcess
) -> None:
    """The replica stopped, then the master: nothing to promote, the master stays down."""
    every = {"master": SENTINEL_MASTER}
    master, replica = current(setup)
    address = f"127.0.0.1:{master.port}"
    with stopped(replica, master):
        start = time.monotonic()
        metrics = scrape_until(
            exporter,
            "the master objectively down",
            lambda m: set(each(m, "pgstack_sentinel_master_odown", **every).values()) == {1},
            10,
        )
        print(f"\nevery sentinel reported the master down {time.monotonic() - start:.1f} s on")
        assert each(metrics, "pgstack_sentinel_master_sdown", **every) == dict.fromkeys(TARGETS, 1)
        assert each(metrics, "pgstack_sentinel_replicas_up", **every) == dict.fromkeys(TARGETS, 0)
        assert addresses(metrics) == dict.fromkeys(TARGETS, address)
        assert each(metrics, "pgstack_sentinel_quorum_reachable", **every) == (
            dict.fromkeys(TARGETS, 1)
        )
    scrape_until(
        exporter,
        "the master up again",
        lambda m: (
            set(each(m, "pgstack_sentinel_master_sdown", **every).values()) == {0}
            and set(each(m, "pgstack_sentinel_replicas_up", **every).values()) == {1}
        ),
        15,
    )


def test_a_failover_shows_as_a_new_master_address(setup: Setup, exporter: ExporterProcess) -> None:
    every = {"master": SENTINEL_MASTER}
    master, replica = current(setup)
    with stopped(master):
        start = time.monotonic()
        metrics = scrape_until(
            exporter,
            "the replica promoted",
            lambda m: addresses(m) == dict.fromkeys(TARGETS, f"127.0.0.1:{replica.port}"),
            20,
        )
        print(f"\nevery sentinel named the new master {time.monotonic() - start:.1f} s on")
        # The old master is now a replica of the new one, and down.
        assert each(metrics, "pgstack_sentinel_replicas", **every) == dict.fromkeys(TARGETS, 1)
        assert each(metrics, "pgstack_sentinel_replicas_up", **every) == dict.fromkeys(TARGETS, 0)
        assert each(metrics, "pgstack_sentinel_master_sdown", **every) == dict.fromkeys(TARGETS, 0)
    # The old master back as a replica at once, rather than at the sentinels' next INFO of it
    # (every 10 s), and the sentinels' lists made anew.
    servers.redis_cli(master, setup.pki, "REPLICAOF", "127.0.0.1", str(replica.port))
    for n in range(len(TARGETS)):
        setup.ask(n, "SENTINEL", "RESET", SENTINEL_MASTER)


def test_the_quorum_is_unreachable_with_two_sentinels_gone(
    setup: Setup, exporter: ExporterProcess
) -> None:
    master = {"master": SENTINEL_MASTER}
    with stopped(*setup.servers.sentinels[1:]):
        metrics = scrape_until(
            exporter,
            "NOQUORUM",
            lambda m: value(m, "pgstack_sentinel_quorum_reachable", target="s0", **master) == 0,
            10,
        )
        assert each(metrics, "pgstack_up", kind="sentinel") == {"s0": 1, "s1": 0, "s2": 0}
        assert value(metrics, "pgstack_collector_success", collector="sentinel", target="s0") == 1
        assert value(metrics, "pgstack_collector_success", collector="sentinel", target="s1") == 0
        assert value(metrics, "pgstack_sentinel_other_sentinels", target="s0", **master) == 2
        assert value(metrics, "pgstack_sentinel_other_sentinels_up", target="s0", **master) == 0
        wait_until(lambda: exporter.health()[1]["services"]["sentinel:s1"]["status"] == "down", 5)
        code, document = exporter.health()
        assert (code, document["status"]) == (200, "degraded")
        assert document["services"]["sentinel:s1"]["message"]
    scrape_until(
        exporter,
        "the quorum back",
        lambda m: set(each(m, "pgstack_sentinel_quorum_reachable", **master).values()) == {1},
        15,
    )


def test_a_refused_password_is_a_failed_scrape_not_a_crash(setup: Setup) -> None:
    wrong = setup.root / "exporter" / "wrong.password"
    wrong_password = servers.new_secret(wrong, "wrong")
    config = setup.config(setup.target(0, password_file=wrong), setup.target(1))
    secrets = [wrong_password, setup.servers.monitoring_password]
    with running(setup.root / "exporter", config, secrets) as process:
        metrics = process.metrics()
        assert value(metrics, "pgstack_up", kind="sentinel", target="s0") == 0
        assert value(metrics, "pgstack_up", kind="sentinel", target="s1") == 1
        assert value(metrics, "pgstack_collector_success", collector="sentinel", target="s0") == 0
        assert not [
            labels
            for name, labels in metrics
            if ("target", "s0") in labels and name.startswith("pgstack_sentinel_")
        ]
        wait_until(lambda: process.health()[1]["services"]["sentinel:s0"]["status"] == "down", 5)
        code, document = process.health()
        assert (code, document["status"]) == (200, "degraded")
        message = document["services"]["sentinel:s0"]["message"]
        assert "password" in message
        assert wrong_password not in message
        assert process.popen.poll() is None
    assert "sentinel s0: down" in process.log.read_text()

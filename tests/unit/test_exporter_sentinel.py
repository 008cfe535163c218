"""Redis Sentinel targets: their configuration, the sentinel collector through a fake session
answering as Redis 7 Sentinel does, and their place in /health and the TLS probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.registry import CollectorRegistry
from test_exporter_collectors import config, registry_of
from test_exporter_config import problems, write
from test_exporter_health import probed
from test_exporter_support import FakeClock, FakeRedisConnector

from pgstack_exporter.config import SentinelTarget, load
from pgstack_exporter.exporter import COLLECTORS, Exporter, Seams, overall_status, tls_endpoints

SENTINEL = {
    "name": "pg1",
    "host": "pg1.test",
    "username": "monitoring",
    "password_file": "/etc/pgstack/exporter/sentinel.password",
    "master_name": "pgstack",
    "tls_probe": False,
}
VALID = """
version: 1
sentinel:
  - name: pg1
    host: 10.77.41.61
    username: monitoring
    password_file: /etc/pgstack/exporter/sentinel.password
    ca_file: /etc/pgstack/tls/ca.crt
    master_name: pgstack
"""


def instance(**fields: Any) -> list[bytes]:
    """An instance as SENTINEL MASTER, REPLICAS and SENTINELS describe it: names and values."""
    return [str(item).encode() for pair in fields.items() for item in pair]


MASTER = instance(
    name="pgstack",
    ip="10.77.41.61",
    port=6379,
    runid="3e08c2b56b1471820204a1cb7d009f2d45093018",
    flags="master",
    **{"config-epoch": 0, "num-slaves": 1, "num-other-sentinels": 2, "quorum": 2},
)
REPLICA = instance(ip="10.77.41.62", port=6379, flags="slave", **{"master-link-status": "ok"})
SENTINELS = [
    instance(ip="10.77.41.62", port=26379, flags="sentinel"),
    instance(ip="10.77.41.63", port=26379, flags="sentinel"),
]
CKQUORUM_OK = b"OK 3 usable Sentinels. Quorum and failover authorization can be reached"
NOQUORUM = redis.ResponseError(
    "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the specified quorum "
    "for this master. Not enough available Sentinels to reach the majority and authorize a "
    "failover"
)


def replies(**changes: Any) -> dict[tuple[str, ...], Any]:
    answers: dict[str, Any] = {
        "MASTER": MASTER,
        "REPLICAS": [REPLICA],
        "SENTINELS": SENTINELS,
        "CKQUORUM": CKQUORUM_OK,
        **changes,
    }
    return {("SENTINEL", word, "pgstack"): reply for word, reply in answers.items()}


def scraped(answers: dict[tuple[str, ...], Any]) -> CollectorRegistry:
    connector = FakeRedisConnector({"sentinel_tilt": 0}, replies=answers)
    _exp, reg = registry_of(config(sentinel=[SENTINEL]), redis=connector)
    return reg


T = {"target": "pg1", "master": "pgstack"}


def test_a_sentinel_target_is_read_like_redis_with_its_master_name(tmp_path: Path) -> None:
    [sentinel] = load(write(tmp_path, VALID)).sentinel
    assert isinstance(sentinel, SentinelTarget)
    assert (sentinel.port, sentinel.tls, sentinel.timeout_seconds) == (26379, True, 2.0)
    assert (sentinel.master_name, sentinel.username) == ("pgstack", "monitoring")


def test_bad_sentinel_targets_name_each_problem(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
version: 1
sentinel:
  - {name: pg1, host: h, username: m}
  - {name: pg2, host: h, username: m, master_name: "my master", port: 0, cert_file: /c}
  - {name: pg3, host: h, username: m, master_name: 5, password: secret}
  - {name: 7, host: h, username: m, master_name: pgstack}
""",
    )
    assert "sentinel[0].master_name: is required" in found
    assert "sentinel[1].master_name: must match ^[A-Za-z0-9._-]{1,64}$, got 'my master'" in found
    assert "sentinel[1].port: must be between 1 and 65535, got 0" in found
    assert "sentinel[1].cert_file: cert_file and key_file go together (mutual TLS)" in found
    assert "sentinel[2].master_name: must be a string, got 5" in found
    # Secrets only from files: a password key is not one of the keys.
    assert any(p.startswith("sentinel[2].password: unknown key (known: ") for p in found), found
    assert "sentinel[3].name: must be a string, got 7" in found
    assert len(found) == 7, found


def test_the_sentinels_view_of_the_master() -> None:
    reg = scraped(replies())
    v = reg.get_sample_value
    assert v("pgstack_up", {"kind": "sentinel", "target": "pg1"}) == 1
    assert v("pgstack_collector_success", {"collector": "sentinel", "target": "pg1"}) == 1
    assert v("pgstack_sentinel_master_info", {**T, "address": "10.77.41.61:6379"}) == 1
    expected = {
        "master_sdown": 0,
        "master_odown": 0,
        "master_failover_in_progress": 0,
        "replicas": 1,
        "replicas_up": 1,
        "other_sentinels": 2,
        "other_sentinels_up": 2,
        "quorum": 2,
        "quorum_reachable": 1,
    }
    assert {name: v(f"pgstack_sentinel_{name}", T) for name in expected} == expected
    assert v("pgstack_sentinel_tilt", {"target": "pg1"}) == 0
    assert v("pgstack_sentinel_ping_seconds", {"target": "pg1"}) is not None


def as_map(reply: list[bytes]) -> dict[bytes, bytes]:
    """The same instance as a RESP3 map (redis-py 5 and later speaking RESP3)."""
    return dict(zip(reply[0::2], reply[1::2], strict=True))


def test_resp3_maps_read_as_resp2_lists() -> None:
    answers = replies(
        MASTER=as_map(MASTER),
        REPLICAS=[as_map(REPLICA)],
        SENTINELS=[as_map(item) for item in SENTINELS],
    )
    resp2 = sample_values(scraped(replies()))
    assert len(resp2) == 11
    assert sample_values(scraped(answers)) == resp2


def sample_values(reg: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in reg.collect()
        if family.name.startswith("pgstack_sentinel_")
        and family.name != "pgstack_sentinel_ping_seconds"
        for s in family.samples
    }


def test_a_master_down_a_replica_unlinked_and_a_sentinel_gone() -> None:
    down = [b"s_down,o_down,failover_in_progress" if item == b"master" else item for item in MASTER]
    unlinked = [b"err" if item == b"ok" else item for item in REPLICA]
    gone = instance(ip="10.77.41.63", port=26379, flags="s_down,sentinel,disconnected")
    reg = scraped(
        replies(
            MASTER=down,
            REPLICAS=[unlinked, instance(ip="10.77.41.64", port=6379, flags="slave,s_down")],
            SENTINELS=[SENTINELS[0], gone],
            CKQUORUM=NOQUORUM,
        )
    )
    v = reg.get_sample_value
    assert v("pgstack_sentinel_master_sdown", T) == 1
    assert v("pgstack_sentinel_master_odown", T) == 1
    assert v("pgstack_sentinel_master_failover_in_progress", T) == 1
    assert (v("pgstack_sentinel_replicas", T), v("pgstack_sentinel_replicas_up", T)) == (2, 0)
    assert (
        v("pgstack_sentinel_other_sentinels", T),
        v("pgstack_sentinel_other_sentinels_up", T),
    ) == (2, 1)
    assert v("pgstack_sentinel_quorum_reachable", T) == 0
    assert v("pgstack_collector_success", {"collector": "sentinel", "target": "pg1"}) == 1


@pytest.mark.parametrize(
    "error",
    [
        redis.ResponseError("ERR No such master with that name"),
        redis.exceptions.NoPermissionError(
            "this user has no permissions to run the 'sentinel|ckquorum' command"
        ),
    ],
    ids=["unknown-master", "no-permission"],
)
def test_another_error_of_ckquorum_fails_the_collector(error: Exception) -> None:
    reg = scraped(replies(CKQUORUM=error))
    assert reg.get_sample_value("pgstack_up", {"kind": "sentinel", "target": "pg1"}) == 1
    success = {"collector": "sentinel", "target": "pg1"}
    assert reg.get_sample_value("pgstack_collector_success", success) == 0
    assert (
        reg.get_sample_value("pgstack_sentinel_master_info", {**T, "address": "10.77.41.61:6379"})
        is None
    )


def test_a_refused_login_is_a_target_down() -> None:
    connector = FakeRedisConnector({}, replies=replies())
    connector.fail = redis.AuthenticationError(
        "invalid username-password pair or user is disabled."
    )
    _exp, reg = registry_of(config(sentinel=[SENTINEL]), redis=connector)
    assert reg.get_sample_value("pgstack_up", {"kind": "sentinel", "target": "pg1"}) == 0
    assert (
        reg.get_sample_value(
            "pgstack_collector_success", {"collector": "sentinel", "target": "pg1"}
        )
        == 0
    )


def test_the_collector_switch_leaves_the_sentinel_unscraped() -> None:
    connector = FakeRedisConnector({}, replies=replies())
    exporter = Exporter(
        config(sentinel=[SENTINEL]),
        enabled=[name for name in COLLECTORS if name != "sentinel"],
        seams=Seams(clock=FakeClock(), redis=connector),
    )
    assert exporter.targets == []
    assert exporter.health()["services"] == {}


def test_health_has_the_sentinel_and_its_latency() -> None:
    connector = FakeRedisConnector({"sentinel_tilt": 0}, replies=replies())
    exporter = Exporter(
        config(sentinel=[SENTINEL]), seams=Seams(clock=FakeClock(), redis=connector)
    )
    document = probed(exporter)
    assert document["status"] == "healthy"
    assert document["services"] == {
        "sentinel": {"status": "up", "latencyMs": 0.0, "latencyStatus": "good"}
    }
    connector.fail = ConnectionRefusedError("Connection refused")
    exporter.close()
    exporter = Exporter(
        config(sentinel=[SENTINEL]), seams=Seams(clock=FakeClock(), redis=connector)
    )
    document = probed(exporter)
    assert document["status"] == "degraded"
    assert document["services"]["sentinel"] == {
        "status": "down",
        "latencyMs": 0.0,
        "message": "Connection refused",
        "latencyStatus": "timeout",
    }


@pytest.mark.parametrize(
    ("status", "latency", "overall"),
    [("up", "good", "healthy"), ("up", "slow", "degraded"), ("down", "timeout", "degraded")],
)
def test_a_sentinel_down_or_slow_degrades_health(status: str, latency: str, overall: str) -> None:
    services = {"sentinel:pg1": {"status": status, "latencyStatus": latency}}
    assert overall_status(services) == overall


def test_the_sentinel_tls_endpoint_is_probed() -> None:
    endpoints = tls_endpoints(config(sentinel=[{**SENTINEL, "tls_probe": True}]))
    assert [(e.name, e.host, e.port, e.protocol) for e in endpoints] == [
        ("sentinel/pg1", "pg1.test", 26379, "tls")
    ]

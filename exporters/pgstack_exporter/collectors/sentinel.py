"""sentinel: what one Redis Sentinel knows of the master it watches (SENTINEL MASTER, REPLICAS,
SENTINELS), whether the sentinels it reaches can authorise a failover (SENTINEL CKQUORUM), TILT
mode (INFO) and PING time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import SentinelTarget as SentinelConfig
from pgstack_exporter.metrics import Sample, gauge, sample
from pgstack_exporter.redis_target import SENTINEL_KIND, RedisAnswer, info_number
from pgstack_exporter.runtime import Clock

T = ("target", "master")
MASTER_INFO = gauge(
    "sentinel_master_info",
    "Always 1; the address (host:port) the sentinel gives for the master as a label.",
    *T,
    "address",
)
MASTER_SDOWN = gauge(
    "sentinel_master_sdown",
    "1 while this sentinel deems the master down (subjectively: no valid reply for "
    "down-after-milliseconds).",
    *T,
)
MASTER_ODOWN = gauge(
    "sentinel_master_odown",
    "1 while the master is objectively down: a quorum of sentinels told this one it is down.",
    *T,
)
FAILOVER = gauge(
    "sentinel_master_failover_in_progress", "1 while a failover of the master is under way.", *T
)
REPLICAS = gauge("sentinel_replicas", "Replicas of the master the sentinel knows, up or not.", *T)
REPLICAS_UP = gauge(
    "sentinel_replicas_up",
    "Replicas the sentinel sees up and linked to the master: candidates for a failover.",
    *T,
)
SENTINELS = gauge(
    "sentinel_other_sentinels", "Other sentinels of the master this one knows, up or not.", *T
)
SENTINELS_UP = gauge(
    "sentinel_other_sentinels_up", "Other sentinels of the master this one sees up.", *T
)
QUORUM = gauge(
    "sentinel_quorum", "Sentinels that must agree the master is down (its configured quorum).", *T
)
QUORUM_REACHABLE = gauge(
    "sentinel_quorum_reachable",
    "1 when SENTINEL CKQUORUM answers OK: the sentinels this one reaches make the quorum and a "
    "majority, so they can deem the master down and authorise a failover.",
    *T,
)
TILT = gauge(
    "sentinel_tilt",
    "1 while the sentinel is in TILT mode (its clock jumped or it stalled): it acts on nothing.",
    "target",
)
PING = gauge("sentinel_ping_seconds", "Round-trip time of a PING.", "target")

# Flags of an instance that is not up as the sentinel sees it (SENTINEL MASTER/REPLICAS/SENTINELS).
DOWN_FLAGS = frozenset({"s_down", "o_down", "disconnected"})


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def fields(reply: Any) -> dict[str, str]:
    """A sentinel's description of one instance as a dict of text: a map over RESP3 (redis-py 5
    and later when they speak it), a flat list of names and values over RESP2."""
    if isinstance(reply, dict):
        return {_text(name): _text(value) for name, value in reply.items()}
    items = [_text(item) for item in reply]
    return dict(zip(items[0::2], items[1::2], strict=True))


def flags(instance: dict[str, str]) -> set[str]:
    return set(instance.get("flags", "").split(","))


def address(instance: dict[str, str]) -> str:
    host, port = instance.get("ip", ""), instance.get("port", "")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def count_up(instances: Iterable[dict[str, str]], *, linked: bool = False) -> int:
    """Instances without a down flag (and, with ``linked``, whose replication link is ok)."""
    return sum(
        1
        for instance in instances
        if not flags(instance) & DOWN_FLAGS
        and (not linked or instance.get("master-link-status") == "ok")
    )


def quorum_reachable(answer: RedisAnswer, master: str) -> bool:
    """SENTINEL CKQUORUM: OK, or a NOQUORUM error; any other error (an unknown master, a command
    the user may not run) fails the collector."""
    try:
        answer.session.command("SENTINEL", "CKQUORUM", master)
    except redis.ResponseError as error:
        if str(error).startswith("NOQUORUM"):
            return False
        raise
    return True


def factory(config: SentinelConfig, _clock: Clock) -> Collect[RedisAnswer]:
    name = config.master_name

    def collect(answer: RedisAnswer) -> list[Sample]:
        command = answer.session.command
        master = fields(command("SENTINEL", "MASTER", name))
        replicas = [fields(item) for item in command("SENTINEL", "REPLICAS", name)]
        sentinels = [fields(item) for item in command("SENTINEL", "SENTINELS", name)]
        master_flags = flags(master)
        labels = {"target": config.name, "master": name}
        return [
            sample(MASTER_INFO, 1, address=address(master), **labels),
            sample(MASTER_SDOWN, "s_down" in master_flags, **labels),
            sample(MASTER_ODOWN, "o_down" in master_flags, **labels),
            sample(FAILOVER, "failover_in_progress" in master_flags, **labels),
            sample(REPLICAS, len(replicas), **labels),
            sample(REPLICAS_UP, count_up(replicas, linked=True), **labels),
            sample(SENTINELS, len(sentinels), **labels),
            sample(SENTINELS_UP, count_up(sentinels), **labels),
            sample(QUORUM, float(master.get("quorum", 0)), **labels),
            sample(QUORUM_REACHABLE, quorum_reachable(answer, name), **labels),
            sample(TILT, info_number(answer.info, "sentinel_tilt"), target=config.name),
            sample(PING, answer.ping_seconds, target=config.name),
        ]

    return collect


COLLECTOR = CollectorSpec(
    name="sentinel",
    kind=SENTINEL_KIND,
    metrics=(
        MASTER_INFO,
        MASTER_SDOWN,
        MASTER_ODOWN,
        FAILOVER,
        REPLICAS,
        REPLICAS_UP,
        SENTINELS,
        SENTINELS_UP,
        QUORUM,
        QUORUM_REACHABLE,
        TILT,
        PING,
    ),
    factory=factory,
)

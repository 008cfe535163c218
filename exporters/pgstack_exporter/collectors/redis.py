"""redis: memory, clients, keys, persistence and PING time, from INFO (and CONFIG GET maxclients
where INFO lacks it)."""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import RedisTarget as RedisConfig
from pgstack_exporter.metrics import MetricSpec, Sample, counter, gauge, sample
from pgstack_exporter.redis_target import KIND, RedisAnswer, info_number
from pgstack_exporter.runtime import Clock

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

# INFO field of each plain number.
FIELDS: tuple[tuple[MetricSpec, str], ...] = (
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


def factory(config: RedisConfig, _clock: Clock) -> Collect[RedisAnswer]:
    def collect(answer: RedisAnswer) -> list[Sample]:
        info, t = answer.info, config.name
        out = [sample(spec, info_number(info, key), target=t) for spec, key in FIELDS]
        ok = 1.0 if info.get("rdb_last_bgsave_status") == "ok" else 0.0
        out.append(sample(RDB_LAST_OK, ok, target=t))
        out.append(sample(PING, answer.ping_seconds, target=t))
        # INFO lists a database only while it holds keys; db0, the default, is always reported.
        keys = {"db0": 0.0}
        for key, value in info.items():
            if key.startswith("db") and key[2:].isdigit() and isinstance(value, dict):
                keys[key] = float(value.get("keys", 0))
        out += [sample(DB_KEYS, n, target=t, db=db) for db, n in keys.items()]
        maxclients = info.get("maxclients")
        if maxclients is None:  # older INFO without maxclients: ask CONFIG GET
            maxclients = answer.session.config_get("maxclients").get("maxclients", 0)
        out.append(sample(MAXCLIENTS, float(maxclients), target=t))
        return out

    return collect


COLLECTOR = CollectorSpec(
    name="redis",
    kind=KIND,
    metrics=(
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
    ),
    factory=factory,
)

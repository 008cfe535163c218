"""settings: connection limits and the settings that wait for a restart."""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.config import PostgresTarget as PostgresConfig
from pgstack_exporter.metrics import Sample, gauge, sample
from pgstack_exporter.postgresql import KIND
from pgstack_exporter.runtime import Clock
from pgstack_exporter.sql import SqlSession

MAX_CONNECTIONS = gauge("postgresql_max_connections", "The max_connections setting.", "target")
RESERVED = gauge(
    "postgresql_reserved_connections",
    "Connections reserved for superusers (and pg_use_reserved_connections).",
    "target",
)
PENDING_RESTART = gauge(
    "postgresql_settings_pending_restart",
    "Settings changed in the configuration that need a restart.",
    "target",
)

QUERY = """
SELECT name, setting, pending_restart FROM pg_settings
 WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
    OR pending_restart
"""
RESERVED_SETTINGS = ("superuser_reserved_connections", "reserved_connections")


def factory(config: PostgresConfig, _clock: Clock) -> Collect[SqlSession]:
    def collect(session: SqlSession) -> list[Sample]:
        rows = session.query("settings", QUERY)
        settings = {str(row["name"]): str(row["setting"]) for row in rows}
        reserved = sum(int(settings.get(name, "0")) for name in RESERVED_SETTINGS)
        pending = sum(1 for row in rows if row["pending_restart"])
        return [
            sample(MAX_CONNECTIONS, int(settings.get("max_connections", "0")), target=config.name),
            sample(RESERVED, reserved, target=config.name),
            sample(PENDING_RESTART, pending, target=config.name),
        ]

    return collect


COLLECTOR = CollectorSpec(
    name="settings",
    kind=KIND,
    metrics=(MAX_CONNECTIONS, RESERVED, PENDING_RESTART),
    factory=factory,
    part_of="postgresql",
)

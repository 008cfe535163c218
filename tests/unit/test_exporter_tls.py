"""TLS probes: one per endpoint, cached for tls.interval_seconds, failures reported as 0."""

from __future__ import annotations

import ssl

from test_exporter_support import FakeClock

from pgstack_exporter.config import parse
from pgstack_exporter.exporter import Exporter, Seams, tls_endpoints
from pgstack_exporter.tls import Endpoint

CONFIG = {
    "version": 1,
    "postgresql": [{"name": "db1", "host": "db1.test", "user": "m", "sslrootcert": "/ca.crt"}],
    "pgbouncer": [{"name": "db1", "host": "db1.test", "user": "m", "sslmode": "disable"}],
    "redis": [{"name": "db1", "host": "db1.test", "username": "m", "ca_file": "/ca.crt"}],
    "tls": {
        "interval_seconds": 60,
        "probes": [{"name": "pgbackrest/bk", "host": "bk.test", "port": 8432}],
    },
}


class FakeProbe:
    def __init__(self) -> None:
        self.calls: list[Endpoint] = []
        self.fail: set[str] = set()

    def __call__(self, endpoint: Endpoint, timeout: float) -> float:
        self.calls.append(endpoint)
        if endpoint.name in self.fail:
            raise ssl.SSLCertVerificationError(
                "certificate verify failed: unable to get local issuer certificate"
            )
        return 1_900_000_000.0


def test_endpoints_come_from_the_servers_and_tls_probes() -> None:
    endpoints = tls_endpoints(parse(CONFIG))
    assert [(e.name, e.protocol, e.port) for e in endpoints] == [
        ("postgresql/db1", "postgres", 5432),
        ("redis/db1", "tls", 6379),
        ("pgbackrest/bk", "tls", 8432),
    ]


def test_probes_are_cached_and_failures_are_zero() -> None:
    clock = FakeClock()
    probe = FakeProbe()
    probe.fail.add("redis/db1")
    exporter = Exporter(parse(CONFIG), enabled=["tls"], seams=Seams(clock=clock, certificate=probe))
    reg = exporter.registry()
    pg = {"endpoint": "postgresql/db1", "address": "db1.test:5432"}
    redis = {"endpoint": "redis/db1", "address": "db1.test:6379"}
    assert (
        reg.get_sample_value("pgstack_tls_certificate_not_after_timestamp_seconds", pg)
        == 1_900_000_000
    )
    assert reg.get_sample_value("pgstack_tls_probe_success", pg) == 1
    assert reg.get_sample_value("pgstack_tls_probe_success", redis) == 0
    assert (
        reg.get_sample_value("pgstack_tls_certificate_not_after_timestamp_seconds", redis) is None
    )
    assert reg.get_sample_value("pgstack_up", {"kind": "tls", "target": "redis/db1"}) == 0
    clock.advance(30)
    assert reg.get_sample_value("pgstack_tls_probe_age_seconds", pg) == 30
    assert len(probe.calls) == 3
    clock.advance(31)
    reg.get_sample_value("pgstack_tls_probe_age_seconds", pg)
    assert len(probe.calls) == 6

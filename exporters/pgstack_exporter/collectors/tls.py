"""tls: the expiry of the certificate every TLS endpoint serves, and whether it verified."""

from __future__ import annotations

from pgstack_exporter.collector import Collect, CollectorSpec
from pgstack_exporter.metrics import Sample, gauge, sample
from pgstack_exporter.runtime import Clock, Failed
from pgstack_exporter.tls import KIND, Endpoint, ProbeAnswer

E = ("endpoint", "address")
NOT_AFTER = gauge(
    "tls_certificate_not_after_timestamp_seconds",
    "notAfter of the certificate an endpoint serves (Unix time).",
    *E,
)
PROBE_OK = gauge(
    "tls_probe_success",
    "1 when the TLS handshake succeeded and the certificate verified against the CA.",
    *E,
)
PROBE_AGE = gauge("tls_probe_age_seconds", "Age of the last TLS probe of an endpoint.", *E)


def factory(_endpoint: Endpoint, _clock: Clock) -> Collect[ProbeAnswer]:
    def collect(answer: ProbeAnswer) -> list[Sample]:
        labels = {"endpoint": answer.endpoint.name, "address": answer.endpoint.address}
        out = [
            sample(PROBE_OK, 1.0 if answer.ok else 0.0, **labels),
            sample(PROBE_AGE, answer.age_seconds, **labels),
        ]
        if answer.ok and answer.not_after is not None:
            out.append(sample(NOT_AFTER, answer.not_after, **labels))
        if not answer.ok:
            raise Failed(answer.error, out)
        return out

    return collect


COLLECTOR = CollectorSpec(
    name="tls", kind=KIND, metrics=(NOT_AFTER, PROBE_OK, PROBE_AGE), factory=factory
)

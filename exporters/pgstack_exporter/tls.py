"""TLS certificate probes: notAfter of the certificate an endpoint serves, verified against a CA.

PostgreSQL and PgBouncer start TLS inside their own protocol (an SSLRequest packet answered by
``S``); Redis and pgBackRest's TLS server speak TLS from the first byte.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from pgstack_exporter.collector import Bound
from pgstack_exporter.runtime import Clock, Executor, Health, PartRecorder, ScrapeResult, Target

log = logging.getLogger(__name__)

KIND = "tls"
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    name: str
    host: str
    port: int
    protocol: Literal["tls", "postgres"]
    ca_file: Path | None = None
    server_name: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class ProbeAnswer:
    """What a scrape hands the collector: the last probe of the endpoint."""

    endpoint: Endpoint
    ok: bool
    error: str
    not_after: float | None
    age_seconds: float


class CertificateProbe(Protocol):
    def __call__(self, endpoint: Endpoint, timeout: float) -> float:
        """notAfter (Unix time) of the verified certificate; raises when it does not verify."""
        ...


def probe_certificate(endpoint: Endpoint, timeout: float) -> float:
    ca_file = str(endpoint.ca_file) if endpoint.ca_file else None
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as raw:
        raw.settimeout(timeout)
        if endpoint.protocol == "postgres":
            raw.sendall(SSL_REQUEST)
            answer = raw.recv(1)
            if answer != b"S":
                raise ConnectionError(f"the server refused TLS (answered {answer!r})")
        server_name = endpoint.server_name or endpoint.host
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            certificate = tls.getpeercert()
    if not certificate or "notAfter" not in certificate:
        raise ssl.SSLError("no certificate")
    return float(ssl.cert_time_to_seconds(str(certificate["notAfter"])))


class TlsTarget(Target):
    """One endpoint, probed at most every ``interval`` seconds (a probe is a new TLS session)."""

    kind = KIND

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        interval: float,
        timeout: float,
        probe: CertificateProbe,
        clock: Clock,
        executor: Executor,
        collectors: Sequence[Bound[ProbeAnswer]],
    ) -> None:
        super().__init__(endpoint.name, timeout + 0.5, clock, executor)
        self.endpoint = endpoint
        self.collectors = tuple(collectors)
        self.interval, self.probe_timeout = interval, timeout
        self._probe = probe
        self._probe_lock = threading.Lock()
        self._probed_at: float | None = None  # monotonic
        self._not_after: float | None = None
        self._ok = False
        self._error = ""

    @property
    def address(self) -> str:
        return self.endpoint.address

    def scrape(self) -> ScrapeResult:
        recorder = PartRecorder(self.clock, self.name)
        start = self.clock.monotonic()
        with self._probe_lock:
            if self._probed_at is None or start - self._probed_at >= self.interval:
                try:
                    self._not_after = self._probe(self.endpoint, self.probe_timeout)
                    self._ok, self._error = True, ""
                except (OSError, ValueError) as error:
                    self._ok, self._error = False, str(error).strip() or type(error).__name__
                    log.warning(
                        "tls probe %s (%s) failed: %s", self.name, self.address, self._error
                    )
                self._probed_at = self.clock.monotonic()
            answer = ProbeAnswer(
                endpoint=self.endpoint,
                ok=self._ok,
                error=self._error,
                not_after=self._not_after,
                age_seconds=self.clock.monotonic() - self._probed_at,
            )
        for collector in self.collectors:
            recorder.run(collector.name, lambda c=collector: c.collect(answer))  # type: ignore[misc]
        return ScrapeResult(
            up=answer.ok,
            samples=tuple(recorder.samples),
            parts=recorder.parts,
            health=Health(up=answer.ok, message=answer.error or None),
        )

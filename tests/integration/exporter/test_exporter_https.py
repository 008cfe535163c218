"""pgstack-exporter with --web.config.file, seen from outside: TLS from a throwaway CA, basic
authentication, and files changed under the running process (no targets: seconds per test)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import exporter_servers as servers
import pytest
from exporter_stack import REPO
from prometheus_client.parser import text_string_to_metric_families
from test_exporter_support import ThrowawayCa, basic, bcrypt_hash, replace

PASSWORD = "scrape-" + os.urandom(6).hex()
HEADERS = "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"


@dataclasses.dataclass
class Served:
    port: int
    popen: subprocess.Popen[bytes]
    log: Path
    web: Path
    ca: ThrowawayCa

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def context(self, client: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca.cert))
        if client is not None:
            context.load_cert_chain(*client)
        return context

    def get(
        self, path: str, authorization: str | None = None, context: ssl.SSLContext | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        request = urllib.request.Request(  # noqa: S310 (a local test URL)
            self.url + path, headers={"Authorization": authorization} if authorization else {}
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, context=context or self.context(), timeout=10
            ) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def served_serial(self) -> int:
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw,
            self.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            certificate = tls.getpeercert()
        assert certificate is not None
        return int(str(certificate["serialNumber"]), 16)


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCa:
    ca = ThrowawayCa.make(tmp_path / "tls")
    ca.issue("server", 1)
    ca.issue("client", 2, client=True)
    return ca


@pytest.fixture
def start(tmp_path: Path, ca: ThrowawayCa) -> Iterator[Callable[[str], Served]]:
    """Starts the exporter (no targets) with a web configuration file of TLS from ``ca`` and
    what the test adds; stops it, and checks its log holds no credential."""
    started: list[Served] = []

    def run(extra: str) -> Served:
        directory = tmp_path / f"exporter{len(started)}"
        directory.mkdir()
        config, web, log = (directory / name for name in ("exporter.yml", "web.yml", "log"))
        config.write_text("version: 1\n")
        web.write_text(
            f"tls_server_config:\n  cert_file: {ca.cert.parent / 'server.crt'}\n"
            f"  key_file: {ca.cert.parent / 'server.key'}\n" + extra
        )
        port = servers.free_port()
        env = {**os.environ, "PYTHONPATH": f"{REPO / 'exporters'}:{REPO / 'scripts'}"}
        argv = [sys.executable, "-m", "pgstack_exporter", f"--config.file={config}"]
        argv += [f"--web.config.file={web}", f"--web.listen-address=127.0.0.1:{port}"]
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [*argv, "--log.level=debug"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        served = Served(port, popen, log, web, ca)
        started.append(served)
        servers.wait_port(port)
        return served

    yield run
    for served in started:
        served.popen.terminate()
        served.popen.wait(10)
        log = served.log.read_text()
        assert PASSWORD not in log
        assert base64.b64encode(PASSWORD.encode()).decode()[:12] not in log


def users(**passwords: str) -> str:
    return "basic_auth_users:\n" + "".join(
        f"  {user}: '{bcrypt_hash(password)}'\n" for user, password in passwords.items()
    )


def test_metrics_need_credentials_and_health_does_not(start: Callable[[str], Served]) -> None:
    served = start(HEADERS + users(prometheus=PASSWORD))
    # A client that connects and says nothing holds its own thread only.
    with socket.create_connection(("127.0.0.1", served.port)):
        started = time.monotonic()
        code, headers, body = served.get("/metrics")
        assert time.monotonic() - started < 2
    assert code == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="pgstack-exporter"'
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert b"pgstack_" not in body
    for authorization in (basic("prometheus", "wrong"), basic("nobody", PASSWORD), "Bearer x"):
        code, _headers, body = served.get("/metrics", authorization)
        assert (code, b"pgstack_" in body) == (401, False)
    assert served.get("/", None)[0] == 401

    code, headers, body = served.get("/metrics", basic("prometheus", PASSWORD))
    assert code == 200
    assert headers["X-Content-Type-Options"] == "nosniff"
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    assert samples["pgstack_exporter_build_info"] == 1

    code, headers, body = served.get("/health")
    assert code == 200
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(body)["status"] == "healthy"
    log = served.log.read_text()
    assert "authentication failed for user 'prometheus'" in log
    assert "authentication failed for user 'nobody'" in log


def test_plain_http_to_the_tls_port_is_refused(start: Callable[[str], Served]) -> None:
    served = start("")
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as plain:
        plain.sendall(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := plain.recv(4096):
                answer += chunk
    assert not answer.startswith(b"HTTP/")
    assert b"pgstack_" not in answer
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{served.port}/health", timeout=10)
    assert "TLS handshake failed" in served.log.read_text()
    assert served.get("/health")[0] == 200  # the same server, over TLS


def tls11_client(ca: ThrowawayCa) -> ssl.SSLContext:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(ca.cert)
    client.minimum_version = client.maximum_version = ssl.TLSVersion.TLSv1_1
    client.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 offers TLS 1.1 at level 0 only
    return client


def can_offer_tls11(ca: ThrowawayCa) -> bool:
    """Whether this machine's OpenSSL completes a TLS 1.1 handshake at all (with a server that
    accepts TLS 1.1, run here)."""
    try:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(ca.cert.parent / "server.crt", ca.cert.parent / "server.key")
        server.minimum_version = ssl.TLSVersion.TLSv1_1
        server.set_ciphers("DEFAULT:@SECLEVEL=0")
        client = tls11_client(ca)
    except (ssl.SSLError, ValueError):
        return False
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def accept() -> None:
            with contextlib.suppress(OSError), listener.accept()[0] as sock:
                sock.settimeout(5)
                with server.wrap_socket(sock, server_side=True):
                    pass

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=5) as raw,
                client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                return tls.version() == "TLSv1.1"
        except OSError:
            return False
        finally:
            thread.join(5)


def tls11_handshake(served: Served) -> str:
    """The version of a TLS 1.1 handshake with ``served``; raises ssl.SSLError when refused."""
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw,
        tls11_client(served.ca).wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1:DeprecationWarning")
def test_tls_1_1_is_refused_below_min_version(start: Callable[[str], Served]) -> None:
    served = start("  min_version: TLS12\n")
    if not can_offer_tls11(served.ca):
        pytest.skip("this machine's OpenSSL cannot make a TLS 1.1 handshake")
    with pytest.raises(ssl.SSLError) as refused:
        tls11_handshake(served)
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
    tls12 = served.context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw,
        tls12.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.2"
    # What refuses it is min_version: one of TLS11 lets the same client in.
    assert tls11_handshake(start("  min_version: TLS11\n")) == "TLSv1.1"


def test_a_renewed_certificate_is_served_on_the_next_connection(
    start: Callable[[str], Served],
) -> None:
    served = start("")
    assert served.served_serial() == 1
    directory = served.ca.cert.parent
    renewed, _key = served.ca.issue("renewed", 7, key=directory / "server.key")
    replace(directory / "server.crt", renewed.read_bytes())
    assert served.served_serial() == 7
    assert served.get("/health")[0] == 200
    assert served.popen.poll() is None  # the same process


def test_a_user_added_to_the_file_is_accepted_without_restart(
    start: Callable[[str], Served],
) -> None:
    served = start(users(prometheus=PASSWORD))
    tls = served.web.read_text().split("basic_auth_users:")[0]
    assert served.get("/metrics", basic("grafana", PASSWORD + "-g"))[0] == 401
    replace(served.web, (tls + users(prometheus=PASSWORD, grafana=PASSWORD + "-g")).encode())
    assert served.get("/metrics", basic("grafana", PASSWORD + "-g"))[0] == 200
    assert served.get("/metrics", basic("prometheus", PASSWORD))[0] == 200
    # A file that does not load: the last good configuration stays, TLS and users alike.
    replace(served.web, b"basic_auth_users: [\n")
    assert served.get("/metrics", basic("grafana", PASSWORD + "-g"))[0] == 200
    assert served.get("/metrics")[0] == 401
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{served.port}/health", timeout=10)
    assert served.log.read_text().count("not reloaded, the last good one stays") == 1
    assert served.popen.poll() is None


def test_a_client_without_a_certificate_is_refused(
    start: Callable[[str], Served], ca: ThrowawayCa, tmp_path: Path
) -> None:
    served = start(f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca.cert}\n")
    with pytest.raises((OSError, http.client.HTTPException)):
        served.get("/health")
    stranger = ThrowawayCa.make(tmp_path / "other", "other-ca").issue("stranger", 9, client=True)
    with pytest.raises((OSError, http.client.HTTPException)):
        served.get("/health", context=served.context(stranger))
    client = (ca.cert.parent / "client.crt", ca.cert.parent / "client.key")
    assert served.get("/health", context=served.context(client))[0] == 200

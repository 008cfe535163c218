"""Stand-ins for the members of a Patroni cluster, for the haproxy role's test: on each member's own
loopback address (127.0.0.2, 127.0.0.3, ...), on the same ports on every member as in a real
cluster, Patroni's REST API (HTTPS with a certificate for the member's name from a throwaway CA,
answering GET and OPTIONS /primary and /replica by the role the test gives the member, as Patroni
does: OPTIONS with the status alone) and two plain TCP
listeners for PgBouncer and PostgreSQL, which greet each client with ``<service> <member>``
and keep its connection open. All of it runs in threads of the test's process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

# What Patroni's REST API answers 200 to, by the member's role; any other request gets 503.
ANSWERS = {"primary": "/primary", "replica": "/replica"}


def openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], capture_output=True, check=True, timeout=60)


def make_ca(directory: Path, members: dict[str, str]) -> Path:
    """A CA (ca.crt) and, for each member {name: address}, <name>.crt and <name>.key naming the
    member as the pki role does: its inventory name (DNS) and its address (IP)."""
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
            "-subj", "/CN=pgstack haproxy test CA")  # fmt: skip
    for name, address in members.items():
        key, csr, crt, ext = (
            directory / f"{name}.{suffix}" for suffix in ("key", "csr", "crt", "ext")
        )
        ext.write_text(f"subjectAltName=DNS:{name},IP:{address}\nextendedKeyUsage=serverAuth\n")
        openssl("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}.test")
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                "-CAcreateserial", "-days", "1", "-out", str(crt),
                "-extfile", str(ext))  # fmt: skip
    return ca


class _Patroni(http.server.ThreadingHTTPServer):
    member: Member


class _PatroniHandler(http.server.BaseHTTPRequestHandler):
    server: _Patroni

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_OPTIONS(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        member = self.server.member
        status = 200 if ANSWERS.get(member.role) == self.path else 503
        body = f'{{"role": "{member.role}"}}'.encode() if with_body else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: HAProxy checks every member several times a second."""


class _Greeter:
    """A TCP listener that greets each client with a line and keeps the connection open."""

    def __init__(self, address: str, port: int, greeting: str) -> None:
        self.address, self.port = address, port
        self.greeting = greeting.encode() + b"\n"
        self.clients: list[socket.socket] = []
        self.open = False
        self.reopen()

    def reopen(self) -> None:
        """Listen (again)."""
        self.sock = socket.create_server((self.address, self.port))
        self.open = True
        threading.Thread(target=self._serve, args=(self.sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = sock.accept()
                self.clients.append(client)
                with contextlib.suppress(OSError):
                    client.sendall(self.greeting)

    def close(self) -> None:
        """Stop listening (connections are refused from now on) and end every client's."""
        self.open = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for client in self.clients:
            client.close()
        self.clients.clear()


@dataclasses.dataclass
class Member:
    name: str
    address: str
    # "primary", "replica" or anything else (Patroni down: 503 to both).
    role: str
    patroni: _Patroni | None = None
    services: dict[str, _Greeter] = dataclasses.field(default_factory=dict)

    def start(self, ports: dict[str, int], tls: Path) -> None:
        """Patroni on ports["patroni"] with tls/<name>.crt, the greeters on the other ports."""
        self.patroni = _Patroni((self.address, ports["patroni"]), _PatroniHandler)
        self.patroni.member = self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls / f"{self.name}.crt", tls / f"{self.name}.key")
        self.patroni.socket = context.wrap_socket(self.patroni.socket, server_side=True)
        threading.Thread(target=self.patroni.serve_forever, daemon=True).start()
        for service, port in ports.items():
            if service != "patroni":
                self.services[service] = _Greeter(self.address, port, f"{service} {self.name}")

    def stop(self) -> None:
        if self.patroni is not None:
            self.patroni.shutdown()
            self.patroni.server_close()
        for greeter in self.services.values():
            greeter.close()


def free_ports(count: int) -> list[int]:
    """count different TCP ports free on every address: each was bound on the wildcard address,
    which succeeds only when no address has it."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as probe:
            probe.bind(("0.0.0.0", 0))  # noqa: S104 - a probe, closed at once
            port = int(probe.getsockname()[1])
        if port not in found:
            found.append(port)
    return found


@contextlib.contextmanager
def running(members: Sequence[Member], ports: dict[str, int], tls: Path) -> Iterator[None]:
    try:
        for member in members:
            member.start(ports, tls)
        yield
    finally:
        for member in members:
            member.stop()

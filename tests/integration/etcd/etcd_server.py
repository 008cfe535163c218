"""A real single-member etcd (Debian's etcd-server) as a local process on 127.0.0.1, with TLS from a
throwaway CA made here with the cryptography package, and a client of its JSON gateway that talks
to it from the outside as an application would.

Each server has a data directory of its own and is stopped by the process the test started.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path) -> Pki:
    """A CA and, signed by it, a server certificate for IP:127.0.0.1, valid for a day."""
    directory.mkdir()
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("pgstack etcd test CA"))
        .issuer_name(_name("pgstack etcd test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("etcd"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.key.chmod(0o600)
    return pki


@dataclasses.dataclass(frozen=True)
class Etcd:
    endpoint: str
    ca: Path
    log: Path

    def call(
        self, path: str, body: dict[str, Any], token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST /v3/<path>: the HTTP status and etcd's JSON answer (an error's too)."""
        request = urllib.request.Request(  # noqa: S310 (https:// to the test's server)
            f"{self.endpoint}/v3/{path}", data=json.dumps(body).encode(), method="POST"
        )
        if token is not None:
            request.add_header("Authorization", token)
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def token(self, name: str, password: str) -> str | None:
        """A token for name, or None when etcd refuses the password."""
        status, answer = self.call("auth/authenticate", {"name": name, "password": password})
        return str(answer["token"]) if status == 200 else None

    def put(self, key: str, token: str | None = None) -> tuple[int, str]:
        """Write key; the status and etcd's message (empty on success)."""
        body = {"key": b64(key), "value": b64("pgstack-test")}
        status, answer = self.call("kv/put", body, token)
        return status, str(answer.get("message", ""))

    def range(self, prefix: str, token: str | None = None) -> tuple[int, str]:
        """Read the keys under prefix; the status and etcd's message (empty on success)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        status, answer = self.call("kv/range", {"key": b64(prefix), "range_end": b64(end)}, token)
        return status, str(answer.get("message", ""))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@contextlib.contextmanager
def running_etcd(directory: Path, pki: Pki) -> Iterator[Etcd]:
    """etcd on two free ports of 127.0.0.1 (clients over TLS, the peer port unused), its data in
    directory/data; killed on exit."""
    binary = shutil.which("etcd")
    if binary is None:
        raise FileNotFoundError("etcd not found: install Debian's etcd-server (make test-deps)")
    client, peer = f"https://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    log = directory / "etcd.log"
    argv = [
        binary,
        "--name=test",
        f"--data-dir={directory / 'data'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=test={peer}",
        f"--cert-file={pki.cert}",
        f"--key-file={pki.key}",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    etcd = Etcd(client, pki.ca, log)
    try:
        _wait_ready(etcd, process)
        yield etcd
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(etcd: Etcd, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"etcd exited {process.returncode}: {etcd.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, ValueError):  # not listening yet, not yet JSON
            if etcd.call("maintenance/status", {})[0] == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"etcd at {etcd.endpoint} not ready in {timeout} s")

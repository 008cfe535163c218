"""The lab as the benchmarks see it: hosts and addresses, secrets, the CA, commands on hosts."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import platform
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pgstack_lab.spec import LabSpec, load_spec


@dataclass(frozen=True)
class BenchLab:
    repo: Path
    quick: bool
    spec: LabSpec

    @classmethod
    def load(cls, repo: Path, *, quick: bool) -> BenchLab:
        return cls(repo=repo, quick=quick, spec=load_spec(repo / "inventory/lab/hosts.yml"))

    @property
    def lab_dir(self) -> Path:
        return self.repo / ".lab"

    @property
    def ca_file(self) -> Path:
        return self.lab_dir / "pki/ca.crt"

    @property
    def results_dir(self) -> Path:
        path = self.repo / ".bench"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def address(self, host: str) -> str:
        return str(self.spec.host(host).address)

    def fqdn(self, host: str) -> str:
        return self.spec.host(host).fqdn(self.spec.domain)

    def secret(self, name: str) -> str:
        """A generated lab secret (.lab/secrets/<name>); never printed."""
        return (self.lab_dir / "secrets" / name).read_text().strip()

    def ssh(
        self, host: str, command: str, *, stdin: str | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command as root on a lab host; secrets go through stdin, never argv."""
        return subprocess.run(
            [str(self.repo / ".venv/bin/pgstack-lab"), "ssh", host, command],
            input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def sh(self, host: str, command: str, *, stdin: str | None = None, timeout: float = 600) -> str:
        """Like ssh(), raising with the command's output when it fails."""
        proc = self.ssh(host, command, stdin=stdin, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{host}: {command!r} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"
            )
        return proc.stdout

    def pg_bin(self, host: str) -> str:
        """The server binaries of the newest PostgreSQL major on a host (its release's)."""
        return _pg_bin(self, host)

    def conninfo(self, host: str, port: int, dbname: str, user: str, **extra: str) -> str:
        """A libpq connection string with verify-full TLS to a lab host (no password in it)."""
        params = {
            "host": self.fqdn(host),
            "hostaddr": self.address(host),
            "port": str(port),
            "dbname": dbname,
            "user": user,
            "sslmode": "verify-full",
            "sslrootcert": str(self.ca_file),
            **extra,
        }
        return " ".join(f"{key}={shlex.quote(value)}" for key, value in params.items())

    def machine(self) -> dict[str, str]:
        """The machine the numbers were measured on."""
        cpu = "unknown"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        host = self.spec.hosts[0].name
        release = self.sh(host, '. /etc/os-release && echo "$PRETTY_NAME"').strip()
        return {
            "cpu": cpu,
            "cores": str(os.cpu_count()),
            "memory": f"{round(mem_kb / 1024 / 1024)} GiB",
            "kernel": platform.release(),
            "controller python": platform.python_version(),
            "lab hosts": f"systemd-nspawn machines, {release}",
        }


@functools.cache
def _pg_bin(lab: BenchLab, host: str) -> str:
    found = lab.sh(host, "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1").strip()
    if not found:
        raise RuntimeError(f"{host}: no PostgreSQL server binaries under /usr/lib/postgresql")
    return found


def scram_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL stores for a password (RFC 5802/7677): a scratch role
    created with it never sends the password itself to the server."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"

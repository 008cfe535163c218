"""The stack of real servers the exporter's integration tests scrape, and the exporter process."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import exporter_servers as servers
import yaml
from exporter_servers import MONITORING_USER, PgBouncer, Pki, Postgres, Process, Redis
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[3]


@dataclasses.dataclass
class Stack:
    root: Path
    pki: Pki
    primary: Postgres
    standby: Postgres
    pgbouncer: PgBouncer
    redis: Redis
    pgbackrest_server: Process
    pgbackrest_conf: Path
    pgbackrest_tls_port: int
    status_dir: Path
    monitoring_password: str

    def config(self, **overrides: Any) -> dict[str, Any]:
        """An exporter configuration for every server of the stack."""
        secret = str(self.root / "exporter" / "monitoring.password")
        pg = {
            "user": MONITORING_USER,
            "password_file": secret,
            "host": "127.0.0.1",
            "sslmode": "verify-full",
            "sslrootcert": str(self.pki.ca),
        }
        config: dict[str, Any] = {
            "version": 1,
            "postgresql": [
                {"name": "primary", "port": self.primary.port, **pg},
                {"name": "standby", "port": self.standby.port, "archiver": False, **pg},
            ],
            "pgbouncer": [{"name": "bouncer", "port": self.pgbouncer.port, **pg}],
            "redis": [
                {
                    "name": "cache",
                    "host": "127.0.0.1",
                    "port": self.redis.port,
                    "username": "monitoring",
                    "password_file": secret,
                    "ca_file": str(self.pki.ca),
                    "cert_file": str(self.pki.client_cert),
                    "key_file": str(self.pki.client_key),
                }
            ],
            "status_files": {"directory": str(self.status_dir)},
            "pgbackrest": {
                "command": "/usr/bin/pgbackrest",
                "config_file": str(self.pgbackrest_conf),
                "interval_seconds": 30,
            },
            "tls": {
                "probes": [
                    {
                        "name": "pgbackrest/local",
                        "host": "127.0.0.1",
                        "port": self.pgbackrest_tls_port,
                        "ca_file": str(self.pki.ca),
                        "server_name": "localhost",
                    }
                ]
            },
            "health": {"interval_seconds": 1},
        }
        config.update(overrides)
        return config


@dataclasses.dataclass
class ExporterProcess:
    url: str
    popen: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, timeout: float = 15) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as answer:  # noqa: S310
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        code, _headers, body = self.get("/metrics")
        assert code == 200
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
        }

    def health(self) -> tuple[int, dict[str, Any]]:
        code, _headers, body = self.get("/health")
        return code, json.loads(body)


def start_exporter(directory: Path, config: dict[str, Any], name: str) -> ExporterProcess:
    """An exporter process on ``config``, its configuration and log in ``directory``."""
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(config))
    port = servers.free_port()
    log = directory / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'exporters'}:{REPO / 'scripts'}"}
    check = subprocess.run(
        [sys.executable, "-m", "pgstack_exporter", "--config.file", str(path), "--check-config"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pgstack_exporter",
                "--config.file",
                str(path),
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=info",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    servers.wait_port(port)
    return ExporterProcess(f"http://127.0.0.1:{port}", popen, log)


def stop_exporter(process: ExporterProcess) -> None:
    process.popen.terminate()
    try:
        process.popen.wait(10)
    except subprocess.TimeoutExpired:
        process.popen.kill()
        process.popen.wait(10)


@contextlib.contextmanager
def running(
    directory: Path, config: dict[str, Any], secrets: Sequence[str]
) -> Iterator[ExporterProcess]:
    """A fresh exporter process for the block (its connections start from nothing); none of
    ``secrets`` may appear in its log."""
    process = start_exporter(directory, config, f"exporter-{time.monotonic_ns()}")
    try:
        yield process
    finally:
        stop_exporter(process)
        log = process.log.read_text()
        assert not [secret for secret in secrets if secret in log], "the exporter logged a password"

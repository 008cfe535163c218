"""Session fixtures: the real servers (servers.py) and a pgstack-exporter process scraping them."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import servers
import yaml
from prometheus_client.parser import text_string_to_metric_families
from servers import MONITORING_USER, STANZA, PgBouncer, Pki, Postgres, Process, Redis

REPO = Path(__file__).resolve().parents[3]
# The example status documents of the unit tests (documented formats), shared rather than copied.
sys.path.insert(0, str(REPO / "tests" / "unit"))
from test_exporter_support import DRILL_PITR, DUMP_SUCCESS  # noqa: E402


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


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="pgstack-exporter-it-"))
    root.chmod(0o755)
    started: list[Any] = []
    try:
        pki = servers.make_pki(root / "pki")
        password = "mon-" + os.urandom(12).hex()
        (root / "exporter").mkdir()
        (root / "exporter" / "monitoring.password").write_text(password + "\n")
        (root / "exporter" / "monitoring.password").chmod(0o600)
        tls_port = servers.free_port()
        pg_port = servers.free_port()
        planned = Postgres(root / "pg-primary", pg_port, root / "sockets")
        conf = servers.pgbackrest_config(root, pki, planned, tls_port)
        primary = servers.start_primary(root, pki, conf, pg_port)
        started.append(primary)
        primary.psql(
            f"CREATE ROLE {MONITORING_USER} LOGIN PASSWORD '{password}' IN ROLE pg_monitor"
        )
        servers.run(
            ["pgbackrest", f"--config={conf}", f"--stanza={STANZA}", "stanza-create"],
            user="postgres",
        )
        servers.run(
            ["pgbackrest", f"--config={conf}", f"--stanza={STANZA}", "--type=full", "backup"],
            user="postgres",
        )
        standby = servers.start_standby(root, primary)
        started.append(standby)
        bouncer = servers.pgbouncer(root, pki, primary, password)
        started.append(bouncer.process)
        redis = servers.redis_server(root, pki, password)
        started.append(redis.process)
        servers.redis_cli(redis, pki, "SET", "pgstack:test", "1")
        pgbackrest_server = Process(
            ["pgbackrest", f"--config={conf}", "server"],
            root / "pgbackrest-server.log",
            user="postgres",
        )
        pgbackrest_server.start()
        started.append(pgbackrest_server)
        servers.wait_port(tls_port)
        status_dir = root / "status"
        status_dir.mkdir()
        (status_dir / "pg_dump-db1-app.json").write_text(json.dumps(DUMP_SUCCESS))
        (status_dir / "drill-db1-pitr.json").write_text(json.dumps(DRILL_PITR))
        yield Stack(
            root,
            pki,
            primary,
            standby,
            bouncer,
            redis,
            pgbackrest_server,
            conf,
            tls_port,
            status_dir,
            password,
        )
    finally:
        for item in reversed(started):
            item.stop()
        shutil.rmtree(root, ignore_errors=True)


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


def start_exporter(stack: Stack, config: dict[str, Any], name: str) -> ExporterProcess:
    directory = stack.root / "exporter"
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(config))
    port = servers.free_port()
    log = directory / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "exporters")}
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


@pytest.fixture
def exporter(stack: Stack) -> Iterator[ExporterProcess]:
    """A fresh exporter process for one test (its connections start from nothing)."""
    process = start_exporter(stack, stack.config(), f"exporter-{time.monotonic_ns()}")
    try:
        yield process
    finally:
        stop_exporter(process)
        log = process.log.read_text()
        assert stack.monitoring_password not in log, "the exporter logged a password"

"""Session fixtures: the real servers (exporter_servers.py), an exporter process scraping them."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import exporter_servers as servers
import pytest
from exporter_servers import MONITORING_USER, STANZA, Postgres, Process
from exporter_stack import REPO, ExporterProcess, Stack, start_exporter, stop_exporter

# The example status documents of the unit tests (documented formats), shared rather than copied.
sys.path.insert(0, str(REPO / "tests" / "unit"))
from test_exporter_support import DRILL_PITR, DUMP_SUCCESS


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

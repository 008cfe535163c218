"""Session fixtures: the real servers (exporter_servers.py), an exporter process scraping them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import exporter_servers as servers
import pytest
from exporter_servers import MONITORING_USER, STANZA, Postgres, Process
from exporter_stack import REPO, ExporterProcess, Stack, running

# The example status documents of the unit tests (documented formats), shared rather than copied.
sys.path.insert(0, str(REPO / "tests" / "unit"))
from test_exporter_support import DRILL_PITR, DUMP_SUCCESS


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with servers.scratch("pgstack-exporter-it-") as (root, started):
        pki = servers.make_pki(root / "pki")
        password = servers.new_secret(root / "exporter" / "monitoring.password")
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


@pytest.fixture
def exporter(stack: Stack) -> Iterator[ExporterProcess]:
    """A fresh exporter process for one test (its connections start from nothing)."""
    with running(stack.root / "exporter", stack.config(), [stack.monitoring_password]) as process:
        yield process

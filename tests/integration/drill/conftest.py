"""A real PostgreSQL 15 primary with a local pgBackRest repository, as local processes.

Session-wide: a temporary directory (readable by the ``postgres`` OS user, unlike pytest's
0700 tmp_path), a free port on 127.0.0.1, TLS (self-signed, so the dump tool's verify-full
works), WAL archiving with ``pgbackrest archive-push`` into a posix repository in the temporary
directory, ``stanza-create``, ``check`` and one full backup. Everything runs as ``postgres``
through runuser and is stopped by the PID the tests started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"
STANZA = "drill"
CLUSTER = "itdb"
REPO_ROOT = Path(__file__).resolve().parents[3]


def as_postgres(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", OS_USER, "--", *argv],
        check=True, text=True, capture_output=True, timeout=300, **kwargs,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def owned_dir(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    shutil.chown(path, user=OS_USER, group=OS_USER)
    return path


@dataclass(frozen=True)
class Primary:
    base: Path
    data: Path
    socket_dir: Path
    port: int
    cert: Path
    pgbackrest_config: Path

    def conninfo(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={user}"

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conninfo(dbname), autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def pgbackrest(self, *args: str) -> str:
        return as_postgres(
            ["pgbackrest", f"--config={self.pgbackrest_config}", f"--stanza={STANZA}", *args]
        ).stdout

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])


@pytest.fixture(scope="session")
def base_dir() -> Iterator[Path]:
    if not (BIN / "initdb").is_file() or shutil.which("pgbackrest") is None:
        pytest.fail("needs postgresql-15 and pgbackrest (make host-deps installs them)")
    base = Path(tempfile.mkdtemp(prefix="pgstack-drill-it-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def primary(base_dir: Path) -> Iterator[Primary]:
    data = owned_dir(base_dir / "primary")
    sock = owned_dir(base_dir / "primary-run", 0o755)
    tls = owned_dir(base_dir / "tls")
    for sub in ("repo", "pgbackrest-log", "pgbackrest-lock", "pgbackrest-spool"):
        owned_dir(base_dir / sub)
    port = free_port()
    cert, key = tls / "server.crt", tls / "server.key"
    as_postgres(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                 "-keyout", str(key), "-out", str(cert)])  # fmt: skip
    tls.chmod(0o755)
    cert.chmod(0o644)
    config = base_dir / "pgbackrest.conf"
    config.write_text(
        "[global]\n"
        f"repo1-path={base_dir / 'repo'}\n"
        "repo1-retention-full=2\n"
        f"log-path={base_dir / 'pgbackrest-log'}\n"
        f"lock-path={base_dir / 'pgbackrest-lock'}\n"
        f"spool-path={base_dir / 'pgbackrest-spool'}\n"
        "log-level-console=warn\nlog-level-file=info\n"
        "start-fast=y\ncompress-type=zst\nprocess-max=2\n"
        f"[{STANZA}]\npg1-path={data}\npg1-port={port}\npg1-socket-path={sock}\n"
    )
    config.chmod(0o644)
    as_postgres([str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])  # fmt: skip
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{sock}'\n"
            f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n"
            "password_encryption = 'scram-sha-256'\ntimezone = 'UTC'\n"
            "wal_level = replica\narchive_mode = on\n"
            f"archive_command = 'pgbackrest --config={config} --stanza={STANZA} archive-push %p'\n"
            "fsync = off\nshared_buffers = 64MB\nmax_wal_size = 256MB\n"
        )
    (data / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
    )
    log = owned_dir(base_dir / "logs", 0o755) / "primary.log"
    as_postgres([str(BIN / "pg_ctl"), "start", "-w", "-D", str(data), "-l", str(log)],
                cwd=str(base_dir))  # fmt: skip
    node = Primary(base_dir, data, sock, port, cert, config)
    pid = node.pid()
    try:
        node.pgbackrest("stanza-create")
        node.pgbackrest("check")
        node.pgbackrest("--type=full", "backup")
        yield node
    finally:
        subprocess.run(["runuser", "-u", OS_USER, "--", str(BIN / "pg_ctl"), "stop", "-D",
                        str(data), "-m", "immediate", "-w"], check=False, capture_output=True)  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, 9)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True)
class Dumps:
    root: Path  # the --dumps-dir: <root>/<cluster>/<database>/<stamp>
    path: Path  # the one dump made


@pytest.fixture(scope="session")
def app_dump(primary: Primary, base_dir: Path) -> Dumps:
    """The sample workload (3 MiB) in database app, dumped by the real dump tool."""
    from pgstack_drill.cli import main  # noqa: PLC0415

    password = secrets.token_urlsafe(24)
    primary.execute("CREATE ROLE app_owner LOGIN")
    primary.execute("CREATE DATABASE app OWNER app_owner")
    primary.execute(
        f"CREATE ROLE pgstack_backup LOGIN PASSWORD '{password}' IN ROLE pg_read_all_data"
    )
    assert main(["workload", "--dbname", primary.conninfo("app", "app_owner"),
                 "--size-mb", "3", "--seed", "7"]) == 0  # fmt: skip
    root = base_dir / "dumps"
    (root / CLUSTER).mkdir(parents=True)
    status_dir = base_dir / "dump-status"
    status_dir.mkdir()
    passfile = base_dir / "pgpass"
    passfile.write_text(f"127.0.0.1:{primary.port}:*:pgstack_backup:{password}\n")
    passfile.chmod(0o600)
    config = base_dir / "pg_dump.yml"
    config.write_text(json.dumps({
        "version": 1, "cluster": CLUSTER,
        "connection": {"host": "127.0.0.1", "port": primary.port, "user": "pgstack_backup",
                       "passfile": str(passfile), "sslmode": "verify-full",
                       "sslrootcert": str(primary.cert)},
        "bin_dir": str(BIN), "destination": str(root / CLUSTER), "status_dir": str(status_dir),
        "compress_level": 1, "databases": ["app"],
    }))  # fmt: skip
    subprocess.run([sys.executable, "-m", "pgstack_backup", "--config.file", str(config), "dump"],
                   check=True, timeout=300, cwd=REPO_ROOT)  # fmt: skip
    (dump,) = (root / CLUSTER / "app").iterdir()
    return Dumps(root=root, path=dump)


@dataclass(frozen=True)
class DrillDirs:
    scratch: Path
    reports: Path
    status: Path
    port: int

    def common(self) -> list[str]:
        return ["--cluster", CLUSTER, "--scratch-dir", str(self.scratch), "--port", str(self.port),
                "--reports-dir", str(self.reports), "--status-dir", str(self.status),
                "--os-user", OS_USER]  # fmt: skip

    def report(self) -> dict[str, Any]:
        (path,) = self.reports.glob("*.json")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def status_file(self, kind: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.status / f"drill-{CLUSTER}-{kind}.json").read_text()
        )
        return data

    def kind_of_last(self) -> str:
        (path,) = self.status.glob(f"drill-{CLUSTER}-*.json")
        return path.stem.rsplit("-", 1)[1]

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.scratch.iterdir() if p.name.startswith("pgstack-drill-"))


@pytest.fixture
def drill_dirs(base_dir: Path) -> Iterator[DrillDirs]:
    own = Path(tempfile.mkdtemp(prefix="drill-", dir=base_dir))
    own.chmod(0o755)
    dirs = DrillDirs(own / "scratch", own / "reports", own / "status", free_port())
    for path in (dirs.scratch, dirs.reports, dirs.status):
        path.mkdir(mode=0o755)
    yield dirs
    shutil.rmtree(own, ignore_errors=True)

"""A real PostgreSQL primary with a local pgBackRest repository, as local processes.

The server is the one installed on this machine (its Debian release's major).

Session-wide: a temporary directory (readable by the ``postgres`` OS user, unlike pytest's
0700 tmp_path), a free port on 127.0.0.1, TLS (self-signed, so the dump tool's verify-full
works), WAL archiving with ``pgbackrest archive-push`` into a posix repository in the temporary
directory, ``stanza-create``, ``check`` and one full backup. Everything runs as ``postgres``
through runuser and is stopped by the PID the tests started.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from drill_helpers import (
    BIN,
    CLUSTER,
    REPO_ROOT,
    STANZA,
    DrillDirs,
    Dumps,
    Primary,
    as_postgres,
    dump_config,
    free_port,
    owned_dir,
    stop_postmaster,
)


@pytest.fixture(scope="session")
def base_dir() -> Iterator[Path]:
    if not (BIN / "initdb").is_file() or shutil.which("pgbackrest") is None:
        pytest.fail(f"needs initdb in {BIN} and pgbackrest (make host-deps installs them)")
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
    as_postgres(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ]
    )
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
    # The drill runs with the backup host's configuration: the same repository, and pg1-host
    # naming the database host (never reached: the drill restores with --reset-pg1-host).
    repo_config = base_dir / "pgbackrest-repo.conf"
    repo_config.write_text(
        config.read_text().replace(
            f"[{STANZA}]\n",
            f"[{STANZA}]\npg1-host=db1.invalid\npg1-host-type=tls\npg1-host-port=8432\n"
            f"pg1-host-cert-file={cert}\npg1-host-key-file={key}\npg1-host-ca-file={cert}\n",
        )
    )
    repo_config.chmod(0o644)
    as_postgres(
        [
            str(BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]
    )
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
        "local all all trust\nlocal replication all trust\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
    )
    log = owned_dir(base_dir / "logs", 0o755) / "primary.log"
    as_postgres(
        [str(BIN / "pg_ctl"), "start", "-w", "-D", str(data), "-l", str(log)], cwd=str(base_dir)
    )
    node = Primary(base_dir, data, sock, port, cert, config, repo_config)
    pid = node.pid()
    try:
        node.pgbackrest("stanza-create")
        node.pgbackrest("check")
        node.pgbackrest("--type=full", "backup")
        yield node
    finally:
        stop_postmaster(data, pid)


@pytest.fixture(scope="session")
def backup_passfile(primary: Primary, base_dir: Path) -> Path:
    """The role pgstack_backup (pg_read_all_data, a password), its libpq passfile."""
    password = secrets.token_urlsafe(24)
    primary.execute(
        f"CREATE ROLE pgstack_backup LOGIN PASSWORD '{password}' IN ROLE pg_read_all_data"
    )
    passfile = base_dir / "pgpass"
    passfile.write_text(f"127.0.0.1:{primary.port}:*:pgstack_backup:{password}\n")
    passfile.chmod(0o600)
    return passfile


@pytest.fixture(scope="session")
def app_dump(primary: Primary, base_dir: Path, backup_passfile: Path) -> Dumps:
    """The sample workload (3 MiB) in database app, dumped by the real dump tool."""
    from pgstack_drill.cli import main  # noqa: PLC0415

    primary.execute("CREATE ROLE app_owner LOGIN")
    primary.execute("CREATE DATABASE app OWNER app_owner")
    assert (
        main(
            [
                "workload",
                "--dbname",
                primary.conninfo("app", "app_owner"),
                "--size-mb",
                "3",
                "--seed",
                "7",
            ]
        )
        == 0
    )
    root = base_dir / "dumps"
    (root / CLUSTER).mkdir(parents=True)
    status_dir = base_dir / "dump-status"
    status_dir.mkdir()
    config = base_dir / "pg_dump.yml"
    config.write_text(
        dump_config(
            primary,
            backup_passfile,
            bin_dir=BIN,
            destination=root / CLUSTER,
            status_dir=status_dir,
            databases=["app"],
            compress_level=1,
        )
    )
    subprocess.run(
        [sys.executable, "-m", "pgstack_backup", "--config.file", str(config), "dump"],
        check=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    (dump,) = (root / CLUSTER / "app").iterdir()
    return Dumps(root=root, path=dump)


@pytest.fixture
def drill_dirs(base_dir: Path) -> Iterator[DrillDirs]:
    own = Path(tempfile.mkdtemp(prefix="drill-", dir=base_dir))
    own.chmod(0o755)
    dirs = DrillDirs(own / "scratch", own / "reports", own / "status", free_port())
    for path in (dirs.scratch, dirs.reports, dirs.status):
        path.mkdir(mode=0o755)
    yield dirs
    shutil.rmtree(own, ignore_errors=True)

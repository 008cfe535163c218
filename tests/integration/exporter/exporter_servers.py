"""Real servers from Debian's packages as local processes on 127.0.0.1, for the exporter's tests.

PostgreSQL of the machine's release (a primary and a streaming standby, initdb/pg_ctl as the
postgres user; the server binaries ``release.local_postgresql_bin()`` finds), pgBackRest
(a posix repository, WAL archiving, a full backup and its TLS server), PgBouncer and Redis, all
with TLS from a CA made here with openssl. Every process is stopped by the PID (or data directory)
it was started with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import yaml

from release import local_postgresql_bin

PG_BIN = local_postgresql_bin()
REDIS_ROLE_VARS = Path(__file__).resolve().parents[3] / "roles/redis/vars/main.yml"
MONITORING_USER = "pgstack_monitoring"
ADMIN_USER = "pgstack_admin"
STANZA = "main"


class Stoppable(Protocol):
    def stop(self) -> None: ...


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[tuple[Path, list[Stoppable]]]:
    """A directory for servers and their files, and the list to add each server to as it starts:
    at the end the servers are stopped, the last started first, and the directory removed."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    started: list[Stoppable] = []
    try:
        yield root, started
    finally:
        for item in reversed(started):
            item.stop()
        shutil.rmtree(root, ignore_errors=True)


def new_secret(path: Path, prefix: str = "mon") -> str:
    """A new password in ``path`` (one line, 0600), as the exporter reads its password files."""
    password = f"{prefix}-{os.urandom(12).hex()}"
    path.parent.mkdir(exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(
    argv: Sequence[str], user: str | None = None, timeout: float = 120, **kwargs: object
) -> str:
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return str(done.stdout)


def chown(path: Path, user: str, mode: int) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@dataclasses.dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path


def make_pki(directory: Path) -> Pki:
    """A CA and, signed by it, a server certificate for localhost/127.0.0.1 and a client one."""
    directory.mkdir()
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca),
            "-days",
            "30",
            "-subj",
            "/CN=pgstack test CA",
        ]
    )
    names = {
        "server": "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "extendedKeyUsage=serverAuth,clientAuth",
        "client": "extendedKeyUsage=clientAuth",
    }
    for name, extensions in names.items():
        key, csr, crt = (
            directory / f"{name}.key",
            directory / f"{name}.csr",
            directory / f"{name}.crt",
        )
        ext = directory / f"{name}.ext"
        ext.write_text(extensions + "\n")
        cn = "localhost" if name == "server" else "redis-exporter"
        run(
            [
                "openssl",
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(csr),
                "-subj",
                f"/CN={cn}",
            ]
        )
        run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                str(csr),
                "-CA",
                str(ca),
                "-CAkey",
                str(ca_key),
                "-CAcreateserial",
                "-days",
                "7",
                "-out",
                str(crt),
                "-extfile",
                str(ext),
            ]
        )
    for path in directory.iterdir():
        chown(path, "postgres", 0o600 if path.suffix == ".key" else 0o644)
    return Pki(
        ca,
        directory / "server.crt",
        directory / "server.key",
        directory / "client.crt",
        directory / "client.key",
    )


@dataclasses.dataclass
class Postgres:
    data: Path
    port: int
    socket_dir: Path

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return run(
            [
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-d",
                dbname,
                "-c",
                sql,
            ],
            user="postgres",
        )

    def start(self) -> None:
        log = self.data.parent / f"{self.data.name}.log"
        log.touch()
        chown(log, "postgres", 0o644)
        run(
            [
                str(PG_BIN / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data),
                "-l",
                str(log),
            ],
            user="postgres",
        )

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            run(
                [str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data)],
                user="postgres",
            )


def start_primary(root: Path, pki: Pki, pgbackrest_conf: Path, port: int) -> Postgres:
    data, sockets = root / "pg-primary", root / "sockets"
    sockets.mkdir(exist_ok=True)
    chown(sockets, "postgres", 0o755)
    data.mkdir()
    chown(data, "postgres", 0o700)
    run(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        user="postgres",
    )
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{sockets}'",
        "ssl": "on",
        "ssl_cert_file": f"'{pki.cert}'",
        "ssl_key_file": f"'{pki.key}'",
        "ssl_ca_file": f"'{pki.ca}'",
        "password_encryption": "'scram-sha-256'",
        "archive_mode": "on",
        "archive_timeout": "60",
        "wal_level": "replica",
        "archive_command": (
            f"'pgbackrest --config={pgbackrest_conf} --stanza={STANZA} archive-push %p'"
        ),
        "max_wal_senders": "4",
        "shared_buffers": "32MB",
        "fsync": "off",
    }
    with (data / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
    (data / "pg_hba.conf").write_text(
        "local all postgres peer\nlocal replication postgres peer\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
    )
    pg = Postgres(data, port, sockets)
    pg.start()
    return pg


def start_standby(root: Path, primary: Postgres) -> Postgres:
    data = root / "pg-standby"
    data.mkdir()
    chown(data, "postgres", 0o700)
    run(
        [
            str(PG_BIN / "pg_basebackup"),
            "-h",
            str(primary.socket_dir),
            "-p",
            str(primary.port),
            "-D",
            str(data),
            "-R",
            "-C",
            "-S",
            "standby1",
            "-X",
            "stream",
        ],
        user="postgres",
    )
    port = free_port()
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {port}\narchive_mode = off\nprimary_conninfo = 'host={primary.socket_dir} "
            f"port={primary.port} user=postgres application_name=standby1'\n"
        )
    standby = Postgres(data, port, primary.socket_dir)
    standby.start()
    return standby


def pgbackrest_config(root: Path, pki: Pki, primary: Postgres, tls_port: int) -> Path:
    """pgBackRest's configuration for ``primary``, written before it starts (archive_command)."""
    data, port, sockets = primary.data, primary.port, primary.socket_dir
    repo = root / "pgbackrest"
    for name in ("repo", "log", "lock", "spool"):
        (repo / name).mkdir(parents=True)
        chown(repo / name, "postgres", 0o750)
    chown(repo, "postgres", 0o755)
    conf = repo / "pgbackrest.conf"
    conf.write_text(
        f"[global]\nrepo1-path={repo / 'repo'}\nrepo1-retention-full=2\nlog-path={repo / 'log'}\n"
        f"lock-path={repo / 'lock'}\nspool-path={repo / 'spool'}\nstart-fast=y\ncompress-type=lz4\n"
        f"log-level-console=warn\n"
        f"tls-server-address=127.0.0.1\ntls-server-port={tls_port}\ntls-server-cert-file={pki.cert}\n"
        f"tls-server-key-file={pki.key}\ntls-server-ca-file={pki.ca}\ntls-server-auth=redis-exporter={STANZA}\n"
        f"[{STANZA}]\npg1-path={data}\npg1-port={port}\npg1-socket-path={sockets}\n"
    )
    chown(conf, "postgres", 0o640)
    return conf


class Process:
    """A foreground server process started here and stopped by its PID."""

    def __init__(self, argv: Sequence[str], log: Path, user: str | None = None) -> None:
        self.argv = [*(["runuser", "-u", user, "--"] if user else []), *argv]
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        # runuser answers a SIGTERM by waiting 2 s before it kills its child: the server (its
        # child) is sent it instead, and runuser exits with it. Without runuser, or its child
        # not found, the whole session: it is ours alone.
        children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        pids: list[int] = []
        with contextlib.suppress(OSError):
            pids = [int(pid) for pid in children.read_text().split()]
        if self.argv[0] == "runuser" and pids:
            for pid in pids:
                os.kill(pid, 15)
        else:
            os.killpg(self.popen.pid, 15)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, 9)
            self.popen.wait(10)


@dataclasses.dataclass
class PgBouncer:
    process: Process
    port: int
    admin_password: str


def pgbouncer(root: Path, pki: Pki, primary: Postgres, monitoring_password: str) -> PgBouncer:
    directory = root / "pgbouncer"
    directory.mkdir()
    chown(directory, "postgres", 0o755)
    port = free_port()
    admin_password = "admin-" + os.urandom(8).hex()
    users = directory / "userlist.txt"
    users.write_text(
        f'"{MONITORING_USER}" "{monitoring_password}"\n"{ADMIN_USER}" "{admin_password}"\n'
    )
    chown(users, "postgres", 0o600)
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        f"[databases]\napp = host=127.0.0.1 port={primary.port} dbname=postgres pool_size=5\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {users}\nstats_users = {MONITORING_USER}\n"
        f"admin_users = {ADMIN_USER}\npool_mode = transaction\nmax_client_conn = 200\n"
        f"client_tls_sslmode = require\nclient_tls_cert_file = {pki.cert}\n"
        f"client_tls_key_file = {pki.key}\nclient_tls_ca_file = {pki.ca}\n"
        f"server_tls_sslmode = verify-full\nserver_tls_ca_file = {pki.ca}\n"
        f"logfile = {directory / 'pgbouncer.log'}\npidfile = \n"
    )
    chown(ini, "postgres", 0o644)
    process = Process(["/usr/sbin/pgbouncer", str(ini)], directory / "stdout.log", user="postgres")
    process.start()
    wait_port(port)
    return PgBouncer(process, port, admin_password)


@dataclasses.dataclass
class Redis:
    """A redis-server process: a Redis, or a Redis Sentinel (``--sentinel``)."""

    process: Process
    port: int
    admin_password: str


def role_acl(name: str) -> str:
    """An ACL command list of roles/redis/vars/main.yml, joined as the role renders it: the test
    servers grant the users exactly what the role grants them."""
    return " ".join(yaml.safe_load(REDIS_ROLE_VARS.read_text(encoding="utf-8"))[name])


def redis_server(
    root: Path,
    pki: Pki,
    monitoring_password: str,
    *,
    name: str = "redis",
    settings: str = "",
    users: str = "",
    sentinel: bool = False,
    admin_password: str | None = None,
) -> Redis:
    """Redis, or with ``sentinel`` a Redis Sentinel, on TLS only with client certificates: the
    users ``admin``, ``monitoring`` (with the role's rules for a Redis or for a sentinel) and
    ``users`` (ACL lines), and ``settings`` (configuration lines)."""
    directory = root / name
    directory.mkdir()
    chown(directory, "redis", 0o750)
    for source in (pki.cert, pki.key, pki.ca):
        shutil.copy(source, directory / source.name)
        chown(directory / source.name, "redis", 0o600)
    port = free_port()
    admin_password = admin_password or "admin-" + os.urandom(8).hex()
    monitoring = role_acl(
        "__redis_sentinel_monitoring_commands" if sentinel else "__redis_monitoring_commands"
    )
    acl = directory / "users.acl"
    acl.write_text(
        "user default off resetpass resetkeys resetchannels -@all\n"
        f"user admin on >{admin_password} ~* &* +@all\n"
        f"user monitoring on >{monitoring_password} resetkeys resetchannels -@all {monitoring}\n"
        f"{users}"
    )
    chown(acl, "redis", 0o600)
    data = "" if sentinel else "maxmemory 64mb\nmaxmemory-policy noeviction\nsave 3600 1\n"
    conf = directory / "redis.conf"
    conf.write_text(
        f"port 0\ntls-port {port}\nbind 127.0.0.1\ntls-cert-file {directory / 'server.crt'}\n"
        f"tls-key-file {directory / 'server.key'}\ntls-ca-cert-file {directory / 'ca.crt'}\n"
        f"tls-auth-clients yes\naclfile {acl}\ndir {directory}\n{data}appendonly no\n{settings}"
    )
    chown(conf, "redis", 0o600)
    argv = ["/usr/bin/redis-server", str(conf), *(["--sentinel"] if sentinel else [])]
    process = Process(argv, directory / "redis.log", user="redis")
    process.start()
    wait_port(port)
    return Redis(process, port, admin_password)


SENTINEL_MASTER = "pgstack"
SENTINEL_QUORUM = 2
# Milliseconds without a valid reply before a sentinel deems an instance down (the lab: 10000).
SENTINEL_DOWN_AFTER_MS = 1000


@dataclasses.dataclass
class SentinelSet:
    """A master, its replica and three sentinels watching them (quorum 2), as roles/redis sets
    them up: TLS only, the role's users and rules, the sentinels' own monitoring user."""

    master: Redis
    replica: Redis
    sentinels: list[Redis]
    monitoring_password: str


def sentinel_set(
    root: Path, pki: Pki, monitoring_password: str, started: list[Stoppable]
) -> SentinelSet:
    """The set, each process added to ``started`` as it starts. The sentinels start once the
    replica is linked, so that their first INFO of the master lists it."""
    role = yaml.safe_load(REDIS_ROLE_VARS.read_text(encoding="utf-8"))
    replication, sentinel, admin = (f"{kind}-{os.urandom(8).hex()}" for kind in "rsa")
    users = (
        f"user replication on >{replication} resetkeys resetchannels -@all "
        f"{role_acl('__redis_replication_commands')}\n"
        f"user sentinel on >{sentinel} resetkeys resetchannels "
        f"&{role['__redis_sentinel_channel']} -@all {role_acl('__redis_sentinel_commands')}\n"
    )
    # Either member may be a replica after a failover: each knows how to log in to a master.
    member = (
        f"masteruser replication\nmasterauth {replication}\ntls-replication yes\n"
        # A full synchronisation at once, not after the default 5 s wait for more replicas.
        "repl-diskless-sync-delay 0\n"
    )
    master = redis_server(
        root, pki, monitoring_password, name="redis-master", settings=member, users=users
    )
    started.append(master.process)
    replica = redis_server(
        root,
        pki,
        monitoring_password,
        name="redis-replica",
        settings=f"{member}replicaof 127.0.0.1 {master.port}\n",
        users=users,
    )
    started.append(replica.process)
    deadline = time.monotonic() + 20
    while "master_link_status:up" not in redis_cli(replica, pki, "INFO", "replication"):
        if time.monotonic() > deadline:
            raise TimeoutError("the replica did not link to its master within 20 s")
        time.sleep(0.05)
    name = SENTINEL_MASTER
    watch = (
        f"tls-replication yes\nsentinel sentinel-user admin\nsentinel sentinel-pass {admin}\n"
        f"sentinel monitor {name} 127.0.0.1 {master.port} {SENTINEL_QUORUM}\n"
        f"sentinel auth-user {name} sentinel\nsentinel auth-pass {name} {sentinel}\n"
        f"sentinel down-after-milliseconds {name} {SENTINEL_DOWN_AFTER_MS}\n"
        # A failover that found no replica to promote blocks the next for twice this.
        f"sentinel failover-timeout {name} 3000\n"
    )
    # The sentinels authenticate to each other as their common admin (sentinel-user).
    sentinels = []
    for n in range(3):
        sentinels.append(
            redis_server(
                root,
                pki,
                monitoring_password,
                name=f"sentinel-{n}",
                settings=watch,
                sentinel=True,
                admin_password=admin,
            )
        )
        started.append(sentinels[-1].process)
    return SentinelSet(master, replica, sentinels, monitoring_password)


def redis_cli(server: Redis, pki: Pki, *command: str) -> str:
    """redis-cli as admin over TLS (the password through REDISCLI_AUTH, not argv)."""
    return run(
        [
            "redis-cli",
            "--tls",
            "--cacert",
            str(pki.ca),
            "--cert",
            str(pki.cert),
            "--key",
            str(pki.key),
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "--user",
            "admin",
            *command,
        ],
        env={**os.environ, "REDISCLI_AUTH": server.admin_password},
    )

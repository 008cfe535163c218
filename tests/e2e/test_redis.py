"""The redis role seen from a client on the controller, against the converged lab host db1.

Real clients only: redis-py (verifying the server certificate by host name) and the redis-cli
binary, over TLS against the lab CA. Every refusal is attempted and must be refused.
"""

from __future__ import annotations

import shlex
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import DbHost, lab_ssh, make_foreign_ca
from redis.backoff import NoBackoff
from redis.retry import Retry

pytestmark = [pytest.mark.e2e, pytest.mark.release]

PLAYBOOK = "playbooks/redis.yml"
APP_PLAYBOOK = "playbooks/app_env.yml"
PORT = 6379
# ACL users of inventory/lab/group_vars/redis/main.yml -> the lab secret with their password.
USER_SECRETS = {"admin": "redis_admin", "app": "redis_app", "monitoring": "redis_monitoring"}
# The client certificate the pki role issues on db1 (pki_client_certificates of the redis group).
ISSUED_CLIENT = "/etc/pgstack/tls/clients/redis-exporter"
# A name that resolves to db1 (below) but is not in its certificate.
NAME_NOT_IN_CERT = "not-in-the-certificate.pgstack.invalid"

Playbook = Callable[..., "subprocess.CompletedProcess[str]"]
Client = Callable[..., redis.Redis]


@pytest.fixture
def lab_names(monkeypatch: pytest.MonkeyPatch, db_host: DbHost) -> None:
    """Resolve the lab's names on the controller the way the lab hosts' /etc/hosts does."""
    real = socket.getaddrinfo
    names = {db_host.fqdn: db_host.address, NAME_NOT_IN_CERT: db_host.address}

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(names.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def client(
    db_host: DbHost, ca_file: Path, secret: Callable[[str], str], lab_names: None
) -> Iterator[Client]:
    """redis-py clients over TLS that verify the server certificate against the host name."""
    opened: list[redis.Redis] = []

    def _client(
        user: str | None,
        *,
        password: str | None = None,
        host: str | None = None,
        ca: Path | None = None,
        cert: tuple[Path, Path] | None = None,
        tls: bool = True,
    ) -> redis.Redis:
        if password is None and user is not None:
            password = secret(USER_SECRETS[user])
        tls_options: dict[str, Any] = {}
        if tls:
            tls_options = {
                "ssl": True,
                "ssl_ca_certs": str(ca or ca_file),
                "ssl_cert_reqs": "required",
                "ssl_check_hostname": True,
                "ssl_min_version": ssl.TLSVersion.TLSv1_2,
            }
            if cert is not None:
                tls_options.update(ssl_certfile=str(cert[0]), ssl_keyfile=str(cert[1]))
        conn = redis.Redis(
            host=host or db_host.fqdn,
            port=PORT,
            username=user,
            password=password,
            socket_timeout=10,
            socket_connect_timeout=10,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
            **tls_options,
        )
        opened.append(conn)
        return conn

    yield _client
    for conn in opened:
        conn.close()


def redis_cli(
    host: DbHost,
    *command: str,
    user: str | None = None,
    password: str | None = None,
    ca: Path | None = None,
    cert: tuple[Path, Path] | None = None,
) -> subprocess.CompletedProcess[str]:
    """One redis-cli command to db1's address; TLS when a CA is given. The password goes through
    REDISCLI_AUTH, never argv. redis-cli exits 0 on error replies: check its output."""
    binary = shutil.which("redis-cli")
    if binary is None:
        pytest.fail("redis-cli not found: install redis-tools (make host-deps)")
    argv = [binary, "-h", host.address, "-p", str(PORT), "--no-auth-warning"]
    if ca is not None:
        argv += ["--tls", "--cacert", str(ca), "--sni", host.fqdn]
    if cert is not None:
        argv += ["--cert", str(cert[0]), "--key", str(cert[1])]
    if user is not None:
        argv += ["--user", user]
    env = {"PATH": "/usr/bin:/bin", **({"REDISCLI_AUTH": password} if password else {})}
    return subprocess.run(
        [*argv, *command], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def command(conn: redis.Redis, *args: str) -> Any:
    """Any command by name (redis-py leaves execute_command untyped)."""
    return conn.execute_command(*args)  # type: ignore[no-untyped-call]


def key() -> str:
    """A fresh key inside the app user's patterns (session:*)."""
    return f"session:e2e-{uuid.uuid4().hex}"


@pytest.fixture
def foreign_ca(tmp_path: Path) -> Path:
    return make_foreign_ca(tmp_path)


# 1. TLS, verified by host name


@pytest.mark.parametrize("by", ["fqdn", "address"])
def test_app_pings_sets_and_gets_over_tls(client: Client, db_host: DbHost, by: str) -> None:
    app = client("app", host=db_host.fqdn if by == "fqdn" else db_host.address)
    name = key()
    assert app.ping() is True
    assert app.set(name, "hello", ex=60) is True
    assert app.get(name) == "hello"
    assert app.delete(name) == 1


def test_app_with_redis_cli(db_host: DbHost, ca_file: Path, secret: Callable[[str], str]) -> None:
    password = secret("redis_app")
    name = key()
    for command, reply in [(["PING"], "PONG"), (["SET", name, "v", "EX", "60"], "OK"),
                           (["GET", name], "v"), (["DEL", name], "1")]:  # fmt: skip
        result = redis_cli(db_host, *command, user="app", password=password, ca=ca_file)
        assert result.stdout.strip() == reply, (command, result.stdout, result.stderr)


def test_certificate_for_another_name_is_refused(client: Client) -> None:
    with pytest.raises(redis.ConnectionError, match=r"Hostname mismatch|doesn't match"):
        client("app", host=NAME_NOT_IN_CERT).ping()


# 2. Refusals: no TLS, a foreign CA, no user, a wrong password


def test_plaintext_connection_is_refused(client: Client, db_host: DbHost) -> None:
    with pytest.raises(redis.ConnectionError):
        client("app", tls=False).ping()

    result = redis_cli(db_host, "PING")
    assert "PONG" not in result.stdout
    assert result.returncode != 0

    # Raw bytes of the plaintext protocol get no reply, only a closed (or reset) connection.
    with socket.create_connection((db_host.address, PORT), timeout=10) as sock:
        sock.sendall(b"PING\r\n")
        try:
            reply = sock.recv(64)
        except ConnectionResetError:
            reply = b""
        assert reply == b""


def test_client_trusting_a_foreign_ca_is_refused(
    client: Client, db_host: DbHost, foreign_ca: Path, secret: Callable[[str], str]
) -> None:
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client("app", ca=foreign_ca).ping()

    result = redis_cli(db_host, "PING", user="app", password=secret("redis_app"), ca=foreign_ca)
    assert "PONG" not in result.stdout
    assert "certificate verify failed" in result.stdout + result.stderr


def test_default_user_cannot_authenticate(client: Client) -> None:
    with pytest.raises(redis.AuthenticationError):
        client(None).ping()  # no AUTH: the connection is the default user's, which is off
    with pytest.raises(redis.AuthenticationError):
        client("default", password="").ping()
    with pytest.raises(redis.AuthenticationError):
        client("default", password=f"guess-{uuid.uuid4().hex}").ping()


def test_wrong_password_is_refused(client: Client) -> None:
    with pytest.raises(redis.AuthenticationError):
        client("app", password=f"wrong-{uuid.uuid4().hex}").ping()


# 3. What each user may do


@pytest.mark.parametrize(
    "denied",
    [
        ["FLUSHALL"],
        ["FLUSHDB"],
        ["CONFIG", "SET", "maxmemory", "1"],
        ["CONFIG", "GET", "maxmemory"],
        ["BGSAVE"],
        ["REPLICAOF", "NO", "ONE"],
        ["KEYS", "*"],
        ["SHUTDOWN", "NOSAVE"],
        ["ACL", "LIST"],
        ["GET", "outside:the-app-patterns"],
    ],
    ids=lambda c: "-".join(c[:2]).lower(),
)
def test_app_is_denied_dangerous_commands_and_other_keys(client: Client, denied: list[str]) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        command(client("app"), *denied)


def test_monitoring_gets_info_and_is_denied_keys(client: Client) -> None:
    monitoring = client("monitoring")
    assert monitoring.ping() is True
    assert "redis_version" in monitoring.info("server")
    assert monitoring.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-lru"}
    command(monitoring, "LATENCY", "LATEST")
    for denied in (["GET", "session:anything"], ["SET", "session:x", "1"], ["SCAN", "0"],
                    ["CONFIG", "SET", "maxmemory", "1"]):  # fmt: skip
        with pytest.raises(redis.exceptions.NoPermissionError):
            command(monitoring, *denied)


def test_maxmemory_and_policy_are_in_effect(client: Client, db_host: DbHost) -> None:
    """25 % of db1's RAM (the role's default share) and the lab inventory's policy."""
    meminfo = lab_ssh(db_host.name, "awk '/^MemTotal:/ {print $2}' /proc/meminfo")
    assert meminfo.returncode == 0, meminfo.stderr
    memtotal_mb = int(meminfo.stdout) // 1024  # Ansible's memtotal_mb
    expected = int(memtotal_mb * 25 / 100) * 1024 * 1024
    admin = client("admin")
    assert admin.config_get("maxmemory") == {"maxmemory": str(expected)}
    assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-lru"}
    assert admin.info("memory")["maxmemory_policy"] == "volatile-lru"


# 4. Persistence


def wait_for_redis(connect: Callable[[], redis.Redis], timeout: float = 60) -> redis.Redis:
    deadline = time.monotonic() + timeout
    while True:
        conn = connect()
        try:
            conn.ping()
            return conn
        except (redis.ConnectionError, redis.BusyLoadingError):
            conn.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_data_written_before_a_restart_is_there_after_it(client: Client, db_host: DbHost) -> None:
    admin = client("admin")
    assert admin.config_get("appendonly") == {"appendonly": "yes"}
    run_id = admin.info("server")["run_id"]
    name = key()
    client("app").set(name, "survives", ex=3600)

    restart = lab_ssh(db_host.name, "systemctl restart redis-server")
    assert restart.returncode == 0, restart.stderr

    app = wait_for_redis(lambda: client("app"))
    assert client("admin").info("server")["run_id"] != run_id  # it really restarted
    assert app.get(name) == "survives"
    app.delete(name)


# 5. Mutual TLS: converge db1 with tls-auth-clients yes, test, converge back


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], capture_output=True, check=True, timeout=60)


@pytest.fixture(scope="class")
def mutual_tls(ansible_playbook: Playbook) -> Iterator[None]:
    """Redis with tls-auth-clients yes, and app1's env files naming the client certificates that
    app_env then issues (one ansible-playbook run of both tiers); back to the inventory after."""
    tiers = ("--tags", "redis,app_env")
    on = ansible_playbook(
        APP_PLAYBOOK, *tiers, "-e", "redis_tls_auth_clients=yes", playbook=PLAYBOOK
    )
    assert on.returncode == 0, on.stdout[-3000:]
    yield
    off = ansible_playbook(APP_PLAYBOOK, *tiers, playbook=PLAYBOOK)
    assert off.returncode == 0, off.stdout[-3000:]


@pytest.fixture(scope="class")
def issued_client_cert(
    db_host: DbHost, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The client certificate and key the pki role issued on db1 (read over SSH for the test)."""
    directory = tmp_path_factory.mktemp("issued")
    files = []
    for suffix in ("crt", "key"):
        result = lab_ssh(db_host.name, f"cat {ISSUED_CLIENT}.{suffix}")
        assert result.returncode == 0, result.stderr
        path = directory / f"client.{suffix}"
        path.touch(mode=0o600)
        path.write_text(result.stdout)
        files.append(path)
    return files[0], files[1]


@pytest.fixture
def foreign_client_cert(foreign_ca: Path) -> tuple[Path, Path]:
    """A client certificate signed by a CA Redis does not trust."""
    directory = foreign_ca.parent
    crt, key_file, csr = (
        directory / "client.crt",
        directory / "client.key",
        directory / "client.csr",
    )
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=redis-exporter", "-keyout", str(key_file), "-out", str(csr))  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(foreign_ca),
            "-CAkey", str(directory / "foreign-ca.key"), "-CAcreateserial", "-days", "1",
            "-out", str(crt))  # fmt: skip
    return crt, key_file


@pytest.mark.usefixtures("mutual_tls")
class TestMutualTLS:
    def test_issued_client_certificate_works(
        self,
        client: Client,
        db_host: DbHost,
        ca_file: Path,
        issued_client_cert: tuple[Path, Path],
        secret: Callable[[str], str],
    ) -> None:
        assert client("admin", cert=issued_client_cert).config_get("tls-auth-clients") == {
            "tls-auth-clients": "yes"
        }
        app = client("app", cert=issued_client_cert)
        name = key()
        assert app.set(name, "mtls", ex=60) is True
        assert app.get(name) == "mtls"
        result = redis_cli(db_host, "PING", user="app", password=secret("redis_app"), ca=ca_file,
                           cert=issued_client_cert)  # fmt: skip
        assert result.stdout.strip() == "PONG", result.stderr

    @pytest.mark.usefixtures("clients_on_app_host")
    @pytest.mark.parametrize("app", ["app", "billing"])
    def test_env_file_client_certificate_works_on_the_app_host(self, app: str) -> None:
        """REDIS_URL with the client certificate and key the env file names, as app1's user."""
        program = (
            "import os, redis\n"
            "r = redis.Redis.from_url(os.environ['REDIS_URL'], ssl_cert_reqs='required',\n"
            "    ssl_ca_certs=os.environ['REDIS_CA_FILE'], ssl_check_hostname=True,\n"
            "    ssl_certfile=os.environ['REDIS_CLIENT_CERT_FILE'],\n"
            "    ssl_keyfile=os.environ['REDIS_CLIENT_KEY_FILE'])\n"
            "print(r.ping())\n"
        )
        script = f"set -a; . /etc/pgstack/{app}.env; set +a; python3 -c {shlex.quote(program)}"
        result = lab_ssh("app1", f"sudo -u {app} sh -c {shlex.quote(script)}")
        assert result.stdout.strip() == "True", result.stderr
        key = lab_ssh("app1", f"stat -c '%a %U' /etc/pgstack/tls/clients/redis-{app}.key")
        assert key.stdout.split() == ["600", app]

    def test_no_client_certificate_is_refused(
        self, client: Client, db_host: DbHost, ca_file: Path, secret: Callable[[str], str]
    ) -> None:
        with pytest.raises(redis.ConnectionError):
            client("app").ping()
        result = redis_cli(db_host, "PING", user="app", password=secret("redis_app"), ca=ca_file)
        assert "PONG" not in result.stdout

    def test_client_certificate_from_a_foreign_ca_is_refused(
        self,
        client: Client,
        db_host: DbHost,
        ca_file: Path,
        foreign_client_cert: tuple[Path, Path],
        secret: Callable[[str], str],
    ) -> None:
        with pytest.raises(redis.ConnectionError):
            client("app", cert=foreign_client_cert).ping()
        result = redis_cli(db_host, "PING", user="app", password=secret("redis_app"), ca=ca_file,
                           cert=foreign_client_cert)  # fmt: skip
        assert "PONG" not in result.stdout

"""The HA layout on its lab (inventory/lab-ha, `make lab-ha`): a Patroni cluster of pg1 and pg2
whose leader lives in the etcd cluster of pg1, pg2 and witness. Run with
PGSTACK_LAB_INVENTORY=inventory/lab-ha (`make e2e-ha-tests`); on another lab the module is skipped.

Seen from the outside: Patroni's REST API over TLS (reading is open, changing needs its user),
PostgreSQL over TLS as the application roles (from the controller, and from app1 with its env
file), pgBackRest on the backup host, the members' own view over SSH. The module ends with the
failover: the leader cut off under writes.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import itertools
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import AnsiblePlaybook, group_hosts, lab_host
from helpers import (
    LAB_INVENTORY,
    as_app,
    assert_failed_before_any_change,
    assert_nothing_changed,
    assert_recap_unchanged,
    conninfo,
    failure_messages,
    lab_ssh,
    netns_iptables,
    parse_recap,
    pgstack_lab,
    prometheus,
    sh,
    wait_for,
)
from procedures import Runner, ssh_command

from runbooks import REPO_ROOT, Block, sections

if "etcd" not in (LAB_INVENTORY / "hosts.yml").read_text():
    pytest.skip(
        "the HA layout's tests run on its lab: PGSTACK_LAB_INVENTORY=inventory/lab-ha"
        " (make e2e-ha-tests)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.ha

MEMBERS = group_hosts("postgres")
PROXIES = group_hosts("haproxy")
REST_PORT = 8008
ETCD_CLIENT_PORT = 2379
# Patroni's roles of a member that streams from the leader (sync_standby: the synchronous one).
STANDBY_ROLES = {"replica", "sync_standby"}
# HAProxy's ports to the leader's PgBouncer and PostgreSQL, and to the replicas' PgBouncer
# (roles/haproxy: haproxy_primary_port, haproxy_primary_direct_port, haproxy_replica_port).
POOLED_PORT, DIRECT_PORT, REPLICA_PORT = 5000, 5001, 5002


def rest(host: str, path: str, ca_file: Path, timeout: float = 3) -> tuple[int, Any]:
    """GET on a member's Patroni REST API over TLS, verifying the lab CA: (status, JSON body)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    url = f"https://{lab_host(host).address}:{REST_PORT}{path}"
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def cluster_of(hosts: list[str], ca_file: Path) -> dict[str, dict[str, Any]]:
    """{member: its entry of GET /cluster}, asked of the first of hosts (members only) that
    answers; {} when none does."""
    for host in hosts:
        if host not in MEMBERS:
            continue
        try:
            status, body = rest(host, "/cluster", ca_file)
        except OSError:
            continue
        if status == 200:
            return {member["name"]: member for member in body["members"]}
    return {}


def cluster(ca_file: Path) -> dict[str, dict[str, Any]]:
    """The cluster as the first member that answers sees it."""
    members = cluster_of(MEMBERS, ca_file)
    assert members, "no member's REST API answers /cluster"
    return members


def leader(ca_file: Path) -> str:
    (name,) = [n for n, m in cluster(ca_file).items() if m["role"] == "leader"]
    return name


def healthy(ca_file: Path) -> dict[str, dict[str, Any]] | None:
    """The cluster when it has one leader and every other member streams from it, as every member
    sees it (a member back from a partition answers from what it saw before until its next
    cycle); else None."""
    views = []
    for host in MEMBERS:
        try:
            status, body = rest(host, "/cluster", ca_file)
        except OSError:
            return None
        if status != 200:
            return None
        views.append({m["name"]: (m["role"], m["state"]) for m in body["members"]})
    if any(view != views[0] for view in views):
        return None
    members = cluster(ca_file)
    roles = sorted(m["role"] for m in members.values())
    streaming = all(
        m["state"] == ("running" if m["role"] == "leader" else "streaming")
        for m in members.values()
    )
    if sorted(members) == sorted(MEMBERS) and roles.count("leader") == 1 and streaming:
        return members
    return None


@pytest.fixture(scope="module")
def app_password(secret: Any) -> str:
    return str(secret("postgresql_app"))


@pytest.fixture(scope="module")
def migration_password(secret: Any) -> str:
    return str(secret("postgresql_app_migration"))


def connect(
    host: str, ca_file: Path, password: str, user: str = "app", **extra: Any
) -> psycopg.Connection[Any]:
    dsn = conninfo(lab_host(host), user, ca_file)
    return psycopg.connect(dsn, password=password, connect_timeout=3, autocommit=True, **extra)


def test_the_cluster_has_one_leader_and_every_replica_streams(ca_file: Path) -> None:
    members = wait_for("a leader and streaming replicas", lambda: healthy(ca_file), 120, 2)
    assert members[MEMBERS[0]]["role"] in {"leader"} | STANDBY_ROLES
    replicas = [m for m in members.values() if m["role"] in STANDBY_ROLES]
    assert len(replicas) == len(MEMBERS) - 1
    assert all(m.get("lag", 0) == 0 or m["lag"] < 1024 * 1024 for m in replicas), members


def test_reading_the_rest_api_is_open_and_changing_it_needs_credentials(ca_file: Path) -> None:
    host = leader(ca_file)
    status, _ = rest(host, "/primary", ca_file)
    assert status == 200
    context = ssl.create_default_context(cafile=str(ca_file))
    request = urllib.request.Request(
        f"https://{lab_host(host).address}:{REST_PORT}/restart", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=context, timeout=5)  # noqa: S310 (https://)
    assert refused.value.code == 401
    # In plaintext the TLS port answers nothing Patroni would act on.
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"http://{lab_host(host).address}:{REST_PORT}/primary", timeout=5)


def test_a_commit_on_the_leader_reaches_the_replica_which_refuses_writes(
    ca_file: Path, app_password: str, migration_password: str
) -> None:
    primary = leader(ca_file)
    (replica,) = [m for m in MEMBERS if m != primary]
    marker = f"ha-{time.time_ns()}"
    with connect(primary, ca_file, migration_password, "app_migration") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ha_probe (marker text PRIMARY KEY)")
    with connect(primary, ca_file, app_password) as conn:
        conn.execute("INSERT INTO ha_probe VALUES (%s)", (marker,))

    def seen() -> bool:
        with connect(replica, ca_file, app_password) as conn:
            row = conn.execute(
                "SELECT count(*) FROM ha_probe WHERE marker = %s", (marker,)
            ).fetchone()
            return row is not None and row[0] == 1

    wait_for("the row on the replica", seen, 30, 0.5)
    with (
        connect(replica, ca_file, app_password) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("INSERT INTO ha_probe VALUES (%s)", (marker + "-replica",))


def test_haproxy_on_every_proxy_host_reaches_the_leader_with_verify_full(
    ca_file: Path, app_password: str
) -> None:
    """Through HAProxy the client's TLS goes to the leader, whose certificate names the proxy
    host the client connected to."""
    primary = lab_host(leader(ca_file)).address
    replicas = {lab_host(m).address for m in MEMBERS} - {primary}
    for proxy in PROXIES:
        for port, in_recovery, servers in (
            (DIRECT_PORT, False, {primary}),
            (POOLED_PORT, False, {primary}),
            (REPLICA_PORT, True, replicas),
        ):
            dsn = conninfo(lab_host(proxy), "app", ca_file, port=port)
            # PgBouncer reaches its own member's server over loopback: only the direct port
            # shows the member's address; the pooled ports show whether it is in recovery.
            query = "SELECT pg_is_in_recovery(), host(inet_server_addr())"
            with psycopg.connect(dsn, password=app_password, connect_timeout=5) as conn:
                row = conn.execute(query).fetchone()
                client = conn.info.hostaddr
            assert row is not None, (proxy, port)
            assert row[0] is in_recovery, (proxy, port, row)
            if port == DIRECT_PORT:
                assert row[1] in servers, (proxy, port, row)
            assert client == lab_host(proxy).address


def test_the_application_env_file_leads_through_haproxy_on_its_own_host(ca_file: Path) -> None:
    """app1 is a HAProxy host: its env file's URLs name app1 and HAProxy's ports, verify-full."""
    primary = lab_host(leader(ca_file)).address
    query = "SELECT pg_is_in_recovery(), coalesce(host(inet_server_addr()), '')"
    seen = {}
    for url in ("DATABASE_URL", "DIRECT_DATABASE_URL", "REPLICA_DATABASE_URL"):
        proc = as_app("app", f'psql "${url}" -XAtq -F " " -c "{query}"')
        assert proc.returncode == 0, (url, proc.stdout, proc.stderr)
        seen[url] = proc.stdout.split()
    urls = as_app("app", "env | grep DATABASE_URL= | sed 's/:[^:@]*@/:***@/'").stdout
    assert urls.count("@app1.pgstack.internal:500") == 3, urls
    assert seen["DATABASE_URL"][0] == "f"
    assert seen["DIRECT_DATABASE_URL"] == ["f", primary]
    assert seen["REPLICA_DATABASE_URL"][0] == "t"


def test_only_patroni_runs_the_server(ca_file: Path) -> None:
    for host in MEMBERS:
        unit = "postgresql@$(ls /etc/postgresql)-main.service"
        state = sh(host, f"systemctl is-enabled {unit} || true").strip()
        assert state == "masked", (host, state)
        assert sh(host, "systemctl is-active 'patroni@*-main.service'").strip() == "active"
        # The role's settings live in etcd, not in conf.d.
        listing = sh(host, "ls /etc/postgresql/*/main/conf.d/")
        assert "pgstack-restart" not in listing
        assert "pgstack-reload" not in listing


def etcd_call(host: str, ca_file: Path, path: str, body: dict[str, Any], token: str = "") -> Any:
    """POST to etcd's JSON gateway on host over TLS, verifying the lab CA; etcd's answer (an
    error's too)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    request = urllib.request.Request(
        f"https://{lab_host(host).address}:{ETCD_CLIENT_PORT}/v3/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **({"Authorization": token} if token else {})},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as answer:  # noqa: S310
            return json.load(answer)
    except urllib.error.HTTPError as error:
        return json.load(error)


def etcd_token(host: str, ca_file: Path, user: str, password: str) -> str:
    return str(
        etcd_call(host, ca_file, "auth/authenticate", {"name": user, "password": password})["token"]
    )


def etcd_members(host: str, ca_file: Path, secret: Any) -> list[dict[str, Any]]:
    """The etcd cluster's members, as root asks host (one that never started has no name)."""
    token = etcd_token(host, ca_file, "root", str(secret("etcd_root")))
    return list(etcd_call(host, ca_file, "cluster/member/list", {}, token)["members"])


def test_etcd_members_speak_tls_and_patroni_may_use_its_prefix_only(
    ca_file: Path, secret: Any
) -> None:
    """roles/etcd, from the controller, as Patroni reaches etcd: the group's hosts are the
    members, with TLS peer and client URLs; Patroni's user writes under /service/ only, and
    nothing is written without logging in; plaintext and a peer without a member's certificate
    are refused."""
    hosts = group_hosts("etcd")
    first = hosts[0]
    members = etcd_members(first, ca_file, secret)
    assert sorted(m["name"] for m in members) == sorted(hosts), members
    urls = [u for m in members for u in m["peerURLs"] + m["clientURLs"]]
    assert [u for u in urls if not u.startswith("https://")] == [], members
    token = etcd_token(first, ca_file, "patroni", str(secret("patroni_etcd")))
    key = base64.b64encode(b"/service/ha-e2e-probe").decode()
    value = base64.b64encode(b"probe").decode()
    assert "header" in etcd_call(first, ca_file, "kv/put", {"key": key, "value": value}, token)
    etcd_call(first, ca_file, "kv/deleterange", {"key": key}, token)
    elsewhere = base64.b64encode(b"/elsewhere/ha-e2e-probe").decode()
    denied = etcd_call(first, ca_file, "kv/put", {"key": elsewhere, "value": value}, token)
    assert "permission denied" in str(denied.get("message")), denied
    anonymous = etcd_call(first, ca_file, "kv/put", {"key": key, "value": value})
    assert "user name" in str(anonymous.get("message")), anonymous
    address = lab_host(first).address
    # Go's TLS server answers plain HTTP with a 400 (HTTPError, a URLError) or closes.
    plain = f"http://{address}:{ETCD_CLIENT_PORT}/health"
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(plain, timeout=5)
    context = ssl.create_default_context(cafile=str(ca_file))
    # The peer port ends the handshake of a client without a member's certificate.
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(f"https://{address}:2380/members", context=context, timeout=5)


@pytest.mark.parametrize("host", group_hosts("etcd"))
def test_etcd_runs_as_its_user_from_the_roles_data_directory_only(host: str) -> None:
    """Never started with the package's defaults: no data directory but the role's."""
    unit = sh(host, "systemctl show etcd.service --property=User --property=ActiveState").split()
    assert sorted(unit) == ["ActiveState=active", "User=etcd"], unit
    assert sh(host, "ls -d /var/lib/etcd/*/").split() == ["/var/lib/etcd/pgstack/"]


@pytest.mark.parametrize("host", PROXIES)
def test_haproxy_runs_the_roles_configuration_with_every_member_behind_it(host: str) -> None:
    """roles/haproxy: Debian's HAProxy accepts the rendered file, runs enabled, and checks each
    member by the name its certificate carries (routing itself: the tests above and
    tests/integration/haproxy)."""
    out = sh(
        host,
        "haproxy -c -q -f /etc/haproxy/haproxy.cfg"
        " && systemctl show haproxy.service --property=ActiveState --property=UnitFileState"
        " && grep -E '^ *server ' /etc/haproxy/haproxy.cfg",
    )
    lines = [line.strip() for line in out.splitlines()]
    assert "ActiveState=active" in lines, out
    assert "UnitFileState=enabled" in lines, out
    for member in MEMBERS:
        assert any(f"check-sni {member} verifyhost {member}" in line for line in lines), out


# --- Redis Sentinel


def sentinel_command(host: str, secret: Any, *command: str) -> str:
    """A command to the sentinel on host over TLS, as the sentinels' admin user (its password
    through stdin, never in argv or the output)."""
    proc = lab_ssh(
        host,
        "redis-cli --askpass --tls --cacert /etc/pgstack/tls/ca.crt -h 127.0.0.1 -p 26379"
        " --user admin --no-auth-warning " + " ".join(command),
        stdin=str(secret("sentinel_admin")) + "\n",
    )
    assert proc.returncode == 0, (host, command, proc.stderr)
    return proc.stdout.strip()


def sentinel_master(host: str, secret: Any) -> str:
    """The address of the Redis master as the sentinel on host names it."""
    answer = sentinel_command(host, secret, "SENTINEL", "get-master-addr-by-name", "pgstack")
    return answer.splitlines()[0]


def redis_command(host: str, secret: Any, user: str, *command: str) -> str:
    """A command to the Redis on host over TLS as one of its ACL users (the lab's secret
    redis_<user>, through stdin)."""
    proc = lab_ssh(
        host,
        "redis-cli --askpass --tls --cacert /etc/pgstack/tls/ca.crt -h 127.0.0.1 -p 6379"
        f" --user {user} --no-auth-warning " + " ".join(command),
        stdin=str(secret(f"redis_{user}")) + "\n",
    )
    assert proc.returncode == 0, (host, command, proc.stderr)
    return proc.stdout.strip()


def redis_roles(secret: Any) -> dict[str, str]:
    """{Redis host: master or slave, as its ROLE says}."""
    return {
        h: redis_command(h, secret, "admin", "ROLE").splitlines()[0] for h in group_hosts("redis")
    }


def test_redis_replicates_over_tls_only_to_the_replica_the_sentinels_name(secret: Any) -> None:
    """A key the app user writes on the master is read on the replica, whose link is up; no
    Redis has a plaintext port, and replication is TLS (tls-replication yes)."""
    roles = redis_roles(secret)
    [master] = [h for h, role in roles.items() if role == "master"]
    [replica] = [h for h, role in roles.items() if role == "slave"]
    assert sentinel_master(group_hosts("sentinel")[0], secret) == lab_host(master).address
    token = f"{master}-{time.time_ns()}"
    assert redis_command(master, secret, "app", "SET", "session:ha-replication", token) == "OK"
    wait_for(
        "the key on the replica",
        lambda: redis_command(replica, secret, "app", "GET", "session:ha-replication") == token,
        30,
        1,
    )
    link = redis_command(replica, secret, "admin", "INFO", "replication")
    assert f"master_host:{lab_host(master).address}" in link, link
    assert "master_link_status:up" in link, link
    for host in (master, replica):
        assert redis_command(host, secret, "admin", "CONFIG", "GET", "port").split() == [
            "port",
            "0",
        ]
    tls = redis_command(master, secret, "admin", "CONFIG", "GET", "tls-replication")
    assert tls.split() == ["tls-replication", "yes"]


@pytest.mark.parametrize(
    ("user", "command", "expected"),
    [
        ("", "SENTINEL MASTERS", "NOAUTH"),
        ("app", "SENTINEL FAILOVER pgstack", "NOPERM"),
        ("app", "SENTINEL SET pgstack quorum 1", "NOPERM"),
        ("admin", "SENTINEL CONFIG GET resolve-hostnames", "yes"),
    ],
    ids=["nobody", "app-failover", "app-reconfigure", "admin-config"],
)
def test_a_sentinel_gives_each_user_what_it_may_do(
    secret: Any, user: str, command: str, expected: str
) -> None:
    """The sentinels' own ACL: nothing without a user, the app user asks for the master only."""
    login = f"--askpass --user {user}" if user else ""
    proc = lab_ssh(
        group_hosts("sentinel")[-1],
        f"redis-cli {login} --tls --cacert /etc/pgstack/tls/ca.crt -h 127.0.0.1 -p 26379"
        f" --no-auth-warning {command}",
        stdin=str(secret(f"sentinel_{user}")) + "\n" if user else None,
    )
    assert expected in proc.stdout, (proc.stdout, proc.stderr)


def test_the_sentinels_agree_on_the_master_and_refuse_plaintext(secret: Any) -> None:
    sentinels = group_hosts("sentinel")
    masters = {
        host: sentinel_command(host, secret, "SENTINEL", "get-master-addr-by-name", "pgstack")
        for host in sentinels
    }
    assert len(set(masters.values())) == 1, masters
    address = next(iter(masters.values())).splitlines()[0]
    assert address in {lab_host(h).address for h in group_hosts("redis")}, masters
    info = sentinel_command(sentinels[0], secret, "SENTINEL", "master", "pgstack")
    fields = dict(zip(info.splitlines()[::2], info.splitlines()[1::2], strict=False))
    assert fields["num-slaves"] == "1", fields
    assert fields["num-other-sentinels"] == str(len(sentinels) - 1), fields
    plain = lab_ssh(sentinels[0], "redis-cli -h 127.0.0.1 -p 26379 PING")
    assert "PONG" not in plain.stdout, plain.stdout


def app_redis_write(sentinel: str = "${REDIS_SENTINELS%%,*}") -> tuple[bool, str]:
    """As an application following docs/redis.md: ask a sentinel of REDIS_SENTINELS (the first
    by default) for the master, then write there as its Redis user, TLS verified throughout
    (passwords from the env file through REDISCLI_AUTH, never argv). Whether the write returned
    OK, and the master's address."""
    script = (
        f'tls="--tls --cacert $REDIS_CA_FILE"; sentinel={sentinel};'
        " master=$(REDISCLI_AUTH=$REDIS_SENTINEL_PASSWORD redis-cli $tls"
        ' -h "${sentinel%:*}" -p "${sentinel##*:}" --user "$REDIS_SENTINEL_USER"'
        ' SENTINEL get-master-addr-by-name "$REDIS_SENTINEL_MASTER" | head -n 1);'
        ' REDISCLI_AUTH=$REDIS_PASSWORD redis-cli $tls -h "$master" --user "$REDIS_USER"'
        ' -n "$REDIS_DB" SET session:ha-probe 1; echo "master=$master"'
    )
    proc = as_app("app", script)
    assert proc.returncode == 0, proc.stderr
    ok = proc.stdout.splitlines()[0].strip() == "OK" if proc.stdout else False
    return ok, proc.stdout.split("master=")[-1].strip()


def test_the_application_env_file_finds_the_redis_master_through_the_sentinels() -> None:
    ok, master = app_redis_write()
    assert ok, master
    assert master in {lab_host(h).address for h in group_hosts("redis")}, master
    assert "REDIS_URL" not in as_app("app", "env | cut -d= -f1").stdout.split()


# --- settings through Patroni


def query(host: str, sql: str) -> str:
    return sh(host, f"sudo -u postgres psql -XAtq -c '{sql}'").strip()


def show(host: str, setting: str) -> str:
    return query(host, f"SHOW {setting}")


def settled_on_every_member(setting: str, value: str) -> None:
    """Patroni applies a change at its next cycle: wait until every member runs with it."""
    for host in MEMBERS:
        wait_for(f"{setting} = {value} on {host}", lambda h=host: show(h, setting) == value, 30, 1)


def procedure(name: str, tmp_path: Path, **values: str) -> tuple[Runner, list[Block]]:
    """docs/runbooks/<name>'s runner, with <env> the HA lab's inventory and the other
    placeholders from values (``member="pg2"`` for ``<member>``), and its blocks in order."""
    runbook = REPO_ROOT / "docs/runbooks" / name
    placeholders = {"<env>": LAB_INVENTORY.name, **{f"<{k}>": v for k, v in values.items()}}
    runner = Runner(runbook, placeholders, ssh_command(tmp_path), timeout=1800)
    return runner, [block for found in sections(runbook).values() for block in found]


def settings_file(tmp_path: Path, settings: dict[str, str]) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"postgresql_settings": settings}))
    return path


def pending_restarts(ca_file: Path) -> dict[str, bool]:
    return {name: bool(m.get("pending_restart")) for name, m in cluster(ca_file).items()}


def test_a_setting_changes_on_every_member_through_patroni_and_a_restart_is_reported(
    ansible_playbook: AnsiblePlaybook, ca_file: Path, tmp_path: Path
) -> None:
    """A converge changes the cluster's settings through Patroni and reports the members that wait
    on a restart, restarting none; docs/runbooks/ha-rolling-restart.md, as written, restarts them
    one at a time (the leader after a switchover), and run again changes nothing. Back to the
    inventory's settings the same way."""
    started = {h: query(h, "SELECT pg_postmaster_start_time()") for h in MEMBERS}
    first_leader = leader(ca_file)
    changed = ansible_playbook(
        "--tags", "postgresql",
        playbook="playbooks/postgresql.yml",
        extra_vars_file=settings_file(
            tmp_path, {"log_min_duration_statement": "250ms", "max_files_per_process": "2000"}
        ),
    )  # fmt: skip
    assert changed.returncode == 0, changed.stdout[-4000:]
    assert "Change the cluster's settings that differ from the role's" in changed.stdout
    assert "Settings of the cluster change only when these members restart" in changed.stdout
    settled_on_every_member("log_min_duration_statement", "250ms")
    assert pending_restarts(ca_file) == dict.fromkeys(MEMBERS, True)
    # Reported, not done: no server was restarted.
    assert {h: query(h, "SELECT pg_postmaster_start_time()") for h in MEMBERS} == started

    runner, blocks = procedure("ha-rolling-restart.md", tmp_path)
    for block in blocks:
        runner.run(block)
    assert pending_restarts(ca_file) == dict.fromkeys(MEMBERS, False)
    for host in MEMBERS:
        assert show(host, "max_files_per_process") == "2000"
        assert query(host, "SELECT pg_postmaster_start_time()") != started[host]
    # The leader handed its role over before its restart.
    assert healthy(ca_file)
    assert leader(ca_file) != first_leader
    assert_recap_unchanged(runner.run(blocks[0]))

    back = ansible_playbook("--tags", "postgresql", playbook="playbooks/postgresql.yml")
    assert back.returncode == 0, back.stdout[-4000:]
    settled_on_every_member("log_min_duration_statement", "-1")
    runner.run(blocks[0])
    assert pending_restarts(ca_file) == dict.fromkeys(MEMBERS, False)
    assert healthy(ca_file)
    for host in MEMBERS:
        assert show(host, "max_files_per_process") == "1000"


# --- backups and switchover


def backup_host() -> str:
    (host,) = group_hosts("backup")
    return host


def pgbackrest(command: str) -> str:
    return sh(backup_host(), f"sudo -u postgres pgbackrest --stanza=main {command}")


def test_a_backup_copies_the_data_files_from_the_standby(ca_file: Path) -> None:
    standby = lab_host(next(m for m in MEMBERS if m != leader(ca_file))).fqdn
    out = pgbackrest("--type=incr --log-level-console=detail backup")
    # pgBackRest names the host of each file it copies: the data files come from the standby.
    copied = [line for line in out.splitlines() if "backup file " in line]
    assert copied, out[-2000:]
    assert any(f"backup file {standby}:" in line for line in copied), copied[:5]
    info = json.loads(pgbackrest("--output=json info"))
    assert info[0]["status"]["code"] == 0, info


def test_a_switchover_moves_the_writes_and_the_archiving_to_the_other_member(
    ca_file: Path, app_password: str, migration_password: str, tmp_path: Path
) -> None:
    """A planned switchover (docs/runbooks/ha-switchover.md, as written) under writes through
    app1's URL: the writes stop for a few seconds, nothing acknowledged is lost, and the new
    primary's WAL reaches the repository. Run again, the playbook changes nothing."""
    old = leader(ca_file)
    (new,) = [m for m in MEMBERS if m != old]
    dsn = conninfo(lab_host("app1"), "app", ca_file, port=DIRECT_PORT)
    owner = conninfo(lab_host("app1"), "app_migration", ca_file, port=DIRECT_PORT)
    with psycopg.connect(owner, password=migration_password, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ha_switchover")
        conn.execute("CREATE TABLE ha_switchover (n bigint PRIMARY KEY)")
    committed: list[tuple[float, int]] = []
    stop = threading.Event()

    def write() -> None:
        counter, conn = 0, None
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(dsn, password=app_password, connect_timeout=2)
                counter += 1
                with conn.transaction():
                    conn.execute("INSERT INTO ha_switchover VALUES (%s)", (counter,))
                committed.append((time.monotonic(), counter))
            except psycopg.Error:
                conn = None
                time.sleep(0.05)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_for("writes before the switchover", lambda: len(committed) > 50, 30, 0.2)
        runner, blocks = procedure("ha-switchover.md", tmp_path, member=new)
        outputs = [runner.run(block) for block in blocks]
        wait_for("the new leader", lambda: healthy(ca_file) and leader(ca_file) == new, 120, 1)
        started = len(committed)
        wait_for("commits after the switchover", lambda: len(committed) > started + 50, 60, 0.2)
    finally:
        stop.set()
        writer.join(30)
    times = [t for t, _ in committed]
    window = max(b - a for a, b in itertools.pairwise(times))
    with connect(new, ca_file, app_password) as conn:
        rows = {r[0] for r in conn.execute("SELECT n FROM ha_switchover").fetchall()}
    missing = sorted({n for _, n in committed} - rows)
    print(
        f"\nswitchover {old} -> {new}: longest gap between two commits {window:.2f} s;"
        f" {len(committed)} commits, {len(missing)} missing"
    )
    assert missing == []
    assert window < 10, window
    assert new in outputs[-1], outputs[-1]
    assert_recap_unchanged(runner.run(blocks[0]))
    # pgbackrest check (on the repository host) finds the new primary, switches its WAL and
    # waits for the segment in the repository.
    pgbackrest("check")


def test_a_re_initialised_replica_is_restored_from_the_repository(
    ca_file: Path, tmp_path: Path
) -> None:
    """docs/runbooks/ha-reinit-replica.md, as written, on the replica: Patroni creates it again
    from the pgBackRest repository and it streams. Without force, on a replica that streams, the
    playbook changes nothing."""
    primary = leader(ca_file)
    (replica,) = [m for m in MEMBERS if m != primary]
    since = sh(replica, "date '+%Y-%m-%d %H:%M:%S'").strip()
    runner, blocks = procedure("ha-reinit-replica.md", tmp_path, member=replica)
    for block in blocks:
        runner.run(block)
    assert healthy(ca_file), cluster(ca_file)
    journal = sh(replica, f"journalctl -u 'patroni@*' --since '{since}' --no-pager -o cat")
    assert "replica has been created using pgbackrest" in journal, journal[-3000:]
    without_force = runner.with_values({"-e force=true": ""})
    assert_recap_unchanged(without_force.run(blocks[0]))


@pytest.mark.parametrize(
    ("playbook", "extra", "named"),
    [
        ("switchover", "candidate=witness", "candidate"),
        ("switchover", "candidate=", "candidate"),
        ("reinit", "member={leader}", "the leader"),
        ("reinit", "member=app1", "member"),
    ],
    ids=[
        "switchover-to-a-non-member",
        "switchover-to-nobody",
        "reinit-the-leader",
        "reinit-a-non-member",
    ],
)
def test_the_operational_playbooks_refuse_a_bad_member_before_any_change(
    ansible_playbook: AnsiblePlaybook, ca_file: Path, playbook: str, extra: str, named: str
) -> None:
    extra = extra.format(leader=leader(ca_file))
    result = ansible_playbook("-e", extra, playbook=f"playbooks/{playbook}.yml")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    failure = failure_messages(output)
    assert_failed_before_any_change(failure or None, parse_recap(result.stdout), output, named)


# --- failover


@dataclass
class Writers:
    """A client committing one row at a time through HAProxy (libpq's list of the proxy hosts,
    with target_session_attrs=read-write), recording a row only once COMMIT returned; and a
    watcher asking every member directly every 100 ms whether it accepts writes."""

    dsn: str
    password: str
    members: dict[str, str]
    committed: list[int] = field(default_factory=list)
    # When each commit returned, and when each attempt failed.
    committed_at: list[float] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)
    writable: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def write(self) -> None:
        counter = 0
        conn: psycopg.Connection[Any] | None = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, password=self.password, connect_timeout=2)
                counter += 1
                with conn.transaction():
                    conn.execute("INSERT INTO ha_writes VALUES (%s)", (counter,))
                self.committed.append(counter)
                self.committed_at.append(time.monotonic())
            except psycopg.Error:
                self.failed_at.append(time.monotonic())
                conn = None
                time.sleep(0.1)
        if conn is not None:
            conn.close()

    def watch(self) -> None:
        conns: dict[str, psycopg.Connection[Any]] = {}
        # A member that did not answer (its machine gone) is asked again a second later, so that
        # the others are still polled every 100 ms.
        retry_at: dict[str, float] = {}
        while not self.stop.is_set():
            now = time.monotonic()
            found = set()
            for host, dsn in self.members.items():
                if retry_at.get(host, 0.0) > now:
                    continue
                try:
                    if host not in conns or conns[host].closed:
                        conns[host] = psycopg.connect(
                            dsn, password=self.password, connect_timeout=1, autocommit=True
                        )
                    row = conns[host].execute("SELECT pg_is_in_recovery()").fetchone()
                    if row is not None and row[0] is False:
                        found.add(host)
                except psycopg.Error:
                    conns.pop(host, None)
                    retry_at[host] = time.monotonic() + 1
            self.writable.append((now, frozenset(found)))
            time.sleep(max(0.0, 0.1 - (time.monotonic() - now)))
        for conn in conns.values():
            conn.close()

    def back_after(self, fault: float) -> float | None:
        """Seconds from the fault to the first commit after the first failed attempt that
        followed it; None until then."""
        failed = next((t for t in self.failed_at if t >= fault), None)
        if failed is None:
            return None
        return next((t - fault for t in self.committed_at if t > failed), None)

    def missing(self, leader: str, ca_file: Path, password: str) -> list[int]:
        """The rows acknowledged as committed that the leader does not have."""
        with connect(leader, ca_file, password) as conn:
            rows = {r[0] for r in conn.execute("SELECT n FROM ha_writes").fetchall()}
        return sorted(set(self.committed) - rows)


@contextlib.contextmanager
def writing(
    proxies: list[str], ca_file: Path, app_password: str, migration_password: str
) -> Iterator[Writers]:
    """Writers through HAProxy on the proxies (libpq tries them in order, as an application
    whose URL names them does) into a new table ha_writes, with the watcher; committing when
    the block starts, stopped when it ends."""
    hosts = ",".join(lab_host(h).fqdn for h in proxies)
    addresses = ",".join(lab_host(h).address for h in proxies)
    dsn = (
        f"host={hosts} hostaddr={addresses} port={DIRECT_PORT} dbname=app user=app"
        f" sslmode=verify-full sslrootcert={ca_file} target_session_attrs=read-write"
        " application_name=pgstack-ha"
    )
    owner = dsn.replace("user=app ", "user=app_migration ")
    with psycopg.connect(owner, password=migration_password, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ha_writes")
        conn.execute("CREATE TABLE ha_writes (n bigint PRIMARY KEY)")
    members = {h: conninfo(lab_host(h), "app", ca_file) for h in MEMBERS}
    writers = Writers(dsn, app_password, members)
    threads = [
        threading.Thread(target=work, daemon=True) for work in (writers.write, writers.watch)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for("writes before the fault", lambda: len(writers.committed) > 50, 30, 0.2)
        yield writers
    finally:
        writers.stop.set()
        for thread in threads:
            thread.join(30)


def failed_over(
    writers: Writers, old: str, others: list[str], fault: float, ca_file: Path
) -> tuple[str, float]:
    """The member the others elect after the fault of old, and the seconds from the fault to the
    first commit acknowledged while that member alone accepted writes."""
    before = len(writers.committed)
    new: str = wait_for(
        "a new leader",
        lambda: next(
            (
                n
                for n, m in cluster_of(others, ca_file).items()
                if m["role"] == "leader" and n != old
            ),
            None,
        ),
        120,
        0.2,
    )
    wait_for(
        "a commit on the new leader",
        lambda: len(writers.committed) > before and [t for t, w in writers.writable if w == {new}],
        60,
        0.1,
    )
    return new, time.monotonic() - fault


def partition(host: str, others: list[str], action: str) -> None:
    """Cut host off from the other members (both ways) in its network namespace, or heal it:
    the controller still reaches every member, to watch them."""
    for other in others:
        address = lab_host(other).address
        netns_iptables(host, action, "INPUT", "-s", address, "-j", "DROP")
        netns_iptables(host, action, "OUTPUT", "-d", address, "-j", "DROP")


def patch_config(host: str, ca_file: Path, password: str, change: dict[str, Any]) -> None:
    """PATCH /config (Patroni's dynamic configuration) as the REST API's user."""
    context = ssl.create_default_context(cafile=str(ca_file))
    request = urllib.request.Request(
        f"https://{lab_host(host).address}:{REST_PORT}/config",
        data=json.dumps(change).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json"},
    )
    token = base64.b64encode(f"patroni:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:  # noqa: S310
        assert answer.status == 200


def has_sync_standby(ca_file: Path) -> bool:
    return any(m["role"] == "sync_standby" for m in cluster(ca_file).values())


@pytest.fixture(params=[True, False], ids=["synchronous", "asynchronous"])
def replication_mode(request: pytest.FixtureRequest, ca_file: Path, secret: Any) -> Iterator[bool]:
    """The lab's cluster runs synchronous replication (its inventory's choice, through the
    role); for the asynchronous case it is switched off in Patroni for the test, and back on."""
    synchronous: bool = request.param
    # A member back from a fault becomes the synchronous standby again within a few cycles.
    wait_for(
        "the synchronous standby the inventory asks for", lambda: has_sync_standby(ca_file), 60, 1
    )
    password = str(secret("patroni_rest"))
    if not synchronous:
        patch_config(leader(ca_file), ca_file, password, {"synchronous_mode": False})
        wait_for("no synchronous standby", lambda: not has_sync_standby(ca_file), 60, 1)
    try:
        yield synchronous
    finally:
        if not synchronous:
            patch_config(leader(ca_file), ca_file, password, {"synchronous_mode": True})
            wait_for("a synchronous standby", lambda: has_sync_standby(ca_file), 60, 1)


@pytest.mark.failover
def test_the_leader_cut_off_under_writes_fails_over_with_one_primary_at_a_time(
    ca_file: Path, app_password: str, migration_password: str, replication_mode: bool
) -> None:
    """Asynchronous: what the cut-off leader acknowledged before it stepped down may be lost
    (reported). Synchronous: a commit returns once the standby has it, so nothing is."""
    old = leader(ca_file)
    others = [h for h in group_hosts("etcd") if h != old]
    # The application's way in: HAProxy on every proxy host, to whichever member leads.
    with writing(PROXIES, ca_file, app_password, migration_password) as writers:
        partition(old, others, "-I")
        fault = time.monotonic()
        try:
            new, recovered = failed_over(writers, old, others, fault, ca_file)
        finally:
            partition(old, others, "-D")
        # The old leader rejoins as a replica (pg_rewind), with nobody's help.
        members_now = wait_for("the old leader streaming again", lambda: healthy(ca_file), 180, 1)
        time.sleep(2)
    missing = writers.missing(new, ca_file, app_password)
    both = [t - fault for t, w in writers.writable if len(w) > 1]
    mode = "synchronous" if replication_mode else "asynchronous"
    print(
        f"\nfailover: {old} cut off, {new} leads; first commit on it {recovered:.1f} s after the"
        f" fault; {len(writers.committed)} commits acknowledged, {len(missing)} missing"
        f" ({mode} replication); polls: {len(writers.writable)}"
    )
    assert members_now[new]["role"] == "leader"
    assert members_now[old]["role"] in STANDBY_ROLES
    assert both == [], f"two writable primaries at {both} s after the fault"
    if replication_mode:
        assert missing == [], f"{len(missing)} acknowledged commits lost: {missing[:10]}"
    else:
        # What the cut-off leader committed before it stepped down never reached the new one.
        # Bounded by its time to step down (ttl); reported, and documented in docs/ha.md.
        assert len(missing) < len(writers.committed)


@pytest.mark.failover
def test_patroni_and_postgresql_killed_on_the_leader_come_back_with_nothing_lost(
    ansible_playbook: AnsiblePlaybook, ca_file: Path, app_password: str, migration_password: str
) -> None:
    """SIGKILL to every process of the leader's Patroni unit at once (Patroni and the PostgreSQL
    it runs), under writes in synchronous mode: systemd starts Patroni again (Restart=on-failure,
    roles/postgresql), which finds the leader lock still its own and brings its server back; had
    the lock expired first, the other member would lead. Either way the writes come back through
    HAProxy, two writable members are never seen, and nothing acknowledged is lost. A converge of
    the members started right after the kill runs through the recovery and changes nothing."""
    wait_for("a synchronous standby", lambda: has_sync_standby(ca_file), 60, 1)
    old = leader(ca_file)
    with (
        writing(PROXIES, ca_file, app_password, migration_password) as writers,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        fault = time.monotonic()
        sh(old, "systemctl kill --signal=SIGKILL 'patroni@*.service'")
        converge = pool.submit(ansible_playbook, playbook="playbooks/postgresql.yml")
        recovered = wait_for("a commit after the kill", lambda: writers.back_after(fault), 120, 0.1)
        members_now = wait_for("every member running again", lambda: healthy(ca_file), 180, 1)
        assert_nothing_changed(converge.result())
        time.sleep(2)
    (new,) = [name for name, member in members_now.items() if member["role"] == "leader"]
    missing = writers.missing(new, ca_file, app_password)
    both = [t - fault for t, w in writers.writable if len(w) > 1]
    print(
        f"\nPatroni and PostgreSQL killed on {old}: {new} leads; first commit {recovered:.1f} s"
        f" after the kill; {len(writers.committed)} commits acknowledged, {len(missing)} missing"
        " (synchronous replication)"
    )
    assert both == [], f"two writable primaries at {both} s after the fault"
    assert missing == [], f"{len(missing)} acknowledged commits lost: {missing[:10]}"


@pytest.mark.failover
def test_a_sentinel_failover_moves_the_master_and_the_application_follows(secret: Any) -> None:
    """A planned failover (SENTINEL FAILOVER as the admin): the old master becomes the replica of
    the new one, and the application's env file leads to the new master. The converge at the end
    of the module finds Redis as the failovers left it and changes nothing."""
    before = redis_roles(secret)
    [old] = [h for h, role in before.items() if role == "master"]
    sentinels = group_hosts("sentinel")
    assert sentinel_command(sentinels[-1], secret, "SENTINEL", "FAILOVER", "pgstack") == "OK"
    began = time.monotonic()
    wait_for(
        "every sentinel naming the other Redis",
        lambda: all(sentinel_master(h, secret) != lab_host(old).address for h in sentinels),
        60,
        0.5,
    )
    moved = time.monotonic() - began
    after = wait_for(
        "the old master replicating the new one",
        lambda: (roles := redis_roles(secret))[old] == "slave" and roles,
        60,
        1,
    )
    [new] = [h for h, role in after.items() if role == "master"]
    ok, master = app_redis_write()
    assert ok, master
    assert master == lab_host(new).address
    print(f"\nRedis: a planned failover from {old} to {new} took {moved:.1f} s")


@pytest.mark.failover
def test_a_lost_machine_fails_over_then_the_runbook_brings_its_member_back(
    ca_file: Path, app_password: str, migration_password: str, secret: Any, tmp_path: Path
) -> None:
    """The leader's machine is terminated (pgstack-lab down --kill: no shutdown, its disk gone)
    while it also runs the Redis master: Patroni and the sentinels fail over to the other host,
    the application reaches both again through its env file, and nothing acknowledged is lost
    (synchronous replication, the lab's choice). Then docs/runbooks/ha-replace-member.md, as
    written, makes a new machine of the same name a member again: etcd, Patroni (the replica
    restored from the repository), Redis and its sentinel."""
    old = leader(ca_file)
    address = lab_host(old).address
    sentinels = [h for h in group_hosts("sentinel") if h != old]
    # The loss should cost both failovers: the Redis master moves to the leader's host first.
    if sentinel_master(sentinels[0], secret) != address:
        sentinel_command(sentinels[0], secret, "SENTINEL", "FAILOVER", "pgstack")
        wait_for(
            "the Redis master on the leader's host",
            lambda: all(sentinel_master(h, secret) == address for h in sentinels),
            60,
            1,
        )
    wait_for("a synchronous standby", lambda: has_sync_standby(ca_file), 60, 1)
    others = [h for h in group_hosts("etcd") if h != old]
    # The application's URL: HAProxy on its own host (app_env), which survives.
    with writing(group_hosts("app"), ca_file, app_password, migration_password) as writers:
        fault = time.monotonic()
        pgstack_lab("down", "--kill", old)
        new, recovered = failed_over(writers, old, others, fault, ca_file)
        promoted = wait_for(
            "a sentinel promoting the Redis replica",
            lambda: all(sentinel_master(h, secret) != address for h in sentinels),
            90,
            0.5,
        )
        redis_after = time.monotonic() - fault
        ok, master = app_redis_write()
        # The env file's first sentinel may be the lost one: an application tries the next.
        if not ok:
            ok, master = app_redis_write(f"{lab_host(sentinels[0]).address}:26379")
        assert ok, (promoted, master)
        assert master != address, (promoted, master)
        time.sleep(2)
    missing = writers.missing(new, ca_file, app_password)
    both = [t - fault for t, w in writers.writable if len(w) > 1]
    print(
        f"\nmachine lost: {old} (leader, Redis master) killed; {new} leads, first commit"
        f" {recovered:.1f} s after the fault; the sentinels named the new Redis master after"
        f" {redis_after:.1f} s; {len(writers.committed)} commits acknowledged,"
        f" {len(missing)} missing (synchronous replication)"
    )
    assert both == [], f"two writable primaries at {both} s after the fault"
    assert missing == [], f"{len(missing)} acknowledged commits lost: {missing[:10]}"

    # A new, empty machine under the lost one's name, then the runbook; meanwhile the monitoring
    # host's alerts name the lost member.
    pgstack_lab("up", old)
    runner, blocks = procedure("ha-replace-member.md", tmp_path)
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        replacing = pool.submit(lambda: [runner.run(block) for block in blocks])
        for alert, labels in lost_member_alerts(old, new):
            wait_for(f"{alert} firing {labels}", lambda a=alert, lb=labels: firing(a, lb), 240, 2)
        outputs = replacing.result()
    rejoined = time.monotonic() - began
    print(f"{old} replaced: the runbook's converge and check took {rejoined:.0f} s")
    for alert, labels in lost_member_alerts(old, new)[:2]:
        wait_for(f"{alert} resolved", lambda a=alert, lb=labels: not firing(a, lb), 120, 2)
    members = wait_for("both members streaming", lambda: healthy(ca_file), 120, 1)
    assert members[old]["role"] in STANDBY_ROLES, members
    assert old in outputs[-1], outputs[-1]
    journal = sh(old, "journalctl -u 'patroni@*' --no-pager")
    assert "replica has been created using pgbackrest" in journal, journal[-3000:]
    etcd_hosts = group_hosts("etcd")
    assert sorted(m.get("name", "") for m in etcd_members(old, ca_file, secret)) == sorted(
        etcd_hosts
    )
    others_seen = str(len(group_hosts("sentinel")) - 1)
    for host in group_hosts("sentinel"):
        info = sentinel_command(host, secret, "SENTINEL", "master", "pgstack").splitlines()
        fields = dict(zip(info[::2], info[1::2], strict=False))
        assert fields["num-slaves"] == "1", (host, fields)
        assert fields["num-other-sentinels"] == others_seen, (host, fields)


# --- monitoring: Prometheus and Alertmanager on the monitoring host (the witness)


def lost_member_alerts(old: str, new: str) -> list[tuple[str, dict[str, str]]]:
    """The alerts a member's loss fires (alerts/cluster.rules.yml, alerts/redis.rules.yml), each
    with the labels it must carry; those of the lost member first."""
    return [
        ("PatroniMemberDown", {"instance": old}),
        ("EtcdMemberDown", {"instance": old}),
        ("PatroniLeaderChanged", {"instance": new}),
        ("RedisSentinelMasterChanged", {"address": f"{lab_host(new).address}:6379"}),
    ]


def firing(alert: str, labels: dict[str, str]) -> bool:
    """Prometheus on the monitoring host has the alert firing with those labels."""
    return any(
        a["labels"]["alertname"] == alert
        and labels.items() <= a["labels"].items()
        and a["state"] == "firing"
        for a in prometheus("/api/v1/alerts")["alerts"]
    )


def test_prometheus_scrapes_patroni_etcd_and_the_exporter_on_every_member() -> None:
    """Every target of the monitoring host is up, Patroni's and etcd's on every member among
    them; the cluster's rules are loaded; the exporter labels each member's server with its role,
    one primary."""

    def all_up() -> list[dict[str, Any]] | None:
        targets = prometheus("/api/v1/targets")["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_for("every target up", all_up, 90, 2)
    scraped = {(t["labels"]["job"], t["labels"]["instance"]) for t in targets}
    assert {("patroni", m) for m in MEMBERS} <= scraped, scraped
    assert {("etcd", m) for m in group_hosts("etcd")} <= scraped, scraped
    rules = {r["name"] for g in prometheus("/api/v1/rules")["groups"] for r in g["rules"]}
    assert {"PatroniMemberDown", "PatroniNoLeader", "EtcdNoLeader"} <= rules, sorted(rules)
    roles = prometheus("/api/v1/query?query=pgstack_postgresql_role")["result"]
    assert sorted(r["metric"]["role"] for r in roles) == ["primary", "replica"], roles
    # Every sentinel, through the exporter beside it, sees the master, its replica and a quorum.
    for series, value in [
        ("pgstack_sentinel_quorum_reachable", "1"),
        ("pgstack_sentinel_replicas_up", "1"),
        ("pgstack_sentinel_other_sentinels_up", str(len(group_hosts("sentinel")) - 1)),
    ]:
        found = prometheus(f"/api/v1/query?query={series}")["result"]
        assert sorted(r["metric"]["target"] for r in found) == sorted(group_hosts("sentinel")), (
            found
        )
        assert {r["value"][1] for r in found} == {value}, (series, found)
    # The other series the RedisSentinel* rules read (absent on the lab: test_dashboards.py).
    for series in [
        "pgstack_sentinel_master_info",
        "pgstack_sentinel_master_odown",
        "pgstack_sentinel_quorum",
    ]:
        found = prometheus(f"/api/v1/query?query={series}")["result"]
        assert sorted(r["metric"]["target"] for r in found) == sorted(group_hosts("sentinel")), (
            found
        )


# --- after the failovers


@pytest.mark.failover
def test_a_second_converge_and_check_mode_change_nothing(
    ansible_playbook: AnsiblePlaybook,
) -> None:
    """Side by side, to halve the time on five hosts: the converge changes nothing, so the check
    mode run beside it reads the same converged hosts. Last in the module, it finds the cluster
    as the switchover and the failovers above left it, another member leading: a converge after a
    failover follows the cluster, it does not put the inventory's first member back."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        converge = pool.submit(ansible_playbook, playbook="playbooks/site.yml")
        check = pool.submit(ansible_playbook, playbook="playbooks/site.yml", check=True)
        assert_nothing_changed(converge.result())
        assert_nothing_changed(check.result())

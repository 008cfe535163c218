"""The monitoring tier on the lab, from mon1: every exporter answers /metrics (over TLS, to
Prometheus' user only) and /health there, the exporters and Alertmanager refuse plaintext and
unauthenticated requests, Prometheus scrapes every target and loaded the rules, and real faults
travel the whole way: the alert fires in Prometheus, Alertmanager sends it to the webhook receiver,
and it resolves once the fault is gone (the lab's short `for` and intervals:
inventory/lab/group_vars/monitoring).

pgstack-exporter as `roles/exporter` deploys it on db1 and backup1: every target of the services a
host runs is up and every collector succeeds, `/health` reports exactly those services, the service
runs as its own user with no secret on its command line or in its environment, and the deployed
`--check-config` accepts the deployed file and refuses an unknown key.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import redis
from helpers import (
    LAB_INVENTORY,
    MON,
    OPERATOR_USER,
    PGBOUNCER_PORT,
    ROLE_SECRETS,
    SCRAPE_USER,
    DbHost,
    conninfo,
    fetch,
    in_mount_namespace,
    lab_ssh,
    netns_iptables,
    pg_major,
    prometheus,
    sh,
    switch_wal,
    wait_for,
)

from layout import inventory_groups, role_hosts

pytestmark = pytest.mark.e2e

EXPORTER_PORT = 9716
NODE_EXPORTER_PORT = 9100
# The hosts the exporter is applied to (roles/preflight/vars/layout.yml) in the lab's inventory.
EXPORTER_HOSTS = role_hosts("exporter", inventory_groups(LAB_INVENTORY / "hosts.yml"))
NOTIFICATIONS = "/var/lib/pgstack-alert-webhook/notifications.jsonl"


# TLS probes are refreshed every 60 s (docs/exporter.md): a fault another module induced and
# removed (test_backup.py blocks backup1's pgBackRest port) may still show for up to a minute.
PROBE_INTERVAL = 60


# What each exporter host reports besides every target up and every collector successful: the
# targets and collectors of the services it watches, and a series of each source (None: present,
# whatever its value). backup1's dump series follow the dump the test runs first.
EXPECTED_SAMPLES: dict[str, dict[str, float | None]] = {
    "db1": {
        **{f'pgstack_up{{kind="{kind}",target="db1"}}': 1.0
           for kind in ("postgresql", "pgbouncer", "redis")},
        **{f'pgstack_up{{kind="tls",target="{server}/db1"}}': 1.0
           for server in ("postgresql", "pgbouncer", "redis", "pgbackrest")},
        **{f'pgstack_collector_success{{collector="{name}",target="db1"}}': 1.0
           for name in ("postgresql", "archiver")},
        'pgstack_redis_max_clients{target="db1"}': None,
        'pgstack_pgbouncer_max_client_connections{target="db1"}': None,
    },
    "backup1": {
        'pgstack_up{kind="status_files",target="/var/lib/pgstack/status"}': 1.0,
        'pgstack_up{kind="pgbackrest",target="repository"}': 1.0,
        'pgstack_up{kind="tls",target="pgbackrest/backup1"}': 1.0,
        "pgstack_pgbackrest_info_success": 1.0,
        'pgstack_pgbackrest_stanza_status{stanza="main"}': 0.0,
        "pgstack_pgbackrest_last_backup_completion_timestamp_seconds"
        '{stanza="main",type="full"}': None,
        'pgstack_dump_last_attempt_status{cluster="db1",database="app",status="success"}': 1.0,
        'pgstack_status_file_valid{file="pg_dump-db1-app.json"}': 1.0,
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def a_dump_ran() -> None:
    """A dump run on backup1: its status file, read by the exporter there, records a success."""
    sh("backup1", f"systemctl start {DUMP_SERVICE}", timeout=600)


def samples(body: str) -> dict[str, float]:
    """{series: value} of a /metrics body, each series as written (name{labels})."""
    lines = (line.rpartition(" ") for line in body.splitlines() if not line.startswith("#"))
    return {series: float(value) for series, _, value in lines if series}


def unexpected_samples(host: str) -> dict[str, float | None]:
    """What host's /metrics reports otherwise than it must (None: missing): a target down, a
    collector failed, an expected sample missing or with another value."""
    status, _, body = fetch(
        f"https://{host}.pgstack.internal:{EXPORTER_PORT}/metrics", user=SCRAPE_USER
    )
    assert status == 200, body[:500]
    found = samples(body)
    outcomes = {
        s: v
        for s, v in found.items()
        if s.startswith(("pgstack_up{", "pgstack_collector_success{"))
    }
    assert outcomes, body[:2000]
    wrong: dict[str, float | None] = {s: v for s, v in outcomes.items() if v != 1.0}
    for series, value in EXPECTED_SAMPLES[host].items():
        if series not in found or (value is not None and found[series] != value):
            wrong[series] = found.get(series)
    return wrong


@pytest.mark.release
@pytest.mark.parametrize("host", EXPORTER_HOSTS)
def test_metrics_answer_from_the_monitoring_host(host: str, a_dump_ran: None) -> None:
    with contextlib.suppress(AssertionError):
        wait_for(
            f"{host}'s exporter reporting every target up and every collector successful",
            lambda: not unexpected_samples(host),
            timeout=2 * PROBE_INTERVAL,
        )
    assert unexpected_samples(host) == {}


# The services each exporter host's /health reports: those it watches (backup1 watches none).
HEALTH_SERVICES = {"db1": {"postgresql", "pgbouncer", "redis"}, "backup1": set()}


@pytest.mark.release
@pytest.mark.parametrize("host", EXPORTER_HOSTS)
def test_health_answers_from_the_monitoring_host(host: str) -> None:
    def healthy() -> tuple[dict[str, str], dict[str, Any]] | None:
        # Without credentials: /health is the one path that needs none (docs/security.md).
        status, headers, body = fetch(f"https://{host}.pgstack.internal:{EXPORTER_PORT}/health")
        assert status == 200, body
        health = json.loads(body)
        return (headers, health) if health["status"] == "healthy" else None

    # /health answers from probes refreshed every 5 s (docs/exporter.md): a service another module
    # restarted is back within a probe or two.
    headers, health = wait_for(f"{host}'s /health healthy", healthy, timeout=30)
    services = health["services"]
    assert set(services) == HEALTH_SERVICES[host], health
    assert all(s["status"] == "up" for s in services.values()), health
    assert "redis" not in services or services["redis"]["memoryWarning"] is False, health
    assert headers.get("Cache-Control") == "no-store"


EXPORTER_UNIT = "pgstack-exporter.service"
# The user, command line and environment of the running exporter, then those its unit declares.
EXPORTER_PROCESS = f"""
set -eu
pid=$(systemctl show --property=MainPID --value {EXPORTER_UNIT})
stat -c %U /proc/$pid
tr '\\0' ' ' </proc/$pid/cmdline
echo
tr '\\0' '\\n' </proc/$pid/environ
systemctl show --property=ExecStart,Environment {EXPORTER_UNIT}
"""


@pytest.mark.parametrize("host", EXPORTER_HOSTS)
def test_the_exporter_runs_as_its_own_user_with_no_secret_in_argv_or_environment(
    host: str, lab_dir: Path
) -> None:
    """Its passwords come from files: none is on the command line or in the environment, of the
    running process or of the unit (its journal: test_secrets.py)."""
    user, _, process = sh(host, EXPORTER_PROCESS).partition("\n")
    assert user == "pgstack-exporter"
    assert "--config.file=" in process, process
    secrets = {path.name: path.read_text().strip() for path in (lab_dir / "secrets").iterdir()}
    assert secrets, "the lab has no generated secrets"
    assert sorted(name for name, value in secrets.items() if value in process) == []


# A target whose password_file is misspelt.
MISSPELT_CONFIG = "version: 1\nredis:\n  - {name: x, host: h, username: m, pasword_file: /x}\n"


@pytest.mark.parametrize("host", EXPORTER_HOSTS)
def test_check_config_accepts_the_deployed_file_and_refuses_an_unknown_key(host: str) -> None:
    deployed = lab_ssh(
        host, "pgstack-exporter --check-config --config.file=/etc/pgstack/exporter.yml"
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    misspelt = lab_ssh(
        host,
        'f=$(mktemp); cat >"$f"; pgstack-exporter --check-config --config.file="$f"; rc=$?;'
        ' rm -f "$f"; exit $rc',
        stdin=MISSPELT_CONFIG,
    )
    assert misspelt.returncode == 1, misspelt.stdout + misspelt.stderr
    assert "pasword_file" in misspelt.stderr, misspelt.stderr


# Every HTTP server of the monitoring plane that holds credentials: pgstack-exporter, each host's
# node exporter and Alertmanager, with the user that may use it.
GUARDED = [
    *[
        (f"https://{h}.pgstack.internal:{EXPORTER_PORT}/metrics", SCRAPE_USER)
        for h in EXPORTER_HOSTS
    ],
    *[
        (f"https://{h}.pgstack.internal:{NODE_EXPORTER_PORT}/metrics", SCRAPE_USER)
        for h in role_hosts("node_exporter", inventory_groups(LAB_INVENTORY / "hosts.yml"))
    ],
    ("https://127.0.0.1:9093/api/v2/silences", OPERATOR_USER),
]


@pytest.mark.release
@pytest.mark.parametrize(("url", "user"), GUARDED, ids=[url for url, _ in GUARDED])
def test_the_monitoring_plane_answers_its_user_only_and_only_over_tls(url: str, user: str) -> None:
    status, _, body = fetch(url, user=user)
    assert status == 200, body[:500]
    status, headers, _ = fetch(url)
    assert status == 401
    assert headers.get("WWW-Authenticate", headers.get("Www-Authenticate", "")).startswith("Basic")
    status, _, _ = fetch(url, user=user, password="not-the-password-0123456789")
    assert status == 401
    # Plaintext to the TLS port: refused in the handshake, or a 400 from a Go server.
    status, _, body = fetch(url.replace("https://", "http://", 1))
    assert status in (0, 400), body[:500]


@pytest.mark.release
def test_creating_a_silence_needs_the_operators_credentials() -> None:
    """Alertmanager's silences mute every alert: without credentials the request is refused and
    nothing is created."""
    before = fetch("https://127.0.0.1:9093/api/v2/silences", user=OPERATOR_USER)
    status, _, _ = fetch("https://127.0.0.1:9093/api/v2/silences", method="POST")
    assert status == 401
    after = fetch("https://127.0.0.1:9093/api/v2/silences", user=OPERATOR_USER)
    assert before[0] == after[0] == 200
    assert json.loads(after[2]) == json.loads(before[2])


@pytest.mark.release
def test_prometheus_scrapes_every_target_and_loaded_the_rules() -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = prometheus("/api/v1/targets")["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_for("every scrape target up", all_up, timeout=60)
    instances = {t["labels"]["instance"] for t in targets if t["labels"]["job"] == "pgstack"}
    assert set(EXPORTER_HOSTS) <= {i.split(":")[0].split(".")[0] for i in instances}, instances
    groups = prometheus("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"] if rule["type"] == "alerting"]
    assert len(rules) >= 50
    assert all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]


def notifications() -> list[dict[str, Any]]:
    result = lab_ssh(MON, f"cat {NOTIFICATIONS} 2>/dev/null || true")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def notified(
    alert: str, status: str, since: float, labels: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """The first webhook notification for alert in status (firing/resolved) sent after since;
    with labels, only one that carries all of them."""
    for note in notifications():
        for item in note.get("alerts", []):
            if item["labels"].get("alertname") != alert or item["status"] != status:
                continue
            if labels and any(item["labels"].get(k) != v for k, v in labels.items()):
                continue
            moment = item["startsAt"] if status == "firing" else item["endsAt"]
            stamp = time.mktime(time.strptime(moment[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            if stamp >= since - 2:  # startsAt/endsAt to the second
                return item
    return None


def active_alerts() -> set[str]:
    """Names of the alerts pending or firing in Prometheus now."""
    return {alert["labels"]["alertname"] for alert in prometheus("/api/v1/alerts")["alerts"]}


@dataclass
class Fault:
    """A fault induced on the lab, the alert it must raise, and how to end it."""

    alert: str
    severity: str
    repair: Callable[[], None]
    began: float = field(default_factory=time.time)
    # Called while the alert is awaited (a workload the fault needs, such as WAL being written).
    tick: Callable[[], None] = lambda: None
    # Labels the notification must carry besides alertname (one filesystem of several).
    labels: dict[str, str] = field(default_factory=dict)
    ended: bool = False

    def end(self) -> None:
        """Repair, once (the test's path and its cleanup both call this)."""
        if not self.ended:
            self.ended = True
            self.repair()


def fire_and_resolve(faults: list[Fault]) -> dict[str, float]:
    """Every fault's alert reaches the webhook firing, then resolved once repaired.

    The faults are in place together, so the waits overlap. Returns seconds from fault to firing
    notification, by alert.
    """
    pending = {fault.alert: fault for fault in faults}
    fired: dict[str, float] = {}
    deadline = time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        for name, fault in list(pending.items()):
            item = notified(name, "firing", fault.began, fault.labels)
            if item is None:
                fault.tick()
                continue
            assert item["labels"]["severity"] == fault.severity, item
            assert item["annotations"]["runbook_url"].endswith(f"{name}.md"), item
            fired[name] = time.time() - fault.began
            del pending[name]
        time.sleep(5)
    assert not pending, f"no firing notification within 300 s for {sorted(pending)}"
    repaired = time.time()
    for fault in faults:
        fault.end()
    wait_for(
        f"{sorted(fired)} resolved at the webhook",
        lambda: all(notified(fault.alert, "resolved", repaired, fault.labels) for fault in faults),
        timeout=240,
    )
    for name, seconds in fired.items():
        print(f"{name}: fault to notification {seconds:.0f} s")
    return fired


def quiet(alerts: set[str]) -> None:
    """A fault test starts with none of its alerts active (another module's fault has resolved)."""
    wait_for(f"{sorted(alerts)} inactive before the faults", lambda: not alerts & active_alerts())


# --- faults on a running stack: archiving, Redis memory, a dump, the PgBouncer pool

DUMPS = "/var/backups/pgstack/dumps/db1/app"
DUMP_SERVICE = "pgstack-pg-dump.service"
FILL_KEY = "session:pgstack-e2e-fill:{}"
FILL_LIMIT = 64 * 1024 * 1024


def archive_outage() -> Fault:
    """backup1's pgBackRest TLS server unreachable from db1 while WAL is written."""
    rule = ["INPUT", "-p", "tcp", "--dport", "8432", "-j", "REJECT", "--reject-with", "tcp-reset"]
    netns_iptables("backup1", "-I", *rule)

    def repair() -> None:
        netns_iptables("backup1", "-D", *rule)
        switch_wal()  # a segment archived after the failures: the archiver's last success is new

    last = [0.0]

    def write_wal() -> None:
        if time.monotonic() - last[0] > 15:
            switch_wal()
            last[0] = time.monotonic()

    return Fault("PostgresqlArchivingFailing", "critical", repair, tick=write_wal)


def redis_client(
    db_host: DbHost, ca_file: Path, secret: Callable[[str], str], user: str
) -> redis.Redis:
    return redis.Redis(
        host=db_host.address,  # db1's certificate carries its address
        port=6379,
        username=user,
        password=secret(f"redis_{user}"),
        ssl=True,
        ssl_ca_certs=str(ca_file),
        ssl_cert_reqs="required",
        socket_timeout=10,
    )


def redis_filled(db_host: DbHost, ca_file: Path, secret: Callable[[str], str]) -> Fault:
    """maxmemory lowered to 64 MiB for the test, then filled past 85 % with the app user's keys."""
    admin = redis_client(db_host, ca_file, secret, "admin")
    app = redis_client(db_host, ca_file, secret, "app")
    original = str(admin.config_get("maxmemory")["maxmemory"])
    keys: list[str] = []

    def repair() -> None:
        if keys:
            app.unlink(*keys)
        admin.config_set("maxmemory", original)
        app.close()
        admin.close()

    try:
        admin.config_set("maxmemory", FILL_LIMIT)
        while int(app.info("memory")["used_memory"]) < 0.86 * FILL_LIMIT:
            keys.append(FILL_KEY.format(len(keys)))
            app.setrange(keys[-1], 1024 * 1024 - 1, "x")  # a 1 MiB string
    except BaseException:
        repair()
        raise
    return Fault("RedisMemoryHigh", "warning", repair)


def failed_dump() -> Fault:
    """A good dump, then the destination on backup1 made unwritable and a dump run: it fails."""
    sh("backup1", f"systemctl start {DUMP_SERVICE}", timeout=600)
    good = sh("backup1", f"ls {DUMPS}").split()
    sh("backup1", f"chmod 0555 {DUMPS}")
    failed = lab_ssh("backup1", f"systemctl start {DUMP_SERVICE}", timeout=600)

    def repair() -> None:
        sh("backup1", f"chmod 0750 {DUMPS}; systemctl reset-failed {DUMP_SERVICE}")
        sh("backup1", f"systemctl start {DUMP_SERVICE}", timeout=600)

    if failed.returncode == 0:
        repair()
        raise AssertionError("the dump into an unwritable directory succeeded")
    # The failed run kept the good dump it could not replace.
    assert set(good) <= set(sh("backup1", f"ls {DUMPS}").split())
    return Fault("PgDumpFailed", "warning", repair)


def pool_exhausted(db_host: DbHost, ca_file: Path, secret: Callable[[str], str]) -> Fault:
    """Every server connection of app_pool5 held in an open transaction, 8 clients waiting."""
    dsn = conninfo(db_host, "app", ca_file, port=PGBOUNCER_PORT, dbname="app_pool5")
    password = secret(ROLE_SECRETS["app"])
    # No client gives up while the alert is awaited; RELOAD restores the file's timeout.
    admin = "sudo -u postgres psql -X -h /var/run/postgresql -p 6432 -U pgbouncer -d pgbouncer -c"
    sh("db1", f"{admin} 'SET query_wait_timeout = 600'")
    holders = [psycopg.connect(dsn, password=password, autocommit=True) for _ in range(5)]
    for conn in holders:
        conn.execute("BEGIN")
        conn.execute("SELECT 1")

    def wait_in_line() -> None:
        with psycopg.connect(dsn, password=password, autocommit=True) as conn:
            conn.execute("SELECT 1")

    waiters = [threading.Thread(target=wait_in_line, daemon=True) for _ in range(8)]
    for thread in waiters:
        thread.start()

    def repair() -> None:
        for conn in holders:
            conn.close()
        for thread in waiters:
            thread.join(timeout=60)
        sh("db1", f"{admin} 'RELOAD'")

    return Fault("PgbouncerClientsWaiting", "warning", repair)


def test_faults_on_a_running_stack_reach_the_webhook_and_resolve(
    db_host: DbHost, ca_file: Path, secret: Callable[[str], str]
) -> None:
    makers: list[Callable[[], Fault]] = [
        archive_outage,
        lambda: redis_filled(db_host, ca_file, secret),
        failed_dump,
        lambda: pool_exhausted(db_host, ca_file, secret),
    ]
    quiet({"PostgresqlArchivingFailing", "RedisMemoryHigh", "PgDumpFailed",
           "PgbouncerClientsWaiting"})  # fmt: skip
    faults: list[Fault] = []
    began = time.time()
    try:
        for make in makers:
            faults.append(make())
            faults[-1].began = began
        fire_and_resolve(faults)
    finally:
        for fault in faults:
            with contextlib.suppress(Exception):
                fault.end()
    # The archive caught up: the failures are older than the newest success.
    sh("db1", "sudo -u postgres pgbackrest --stanza=main check")


# --- services stopped: PostgreSQL and PgBouncer


@pytest.fixture
def started_again() -> Iterator[list[str]]:
    """Units a test stops on db1, started again whatever the test found."""
    units: list[str] = []
    yield units
    for unit in units:
        lab_ssh("db1", f"systemctl start {unit}")
    wait_for("PostgreSQL accepting connections", lambda: lab_ssh(
        "db1", "pg_isready -q -h /var/run/postgresql").returncode == 0)  # fmt: skip


@pytest.mark.release
def test_stopped_postgresql_and_pgbouncer_fire_their_alerts_then_resolve(
    started_again: list[str], lab_inventory: Path
) -> None:
    quiet({"PostgresqlDown", "PgbouncerDown"})

    def starter(unit: str) -> Callable[[], None]:
        def start() -> None:
            sh("db1", f"systemctl start {unit}")

        return start

    faults = []
    cluster = f"postgresql@{pg_major(lab_inventory, 'db1')}-main"
    for unit, alert in ((cluster, "PostgresqlDown"), ("pgbouncer", "PgbouncerDown")):
        began = time.time()
        started_again.append(unit)
        sh("db1", f"systemctl stop {unit}")
        faults.append(Fault(alert, "critical", starter(unit), began))
    fire_and_resolve(faults)


# --- host metrics: a filesystem filled on backup1 (the node exporter, job node)

FILL_MOUNT = "/srv/pgstack-e2e-fill"
FILL_DEVICE = "/dev/pgstack-e2e-fill"
FILL_IMAGE_MIB = 64


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[str]:
    """A 64 MiB ext4 filesystem mounted at FILL_MOUNT on backup1, removed after the test.

    Filling backup1's root would fill this machine's disk (lab hosts are directories on it), and
    the filesystem alerts rightly ignore tmpfs. So: an image file on the controller, attached to a
    loop device here, and mounted in backup1's mount namespace through a device node made there
    (lab hosts have no loop devices of their own). The node exporter on backup1 sees an ext4
    filesystem like any other.
    """
    image = tmp_path / "fill.ext4"
    subprocess.run(["truncate", "-s", f"{FILL_IMAGE_MIB}M", str(image)], check=True, timeout=30)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, timeout=60)
    loop = subprocess.run(
        ["losetup", "--find", "--show", str(image)],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    mounted = False
    try:
        rdev = os.stat(loop).st_rdev
        node = f"{FILL_DEVICE} b {os.major(rdev)} {os.minor(rdev)}"
        # Root-only through the umask: mknod -m also calls chmod, which the machine's /dev refuses.
        in_mount_namespace("backup1", "sh", "-c", f"umask 077 && mknod {node}")
        in_mount_namespace("backup1", "mkdir", "-p", FILL_MOUNT)
        in_mount_namespace("backup1", "mount", "-t", "ext4", FILL_DEVICE, FILL_MOUNT)
        mounted = True
        yield FILL_MOUNT
    finally:
        with contextlib.suppress(Exception):
            if mounted:
                in_mount_namespace("backup1", "umount", FILL_MOUNT)
        with contextlib.suppress(Exception):
            in_mount_namespace("backup1", "rm", "-f", FILL_DEVICE)
        with contextlib.suppress(Exception):
            in_mount_namespace("backup1", "rmdir", FILL_MOUNT)
        subprocess.run(["losetup", "--detach", loop], check=False, timeout=30)


def test_a_full_filesystem_on_backup1_reaches_the_webhook_and_resolves(
    small_filesystem: str,
) -> None:
    """backup1's new filesystem filled to about 1.5 % available: HostFilesystemFull (critical)
    for that mount point reaches the webhook, and resolves once the fill file is gone."""
    labels = {"instance": "backup1", "mountpoint": small_filesystem, "severity": "critical"}

    def scraped() -> bool:
        query = f'node_filesystem_size_bytes{{instance="backup1", mountpoint="{small_filesystem}"}}'
        result = prometheus(f"/api/v1/query?query={quote(query)}")["result"]
        return bool(result)

    wait_for(f"{small_filesystem} on backup1 scraped (job node)", scraped, timeout=60)
    fill = f"{small_filesystem}/fill"
    # All but 1 MiB of what is available, as one preallocated file (no data written).
    avail = f"$(df --output=avail -B1 {small_filesystem} | tail -n 1)"
    sh("backup1", f"fallocate -l $(( {avail} - 1048576 )) {fill}")

    def repair() -> None:
        sh("backup1", f"rm -f {fill}")

    fault = Fault("HostFilesystemFull", "critical", repair, labels=labels)
    try:
        fired = fire_and_resolve([fault])
    finally:
        with contextlib.suppress(Exception):
            fault.end()
    assert "HostFilesystemFull" in fired

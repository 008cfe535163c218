"""Shared by the end-to-end tests: PLAY RECAP parsing, libpq connection strings, lab commands,
waiting for a condition."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from psycopg.conninfo import make_conninfo

import release
from layout import inventory_groups
from pgstack_lab.machine import machine_processes
from pgstack_lab.spec import load_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
# The lab the tests run against: inventory/lab (Debian 13), or another lab of the same deployment
# named by PGSTACK_LAB_INVENTORY (inventory/lab-debian12); pgstack-lab reads the same variable.
LAB_INVENTORY = Path(os.environ.get("PGSTACK_LAB_INVENTORY") or REPO_ROOT / "inventory/lab")
if not LAB_INVENTORY.is_absolute():
    LAB_INVENTORY = REPO_ROOT / LAB_INVENTORY

PORT = 5432
PGBOUNCER_PORT = 6432
DATABASE = "app"

# Login roles of inventory/lab/group_vars/postgres/main.yml -> the lab secret with its password.
ROLE_SECRETS = {
    "app": "postgresql_app",
    "app_migration": "postgresql_app_migration",
    "pgstack_monitoring": "postgresql_monitoring",
}

SSL_QUERY = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"

_RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")


class DbHost(Protocol):
    """The lab's database host as the e2e conftest describes it."""

    name: str
    fqdn: str
    address: str


def lab_machine(host: str) -> str:
    """The machine name of a lab host on this computer (netns pgstack-lab-<machine>,
    machines/<machine>): its inventory name after the lab's machine prefix."""
    return load_spec(LAB_INVENTORY).host(host).machine


def host_release(inventory: Path, host: str) -> dict[str, str]:
    """The release variables (roles/preflight/vars) of a lab host's Debian release, as the lab
    inventory (the ``lab_inventory`` fixture) gives it; pgstack-lab refuses to run a machine of
    another release under that name."""
    return release.facts(load_spec(inventory).host(host).release)


def pg_major(inventory: Path, host: str) -> str:
    """The PostgreSQL major of a lab host."""
    return host_release(inventory, host)["postgresql"]


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """Return {host: {"ok": n, "changed": n, "failed": n, ...}} from the last PLAY RECAP."""
    if "PLAY RECAP" not in output:
        raise AssertionError(f"no PLAY RECAP in ansible-playbook output:\n{output[-3000:]}")
    recap: dict[str, dict[str, int]] = {}
    for line in output.rsplit("PLAY RECAP", 1)[1].splitlines()[1:]:
        match = _RECAP_LINE.match(line.strip())
        if match is None:
            continue
        counts = re.findall(r"(\w+)=(\d+)", match["counts"])
        recap[match["host"]] = {key: int(value) for key, value in counts}
    if not recap:
        raise AssertionError(f"empty PLAY RECAP in ansible-playbook output:\n{output[-3000:]}")
    return recap


def failure_messages(output: str) -> str:
    """The messages of failed tasks in ansible-playbook output, without the rest of the log.

    ansible-core prints each failure as an `[ERROR]: ...` block (up to its `Origin:` line) and the
    failed result's `msg:`; task names and dumped argument specs (which name every variable) are
    left out, so a test can check that the message itself names the offending variable.
    """
    messages: list[str] = []
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("[ERROR]:"):
            block = [line]
            for follow in lines[index + 1 :]:
                if not follow.strip() or follow.startswith("Origin:"):
                    break
                block.append(follow)
            messages.append("\n".join(block))
        elif line.strip().startswith("msg:"):
            messages.append(line.strip())
    return "\n".join(messages)


def conninfo(
    host: DbHost,
    user: str,
    root_cert: Path,
    *,
    by: Literal["fqdn", "address"] = "fqdn",
    sslmode: str = "verify-full",
    dbname: str = DATABASE,
    port: int = PORT,
    application_name: str = "pgstack-e2e",
) -> str:
    """A libpq connection string without the password (pass that separately, never in argv).

    by="fqdn" names the server by its FQDN (checked against the certificate) and connects to its
    address without DNS; by="address" names and reaches it by IP (checked against the IP SANs).
    """
    params: dict[str, str | int] = {
        "port": port,
        "dbname": dbname,
        "user": user,
        "sslmode": sslmode,
        "sslrootcert": str(root_cert),
        "connect_timeout": 10,
        "application_name": application_name,
    }
    if by == "fqdn":
        params.update(host=host.fqdn, hostaddr=host.address)
    else:
        params.update(host=host.address)
    return make_conninfo("", **params)


# --- the application host

APP_HOST = "app1"


def env_file(app: str) -> str:
    """The env file app_env renders on the application host for one application."""
    return f"/etc/pgstack/{app}.env"


def as_app(app: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run a shell command on app1 as the application's OS user with its env file loaded."""
    script = f"set -a; . {env_file(app)}; set +a; {command}"
    return lab_ssh(APP_HOST, f"sudo -u {app} sh -c {shlex.quote(script)}")


def changed_tasks(output: str) -> list[str]:
    """Each change a playbook run's output reports: "TASK [...]: changed: [host]"."""
    found, task = [], ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line.split("]")[0] + "]"
        elif line.startswith("changed: ["):
            found.append(f"{task}: {line.strip()}")
    return found


def assert_nothing_changed(result: subprocess.CompletedProcess[str]) -> None:
    """The playbook run succeeded and reported changed=0 on every host; a failure names the tasks
    that changed something."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert_recap_unchanged(result.stdout, output)


def assert_recap_unchanged(stdout: str, output: str | None = None) -> None:
    """A playbook run's output (stdout) reports changed=0 on every host; a failure names the tasks
    that changed something, with the end of output (default: stdout)."""
    recap = parse_recap(stdout)
    changed = {host: counts["changed"] for host, counts in recap.items() if counts["changed"]}
    tasks = "\n".join(changed_tasks(stdout))
    assert not changed, f"changed hosts {changed}:\n{tasks}\n{(output or stdout)[-3000:]}"


def assert_failed_before_any_change(
    failure: str | None,
    recap: Mapping[str, Mapping[str, int]],
    output: str,
    *names: str,
    hidden: Iterable[str] = (),
) -> None:
    """Bad input was refused before anything changed: the one check of every malformed-input case.

    failure holds the messages of the failed tasks (None: the input was accepted) and must name
    every one of names (the offending variable); recap ({host: counts}, from PLAY RECAP or the json
    callback's stats) must show changed=0 on every host; no hidden value (a password) may appear
    anywhere in output.
    """
    assert failure is not None, f"the input was accepted:\n{output[-3000:]}"
    for name in names:
        assert name in failure, f"{name} not in the failure:\n{failure}"
    assert recap, f"no host ran:\n{output[-3000:]}"
    changed = {host: counts["changed"] for host, counts in recap.items() if counts.get("changed")}
    assert not changed, f"changed hosts {changed}:\n{output[-3000:]}"
    leaked = [value for value in hidden if value and value in output]
    assert not leaked, "a secret appears in the output"


def make_foreign_ca(directory: Path) -> Path:
    """A freshly made self-signed CA certificate that signed nothing the lab uses."""
    cert = directory / "foreign-ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=pgstack e2e foreign CA", "-keyout", str(directory / "foreign-ca.key"),
         "-out", str(cert)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return cert


def lab_ssh(
    host: str,
    command: str,
    *,
    stdin: str | None = None,
    timeout: float = 120,
    errors: str = "strict",
) -> subprocess.CompletedProcess[str]:
    """Run a shell command as root on a lab host (pgstack-lab ssh); secrets go through stdin.

    errors="replace" reads output that may hold binary bytes (a TLS server's answer).
    """
    tool = Path(sys.executable).parent / "pgstack-lab"
    return subprocess.run(
        [str(tool), "ssh", host, command],
        input=stdin,
        capture_output=True,
        text=True,
        errors=errors,
        timeout=timeout,
        check=False,
    )


def pgstack_lab(*args: str) -> None:
    """pgstack-lab with the lab's inventory (the tool beside this interpreter): fail the test
    with its output when it fails."""
    tool = Path(sys.executable).parent / "pgstack-lab"
    proc = subprocess.run(
        [str(tool), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, f"pgstack-lab {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"


def sh(host: str, command: str, *, timeout: float = 300) -> str:
    """Run a command as root on a lab host; fail the test with its output when it fails."""
    proc = lab_ssh(host, command, timeout=timeout)
    assert proc.returncode == 0, f"{host}: {command}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def netns_iptables(host: str, *args: str) -> None:
    """iptables inside a lab host's network namespace, run from the controller (root).

    Lab hosts lack CAP_NET_ADMIN: rules go into the namespace pgstack-lab names
    pgstack-lab-<machine> (lab_machine), and only affect that host.
    """
    subprocess.run(
        ["ip", "netns", "exec", f"pgstack-lab-{lab_machine(host)}", "iptables", "-w", *args],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip


def in_mount_namespace(host: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """A command run from the controller (root) in a lab host's mount namespace, with the
    controller's privileges: what the host cannot do itself, such as mounting a loop device (lab
    hosts have no /dev/loop*). Only the mount namespace is entered: paths are the host's, and the
    command's effects are visible only there."""
    root = Path(os.environ.get("PGSTACK_LAB_ROOT", "/var/lib/pgstack-lab"))
    nspawn = json.loads((root / "machines" / lab_machine(host) / "machine.json").read_text())["pid"]
    init = machine_processes(nspawn)[0]
    return subprocess.run(
        ["nsenter", f"--target={init}", "--mount", "--", *argv],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def psql_db1(query: str, dbname: str = "postgres") -> str:
    """One query as postgres over db1's local socket, unaligned tuples only."""
    quoted = query.replace("'", "'\\''")
    return sh("db1", f"sudo -u postgres psql -XAtq -d {dbname} -c '{quoted}'").strip()


def switch_wal() -> str:
    """Write a WAL record on db1, switch WAL, return the name of the segment just completed.

    Without a record since the last switch, pg_switch_wal() is a no-op (txid_current() alone does
    not write one): a non-transactional logical message does, whatever the wal_level.
    """
    return psql_db1(
        "SELECT pg_walfile_name(pg_switch_wal()) "
        "FROM (SELECT pg_logical_emit_message(false, 'pgstack-e2e', 'switch')) AS m"
    )


T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout: float = 180, every: float = 5) -> T:
    """Call check until it returns something truthy, and return that; fail naming what."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def run_psql(dsn: str, password: str, query: str) -> subprocess.CompletedProcess[str]:
    """Run one query with the psql binary; the password goes through the environment, not argv."""
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run(
        ["psql", "--no-psqlrc", "--tuples-only", "--no-align", "--dbname", dsn, "--command", query],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def served_certificate_serial(address: str, port: int, *, starttls: str | None = None) -> str:
    """The serial of the certificate a TLS server presents right now (`serial=...`).

    PostgreSQL and PgBouncer start with an SSLRequest packet: pass starttls="postgres".
    """
    argv = ["openssl", "s_client", "-connect", f"{address}:{port}"]
    if starttls is not None:
        argv += ["-starttls", starttls]
    # Bytes: a server may answer the handshake with binary data (pgBackRest's TLS server does).
    handshake = subprocess.run(argv, input=b"", capture_output=True, timeout=30, check=False)
    serial = subprocess.run(
        ["openssl", "x509", "-noout", "-serial"],
        input=handshake.stdout.decode("utf-8", errors="replace"),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return serial.stdout.strip()


def installed_certificate_serial(host: str, path: str = "/etc/pgstack/tls/server.crt") -> str:
    """The serial of a certificate file on a lab host (`serial=...`)."""
    result = lab_ssh(host, f"openssl x509 -noout -serial -in {path}")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- the monitoring host

# The monitoring host, the first of the lab inventory's group monitoring: mon1 in the lab, the
# witness in the HA lab.
MON = inventory_groups(LAB_INVENTORY / "hosts.yml")["monitoring"][0]


# The monitoring plane's users (inventory/lab/group_vars/all/monitoring.yml): Prometheus' on the
# exporters and Alertmanager, the operators' on Alertmanager.
SCRAPE_USER = "prometheus"
OPERATOR_USER = "operator"
MONITORING_SECRETS = {SCRAPE_USER: "monitoring_scrape", OPERATOR_USER: "monitoring_operator"}


def monitoring_password(user: str) -> str:
    """The lab's generated password of a monitoring-plane user (.lab/secrets)."""
    return (REPO_ROOT / ".lab/secrets" / MONITORING_SECRETS[user]).read_text().strip()


def fetch(
    url: str, *, user: str | None = None, password: str | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], str]:
    """A request from mon1 with Python's urllib: (status, headers, body).

    https verifies the lab CA. With user, basic auth with the user's lab password (or password),
    sent through stdin. A request the server does not answer over HTTP (plaintext to a TLS port,
    a failed handshake) gives status 0 and the error as the body.
    """
    program = (
        "import base64, json, ssl, sys, urllib.request, urllib.error\n"
        "url, method, user = sys.argv[1:4]\n"
        "request = urllib.request.Request(url, method=method)\n"
        "if user:\n"
        "    token = base64.b64encode((user + ':' + sys.stdin.read()).encode()).decode()\n"
        "    request.add_header('Authorization', 'Basic ' + token)\n"
        "context = ssl.create_default_context(cafile='/etc/pgstack/tls/ca.crt')\n"
        "try:\n"
        "    r = urllib.request.urlopen(request, timeout=10, context=context)\n"
        "except urllib.error.HTTPError as e:\n"
        "    r = e\n"
        "except (OSError, ValueError, urllib.error.URLError) as e:\n"
        "    print(json.dumps([0, {}, repr(e)]))\n"
        "    sys.exit(0)\n"
        "print(json.dumps([r.status, dict(r.headers), r.read().decode()]))\n"
    )
    secret = None
    if user is not None:
        secret = password if password is not None else monitoring_password(user)
    result = lab_ssh(
        MON,
        f"python3 -c {shlex.quote(program)} {shlex.quote(url)} {method} {shlex.quote(user or '')}",
        stdin=secret,
    )
    assert result.returncode == 0, result.stderr
    status, headers, body = json.loads(result.stdout)
    return int(status), headers, body


def alertmanager(path: str) -> Any:
    """GET an Alertmanager API path on mon1 as the operator; the decoded JSON."""
    status, _, body = fetch(f"https://127.0.0.1:9093{path}", user=OPERATOR_USER)
    assert status == 200, body
    return json.loads(body)


# amtool on mon1 as root: over TLS as the operator, with the client configuration the prometheus
# role writes there.
AMTOOL = (
    "amtool --alertmanager.url=https://127.0.0.1:9093"
    " --http.config.file=/etc/pgstack/monitoring-client.yml"
)


def prometheus(path: str) -> Any:
    status, _, body = fetch(f"http://127.0.0.1:9090{path}")
    assert status == 200, body
    return json.loads(body)["data"]

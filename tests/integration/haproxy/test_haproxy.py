"""roles/haproxy's haproxy.cfg for real: rendered from the role's template and variables by the real
ansible-playbook, accepted by this machine's haproxy (``haproxy -c``, what the role's ``validate:``
runs), then run in front of three stand-in members (haproxy_members.py) on 127.0.0.2 to .4 whose
Patroni REST API the tests make primary or replica, as a client connecting through the three ports
sees it: which member's PgBouncer or PostgreSQL greets it, and whether its session survives.

pg3 presents a certificate for another name (pg1's): its checks never pass, so it never takes a
client, whatever its Patroni says. Each test sets the members' roles it starts from and waits until
HAProxy routes accordingly; none relies on another's end state.

Needs Debian's haproxy (make test-deps installs it); skipped without it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from haproxy_members import Member, free_ports, make_ca, running

from localhost_play import REPO_ROOT, run_plays

ROLE = REPO_ROOT / "roles/haproxy"
MEMBERS = {"pg1": "127.0.0.2", "pg2": "127.0.0.3", "pg3": "127.0.0.4"}
# The role's listen ports by variable, and the members' ports by service.
LISTEN = ("haproxy_primary_port", "haproxy_primary_direct_port", "haproxy_replica_port")
SERVICES = {
    "pgbouncer": "haproxy_pgbouncer_port",
    "postgresql": "haproxy_postgresql_port",
    "patroni": "haproxy_patroni_port",
}
# With the role's defaults (a check every 1 s, down after 2 failures, up after 2 successes), a
# change shows within about 3 s; the margin is for a busy machine.
SETTLE = 15.0
# haproxy_hard_stop_after of the rendered file: shorter than the default, for the reload test.
HARD_STOP_AFTER = "2s"


class Proxy:
    """The running HAProxy, its ports by variable, and the members behind it."""

    def __init__(
        self, ports: dict[str, int], members: dict[str, Member], admin: Path, master: int
    ) -> None:
        self.ports = ports
        self.members = members
        self.admin = admin
        self.master = master

    def reload(self) -> None:
        """As systemctl reload haproxy: a new worker takes over the ports."""
        os.kill(self.master, signal.SIGUSR2)

    def roles(self, **roles: str) -> None:
        for name, role in roles.items():
            self.members[name].role = role

    def state(self) -> str:
        """HAProxy's view of every server (its stats socket)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.admin))
            sock.sendall(b"show servers state\n")
            return sock.makefile().read()

    def servers_up(self) -> dict[str, bool]:
        """{"<listen>/<server>": up} as HAProxy has it."""
        # A version line, a header, then: be_id be_name srv_id srv_name srv_addr srv_op_state ...
        rows = [line.split() for line in self.state().splitlines()[2:]]
        # srv_op_state 2: running.
        return {f"{row[1]}/{row[3]}": row[5] == "2" for row in rows if row}

    def expected_up(self) -> dict[str, bool]:
        """{"<listen>/<server>": up} as the members' roles and open ports make it: what the role's
        health checks must see. pg3's certificate never verifies."""
        up = {}
        for name, member in self.members.items():
            verified = name != "pg3"
            pgbouncer = verified and member.services["pgbouncer"].open
            postgresql = verified and member.services["postgresql"].open
            up[f"primary/{name}"] = pgbouncer and member.role == "primary"
            up[f"primary_direct/{name}"] = postgresql and member.role == "primary"
            up[f"replica/{name}"] = pgbouncer and member.role == "replica"
            up[f"replica/{name}-primary"] = up[f"primary/{name}"]
        return up


def greeting(port: int) -> str:
    """What greets a new client on the port: "<service> <member>", or "" when HAProxy closes the
    connection (no member up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        try:
            return sock.makefile().readline().strip()
        except (ConnectionResetError, TimeoutError):
            return ""


def settle(proxy: Proxy, expected: dict[str, str]) -> None:
    """Wait until HAProxy has every server up or down as the members' roles make it, then check
    that each listen port (by variable) greets three new clients in a row as expected."""
    deadline = time.monotonic() + SETTLE
    while (seen := proxy.servers_up()) != (wanted := proxy.expected_up()):
        if time.monotonic() > deadline:
            wrong = sorted(server for server in wanted if seen.get(server) != wanted[server])
            pytest.fail(f"after {SETTLE} s, HAProxy has these wrong: {wrong}\n{proxy.state()}")
        time.sleep(0.1)
    greetings = {var: [greeting(proxy.ports[var]) for _ in range(3)] for var in expected}
    assert greetings == {var: [expected[var]] * 3 for var in expected}


@contextlib.contextmanager
def session(port: int, expected: str) -> Iterator[socket.socket]:
    """A client's session through port, greeted as expected, open until the block ends."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    with sock:
        assert sock.makefile().readline().strip() == expected
        yield sock


def wait_closed(sock: socket.socket, within: float) -> float:
    """Seconds until the session's connection is closed from the other side; fails after within."""
    start = time.monotonic()
    sock.settimeout(within)
    try:
        data = sock.recv(100)
    except ConnectionResetError:
        data = b""
    except TimeoutError:
        pytest.fail(f"the session was still open after {within} s")
    assert data == b"", data
    return time.monotonic() - start


def render(tmp: Path, ports: dict[str, int]) -> Path:
    """haproxy.cfg from the role's template and variables, for a localhost in group haproxy and
    the members in group postgres, by the real ansible-playbook."""
    inventory = {
        "all": {
            "children": {
                "haproxy": {"hosts": {"localhost": {
                    "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                }}},
                "postgres": {"hosts": {name: {"ansible_host": address}
                                       for name, address in MEMBERS.items()}},
            }
        }
    }  # fmt: skip
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    variables: dict[str, Any] = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    variables.update(ports)
    # The pki role's directory: the CA the checks verify Patroni with.
    variables["pki_tls_dir"] = str(tmp)
    variables["haproxy_hard_stop_after"] = HARD_STOP_AFTER
    rendered = tmp / "haproxy.cfg"
    play = {
        "name": "Render haproxy.cfg",
        "hosts": "haproxy",
        "gather_facts": False,
        "vars_files": [str(ROLE / "vars/main.yml")],
        "vars": variables,
        "tasks": [
            # As the role's configure.yml: the CA's checksum is written in the file.
            {"name": "Read the CA", "ansible.builtin.stat": {"path": "{{ __haproxy_ca_file }}"},
             "register": "__haproxy_ca_result"},
            {"name": "Render haproxy.cfg",
             "ansible.builtin.template": {"src": str(ROLE / "templates/etc/haproxy/haproxy.cfg.j2"),
                                          "dest": str(rendered), "mode": "0644"}},
        ],
    }  # fmt: skip
    result = run_plays([play], tmp / "render.yml", inventory=tmp / "hosts.yml")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return rendered


def runnable(rendered: Path, admin: Path) -> Path:
    """The rendered file without what needs root and a host of its own (the chroot, user haproxy,
    syslog, the daemon mode), its stats socket at admin."""
    host_only = re.compile(r"^\s+(chroot|user|group|daemon|log /dev/log)\b")
    lines = [line for line in rendered.read_text().splitlines() if not host_only.match(line)]
    text = "\n".join(lines).replace("/run/haproxy/admin.sock", str(admin))
    path = rendered.with_name("haproxy-local.cfg")
    path.write_text(text + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def haproxy() -> str:
    found = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.skip("needs Debian's haproxy (package haproxy; make test-deps installs it)")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, haproxy: str) -> tuple[Path, dict[str, int]]:
    tmp = tmp_path_factory.mktemp("haproxy")
    make_ca(tmp, MEMBERS)
    # pg3 presents pg1's certificate: not the name HAProxy verifies for it.
    for suffix in ("crt", "key"):
        shutil.copy(tmp / f"pg1.{suffix}", tmp / f"pg3.{suffix}")
    ports = dict(zip((*LISTEN, *SERVICES.values()), free_ports(6), strict=True))
    return render(tmp, ports), ports


@pytest.fixture(scope="module")
def proxy(rendered: tuple[Path, dict[str, int]], haproxy: str) -> Iterator[Proxy]:
    config, ports = rendered
    members = {name: Member(name, address, "replica") for name, address in MEMBERS.items()}
    admin = config.with_name("admin.sock")
    member_ports = {service: ports[var] for service, var in SERVICES.items()}
    with running(list(members.values()), member_ports, config.parent):
        log = config.with_name("haproxy.log")
        # Master-worker, as Debian's unit runs it (-Ws): a SIGUSR2 to the master reloads.
        with log.open("w") as output:
            process = subprocess.Popen(
                [haproxy, "-W", "-db", "-f", str(runnable(config, admin))],
                stdout=output, stderr=output,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while not admin.exists():
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "haproxy made no stats socket"
                time.sleep(0.05)
            yield Proxy(ports, members, admin, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_the_rendered_configuration_passes_haproxy_check(
    rendered: tuple[Path, dict[str, int]], haproxy: str
) -> None:
    config, ports = rendered
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    # Servers by inventory name at their ansible_host; the clients' TLS passes through.
    pgbouncer = ports["haproxy_pgbouncer_port"]
    assert f"    server pg2 127.0.0.3:{pgbouncer} check check-sni pg2 verifyhost pg2\n" in text
    assert f"    server pg2-primary 127.0.0.3:{pgbouncer} backup track primary/pg2\n" in text
    assert re.search(r"^\s+(bind|server) .* ssl\b", text, re.MULTILINE) is None


def test_each_port_leads_to_its_service_on_the_member_patroni_names(proxy: Proxy) -> None:
    proxy.roles(pg1="primary", pg2="replica", pg3="replica")
    settle(proxy, {
        "haproxy_primary_port": "pgbouncer pg1",
        "haproxy_primary_direct_port": "postgresql pg1",
        # Never pg3, a replica too, whose certificate does not verify.
        "haproxy_replica_port": "pgbouncer pg2",
    })  # fmt: skip


def test_a_switchover_cuts_the_old_primarys_sessions_and_moves_new_ones(proxy: Proxy) -> None:
    proxy.roles(pg1="primary", pg2="replica")
    settle(proxy, {"haproxy_primary_port": "pgbouncer pg1",
                   "haproxy_primary_direct_port": "postgresql pg1"})  # fmt: skip
    ports = proxy.ports
    with (
        session(ports["haproxy_primary_port"], "pgbouncer pg1") as pooled,
        session(ports["haproxy_primary_direct_port"], "postgresql pg1") as direct,
    ):
        proxy.roles(pg1="replica", pg2="primary")
        # Marked down after two failed checks a second apart: on-marked-down shutdown-sessions.
        assert wait_closed(pooled, within=SETTLE) < SETTLE
        assert wait_closed(direct, within=SETTLE) < SETTLE
    settle(proxy, {
        "haproxy_primary_port": "pgbouncer pg2",
        "haproxy_primary_direct_port": "postgresql pg2",
        "haproxy_replica_port": "pgbouncer pg1",
    })  # fmt: skip


def test_without_a_replica_the_replica_port_leads_to_the_primary_until_one_is_back(
    proxy: Proxy,
) -> None:
    proxy.roles(pg1="primary", pg2="stopped")
    settle(proxy, {"haproxy_replica_port": "pgbouncer pg1"})
    with session(proxy.ports["haproxy_replica_port"], "pgbouncer pg1") as reader:
        proxy.roles(pg2="replica")
        # The replica up after two good checks: on-marked-up shutdown-backup-sessions.
        assert wait_closed(reader, within=SETTLE) < SETTLE
    settle(proxy, {"haproxy_replica_port": "pgbouncer pg2"})


def test_a_member_whose_pgbouncer_refuses_connections_takes_no_pooled_client(
    proxy: Proxy,
) -> None:
    proxy.roles(pg1="primary", pg2="replica")
    settle(proxy, {"haproxy_primary_port": "pgbouncer pg1",
                   "haproxy_replica_port": "pgbouncer pg2"})  # fmt: skip
    closed = []
    try:
        # The replica's PgBouncer down, its Patroni still a replica: the replica port falls back
        # to the primary.
        closed.append(proxy.members["pg2"].services["pgbouncer"])
        closed[-1].close()
        settle(proxy, {"haproxy_replica_port": "pgbouncer pg1"})
        # The primary's too: HAProxy closes the pooled ports' connections; PostgreSQL's port,
        # checked on its own, still leads to the primary.
        closed.append(proxy.members["pg1"].services["pgbouncer"])
        closed[-1].close()
        settle(proxy, {"haproxy_primary_port": "", "haproxy_replica_port": "",
                       "haproxy_primary_direct_port": "postgresql pg1"})  # fmt: skip
    finally:
        for pgbouncer in closed:
            pgbouncer.reopen()
    settle(proxy, {"haproxy_primary_port": "pgbouncer pg1",
                   "haproxy_replica_port": "pgbouncer pg2"})  # fmt: skip


def test_a_reload_ends_the_old_workers_sessions_after_hard_stop_after(proxy: Proxy) -> None:
    proxy.roles(pg1="primary", pg2="replica")
    settle(proxy, {"haproxy_primary_port": "pgbouncer pg1"})
    with session(proxy.ports["haproxy_primary_port"], "pgbouncer pg1") as pooled:
        proxy.reload()
        # The old worker checks no member any more: its sessions end haproxy_hard_stop_after
        # after the reload, and the client reconnects to the new worker.
        stop_after = float(HARD_STOP_AFTER.removesuffix("s"))
        assert stop_after - 0.5 < wait_closed(pooled, within=stop_after + 5)
    settle(proxy, {"haproxy_primary_port": "pgbouncer pg1"})

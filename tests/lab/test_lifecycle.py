"""The lab itself, for real: it comes up and goes down cleanly twice in a row, recovers from
what a killed run leaves behind, and down leaves nothing of its own on the machine.

Needs root and brings the lab inventory's hosts up and down: run it while no lab is in use
(`make test` runs it before the end-to-end tests).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgstack_lab.cgroup import GROUP, systemd_hierarchies
from pgstack_lab.machine import machine_processes, process_start_time
from pgstack_lab.network import BRIDGE, NETNS_PREFIX, RULE_COMMENT, VETH_PREFIX

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_ROOT = Path(os.environ.get("PGSTACK_LAB_ROOT", "/var/lib/pgstack-lab"))
HOSTS = ("db1", "backup1", "mon1", "app1")


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgstack_lab", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def ok(*args: str) -> str:
    proc = lab(*args)
    assert proc.returncode == 0, f"pgstack-lab {' '.join(args)} failed:\n{proc.stderr}"
    return proc.stdout


def states() -> dict[str, str]:
    lines = ok("status").splitlines()[1:]
    return {line.split()[0]: line.split()[3] for line in lines}


def leftovers() -> list[str]:
    """Everything of the lab's still on the machine, by the names only the lab uses."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    found += [
        f"netns {line.split()[0]}"
        for line in netns.stdout.splitlines()
        if line.startswith(NETNS_PREFIX)
    ]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    for line in links.stdout.splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if name.startswith(VETH_PREFIX) or name == BRIDGE:
            found.append(f"link {name}")
    for table in ("nat", "filter"):
        rules = subprocess.run(
            ["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True, check=True
        )
        found += [f"rule {r}" for r in rules.stdout.splitlines() if RULE_COMMENT in r]
    machines = LAB_ROOT / "machines"
    if machines.is_dir():
        found += [f"rootfs {p}" for p in machines.iterdir()]
    found += [f"cgroup {p}" for p in systemd_hierarchies() if (p / GROUP).exists()]
    return found


def init_cgroups(host: str) -> list[str]:
    """The cgroups (every hierarchy) of the init of a running host, seen from the lab machine."""
    nspawn = json.loads((LAB_ROOT / f"machines/{host}/machine.json").read_text())["pid"]
    init = machine_processes(nspawn)[0]
    lines = Path(f"/proc/{init}/cgroup").read_text().splitlines()
    return [line.split(":", 2)[2] for line in lines if "name=systemd" in line or line[:3] == "0::"]


def ssh(host: str, command: str) -> subprocess.CompletedProcess[str]:
    return lab("ssh", host, command)


def probe(host: str, command: str) -> subprocess.Popen[str]:
    """command started on host, not waited for: several hosts run theirs at the same time."""
    argv = [sys.executable, "-m", "pgstack_lab", "ssh", host, command]
    return subprocess.Popen(
        argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture(scope="module", autouse=True)
def clean_machine() -> None:
    ok("down", "--all")
    assert leftovers() == []


def test_up_and_down_twice_in_a_row() -> None:
    sysctls = [Path("/proc/sys/net/ipv4/ip_forward"),
               Path("/proc/sys/fs/inotify/max_user_instances")]  # fmt: skip
    before = [p.read_text() for p in sysctls]
    for _ in range(2):
        ok("up")
        assert states() == dict.fromkeys(HOSTS, "running")
        for host in HOSTS:
            booted = ssh(host, "systemctl is-system-running; hostname -f")
            assert booted.stdout.split() == ["running", f"{host}.pgstack.internal"], booted.stderr
        # hosts reach each other by name, and the Debian mirror through the NAT
        assert ssh("db1", "getent hosts backup1.pgstack.internal").returncode == 0
        # each host has a cgroup tree of its own, so the same unit on every host at once runs
        # and stops cleanly everywhere
        for host in HOSTS:
            own = f"/{GROUP}/{host}/payload/"
            assert all(path.startswith(own) for path in init_cgroups(host)), init_cgroups(host)
        unit = "--unit=pgstack-lab-probe -p ExecStopPost=/bin/true"
        probes = {host: probe(host, f"systemd-run --quiet --wait {unit} sleep 1") for host in HOSTS}
        outcomes = {host: (run.communicate(timeout=60)[0], run.returncode)
                    for host, run in probes.items()}  # fmt: skip
        assert [out for out, rc in outcomes.values() if rc != 0] == []
        ok("up")  # idempotent: reuses the running machines
        assert states() == dict.fromkeys(HOSTS, "running")
        ok("down")
        assert states() == dict.fromkeys(HOSTS, "stopped")
        assert leftovers() == []
        ok("down")  # safe to run twice
    assert [p.read_text() for p in sysctls] == before  # raised while the lab runs, then restored


def test_lab_hosts_reach_the_debian_mirror() -> None:
    ok("up", "db1")
    update = ssh("db1", "apt-get update -q")
    assert update.returncode == 0, update.stdout + update.stderr
    ok("down", "--all")


def test_up_recovers_from_a_killed_run() -> None:
    ok("up")
    # A machine dies (its systemd-nspawn killed), and a stale namespace of a host that never
    # came up is lying around, as after a run killed halfway.
    state = json.loads((LAB_ROOT / "machines/backup1/machine.json").read_text())
    inside = {pid: process_start_time(pid) for pid in machine_processes(state["pid"])}
    os.kill(state["pid"], signal.SIGKILL)  # the machine itself goes on running, orphaned
    deadline = time.monotonic() + 10
    while states()["backup1"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert states()["backup1"] == "stale"
    ok("down", "mon1")
    subprocess.run(["ip", "netns", "add", f"{NETNS_PREFIX}mon1"], check=True)
    assert states()["mon1"] == "stale"

    ok("up")
    assert states() == dict.fromkeys(HOSTS, "running")
    assert ssh("backup1", "true").returncode == 0
    # the orphaned machine was killed before its rootfs was made again
    assert [pid for pid, start in inside.items() if process_start_time(pid) == start] == []
    ok("down", "--all")
    assert leftovers() == []


def test_down_kill_takes_a_host_away_at_once_with_everything_inside() -> None:
    ok("up", "db1")
    nspawn = json.loads((LAB_ROOT / "machines/db1/machine.json").read_text())["pid"]
    inside = {pid: process_start_time(pid) for pid in machine_processes(nspawn)}
    assert len(inside) > 1, f"db1 runs no more than its init: {inside}"
    ok("down", "--kill", "db1")
    assert states()["db1"] == "stopped"
    # Gone or a zombie (no start time): nothing of db1 runs any more.
    assert [pid for pid, start in inside.items() if process_start_time(pid) == start] == []
    ok("down", "--all")
    assert leftovers() == []

"""The lab as a whole: up, down and status over the hosts an inventory names."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import logging
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pgstack_lab.cgroup import machine_cgroups
from pgstack_lab.errors import BootError, LabError, PreconditionError
from pgstack_lab.image import Images
from pgstack_lab.machine import Machine
from pgstack_lab.network import Network, netns_name, veth_name
from pgstack_lab.spec import HostSpec, LabSpec
from pgstack_lab.system import Runner, generate_ed25519_key

log = logging.getLogger(__name__)

BOOT_TIMEOUT = 120.0
# Every booted systemd takes inotify instances of this machine's root user; Debian's default of
# 128 runs out at about six lab hosts ("Too many open files" at boot). Raised while a lab exists.
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_INSTANCES_MIN = 1024
# Debian packages the lab needs on the machine that runs it, by the command each provides.
REQUIRED_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "iptables": "iptables",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    release: str  # what the machine was built from; the inventory's, in brackets, when not built
    state: str  # running | stopped | stale
    pid: int | None


def raise_sysctl(path: Path, minimum: int) -> int:
    """Raise a numeric kernel setting to at least minimum; return the value it had."""
    previous = int(path.read_text().split()[0])
    if previous < minimum:
        log.info("raising %s from %d to %d", path, previous, minimum)
        path.write_text(f"{minimum}\n")
    return previous


class Lab:
    """Machine-wide state lives under ``root`` (images, machines, shared apt archives); the
    controller's side (SSH key, known_hosts) lives in the repository's ``.lab`` directory."""

    def __init__(self, root: Path, lab_dir: Path, runner: Runner) -> None:
        self.root = root
        self.lab_dir = lab_dir
        self.runner = runner
        self.images = Images(root / "images", runner)
        self.network = Network(runner)
        self.machines_root = root / "machines"
        self.ssh_dir = lab_dir / "ssh"
        self.key_file = self.ssh_dir / "id_ed25519"
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.network_state = root / "network.json"

    # --- helpers ---------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def apt_archive(self, release: str) -> Path:
        return self.root / "apt" / release

    def machine(self, name: str) -> Machine:
        return Machine(self.machines_root, name)

    def known_machines(self) -> list[Machine]:
        """Machines with a directory or a cgroup: what `down --all` stops and removes."""
        names = machine_cgroups()
        if self.machines_root.is_dir():
            names |= {p.name for p in self.machines_root.iterdir() if p.is_dir()}
        return [self.machine(name) for name in sorted(names)]

    def ssh_base(self) -> list[str]:
        return [
            "ssh",
            "-i",
            str(self.key_file),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "LogLevel=ERROR",
        ]

    def ensure_prerequisites(self) -> None:
        missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if not shutil.which(tool)})
        if not missing:
            return
        log.info("installing %s", " ".join(missing))
        self.runner.run(["apt-get", "update", "-qq"])
        self.runner.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing])

    def ensure_key(self) -> str:
        self.lab_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.lab_dir.chmod(0o700)
        self.ssh_dir.mkdir(mode=0o700, exist_ok=True)
        if not self.key_file.exists():
            generate_ed25519_key(self.runner, self.key_file, "pgstack-lab controller")
        return self.key_file.with_suffix(".pub").read_text()

    def write_known_hosts(self) -> None:
        """Pin the host key of every lab machine on this machine, whatever inventory made it."""
        lines = []
        for machine in self.known_machines():
            state, key = machine.state(), machine.host_public_key()
            if state is not None and key:
                lines.append(f"{state.address},{state.name},{state.fqdn} ssh-ed25519 {key}")
        self.ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Replaced in one step: ssh runs of other lab users (molecule scenarios, the end-to-end
        # tests) read it while a machine comes up.
        partial = self.known_hosts.with_name(self.known_hosts.name + ".new")
        partial.write_text("".join(line + "\n" for line in lines))
        partial.replace(self.known_hosts)

    # --- status ----------------------------------------------------------------------------
    def status(self, spec: LabSpec) -> list[HostStatus]:
        result = []
        for host in spec.hosts:
            machine = self.machine(host.machine)
            state = machine.state()
            if machine.running():
                label = "running"
            elif machine.dir.exists() or netns_name(host) in self.network.namespaces():
                label = "stale"
            else:
                label = "stopped"
            built = machine.built_release()
            result.append(
                HostStatus(
                    host.name,
                    str(host.address),
                    built or f"({host.release})",
                    label,
                    state.pid if state and label == "running" else None,
                )
            )
        return result

    # --- up --------------------------------------------------------------------------------
    def up(self, spec: LabSpec, hosts: tuple[HostSpec, ...]) -> list[HostStatus]:
        self.ensure_prerequisites()
        authorized_key = self.ensure_key()
        with self.locked():
            self._check_foreign_lab(spec)
            previous_forward = self.network.ensure_gateway(spec)
            previous_inotify = raise_sysctl(INOTIFY_INSTANCES, INOTIFY_INSTANCES_MIN)
            if not self.network_state.exists():
                recorded = {
                    "network": str(spec.network),
                    "ip_forward_was_on": previous_forward,
                    "inotify_instances_was": previous_inotify,
                }
                self.network_state.write_text(json.dumps(recorded) + "\n")
            started: list[tuple[HostSpec, Machine]] = []
            for host in hosts:
                machine = self.machine(host.machine)
                if machine.running():
                    built = machine.built_release()
                    if built != host.release:
                        raise PreconditionError(
                            f"{host.name} runs Debian {built or 'of an unknown release'} but the"
                            f" inventory asks for {host.release}: take it down first"
                            f" (pgstack-lab down {host.name}), then bring it up again"
                        )
                    log.info("%s is running: reusing it", host.name)
                    machine.write_hosts(spec)
                    machine.harvest_packages(self.apt_archive(host.release))
                    continue
                self._clean_host(host, machine)
                image = self.images.ensure(host.release)
                log.info("making %s (%s, %s)", host.name, host.address, host.release)
                machine.create_rootfs(image, host, spec, authorized_key, self.runner)
                seeded = machine.seed_packages(self.apt_archive(host.release))
                log.debug("%s: %d cached packages", host.name, seeded)
                self.network.attach(host, spec)
                machine.start(host, spec.domain)
                started.append((host, machine))
            self.write_known_hosts()
            for host, machine in started:
                state = machine.wait_booted(host, self.ssh_base(), BOOT_TIMEOUT)
                log.info("%s booted (%s)", host.name, state)
        return self.status(spec)

    def _check_foreign_lab(self, spec: LabSpec) -> None:
        try:
            recorded = json.loads(self.network_state.read_text())["network"]
        except (OSError, ValueError, KeyError):
            return
        if recorded != str(spec.network) and any(m.running() for m in self.known_machines()):
            raise PreconditionError(
                f"a lab on {recorded} is running; this inventory uses {spec.network}: "
                "run `pgstack-lab down --all` first"
            )

    def _clean_host(self, host: HostSpec, machine: Machine, *, kill: bool = False) -> None:
        """Remove what a dead or killed run left for this host: netns, veth, rootfs copy."""
        state = machine.state()
        if machine.dir.exists():
            log.info("%s: removing machine directory", host.name)
        machine.stop(kill=kill)
        machine.harvest_packages(self.apt_archive(host.release))
        self.network.detach(ns=netns_name(host), veth=veth_name(host))
        if state is not None and state.veth != veth_name(host):
            self.network.detach(ns=state.netns, veth=state.veth)
        machine.remove()

    # --- down ------------------------------------------------------------------------------
    def down(
        self, spec: LabSpec | None, hosts: tuple[HostSpec, ...] | None, *, kill: bool = False
    ) -> None:
        """Stop and remove the named hosts (all known ones when hosts is None); when no lab
        machine is left, remove the bridge, NAT rules and every leftover namespace and veth.
        kill: SIGKILL instead of a poweroff, as a host that lost its power."""
        failures: list[str] = []
        with self.locked():
            if hosts is None:
                machines = self.known_machines()
                states = {machine.name: machine.state() for machine in machines}
                stopped = self._stop_all(machines, kill=kill, failures=failures)
                for machine in stopped:
                    try:
                        state = states[machine.name]
                        if state is not None:
                            machine.harvest_packages(self.apt_archive(state.release))
                            self.network.detach(ns=state.netns, veth=state.veth)
                        machine.remove()
                    except LabError as exc:  # the others still go down
                        failures.append(str(exc))
            else:
                named = {host.name: self.machine(host.machine) for host in hosts}
                stopped = self._stop_all(list(named.values()), kill=kill, failures=failures)
                for host in hosts:
                    if named[host.name] not in stopped:
                        continue
                    try:
                        self._clean_host(host, named[host.name], kill=kill)
                    except LabError as exc:
                        failures.append(str(exc))
            if not self.known_machines():
                self._remove_shared(spec)
            self.write_known_hosts()
        if failures:
            raise BootError("; ".join(failures))

    @staticmethod
    def _stop_all(machines: Sequence[Machine], *, kill: bool, failures: list[str]) -> list[Machine]:
        """Stop the machines at the same time (each poweroff waits for its own machine only);
        returns those that stopped and adds a line to failures for each that did not."""
        if not machines:
            return []
        with ThreadPoolExecutor(max_workers=len(machines)) as pool:
            futures = [(machine, pool.submit(machine.stop, kill=kill)) for machine in machines]
        stopped: list[Machine] = []
        for machine, future in futures:
            try:
                future.result()
            except LabError as exc:
                failures.append(str(exc))
            else:
                stopped.append(machine)
        return stopped

    def _remove_shared(self, spec: LabSpec | None) -> None:
        for ns in self.network.namespaces():
            self.network.detach(ns=ns)
        for veth in self.network.veths():
            self.network.detach(veth=veth)
        try:
            recorded = json.loads(self.network_state.read_text())
        except (OSError, ValueError):
            recorded = {}
        networks = {str(spec.network)} if spec is not None else set()
        if "network" in recorded:
            networks.add(recorded["network"])
        for net in sorted(networks):
            self.network.remove_gateway(
                ipaddress.IPv4Network(net), recorded.get("ip_forward_was_on")
            )
        if isinstance(recorded.get("inotify_instances_was"), int):
            INOTIFY_INSTANCES.write_text(f"{recorded['inotify_instances_was']}\n")
        self.network_state.unlink(missing_ok=True)

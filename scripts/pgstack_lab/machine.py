"""One lab host: a copy of the release image booted with systemd-nspawn in its own netns."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pgstack_lab.cgroup import MachineCgroup
from pgstack_lab.errors import BootError
from pgstack_lab.network import netns_name, veth_name
from pgstack_lab.spec import HostSpec, LabSpec
from pgstack_lab.system import Runner, generate_ed25519_key

log = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class MachineState:
    """What machine.json records once a machine has been started."""

    name: str
    fqdn: str
    address: str
    release: str
    pid: int
    pid_start: int
    netns: str
    veth: str


def _link_debs(source: Path, target: Path) -> int:
    if not source.is_dir():
        return 0
    target.mkdir(parents=True, exist_ok=True)
    linked = 0
    for deb in source.glob("*.deb"):
        dest = target / deb.name
        if dest.exists():
            continue
        try:
            os.link(deb, dest)
        except OSError:
            shutil.copy2(deb, dest)
        linked += 1
    return linked


def _stat_fields(process: Path) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which is in parentheses and may
    itself hold spaces): state first, then the parent's PID; None when the process is gone."""
    try:
        stat = (process / "stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of a live process (clock ticks since boot), None when it is gone
    or a zombie. A (pid, start time) pair names one process for good, whatever PIDs are reused."""
    fields = _stat_fields(Path(f"/proc/{pid}"))
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def processes_rooted_in(rootfs: Path, proc: Path = Path("/proc")) -> list[int]:
    """PIDs whose root directory is rootfs or below it (the processes of a machine)."""
    target = str(rootfs.resolve())
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            root = os.readlink(entry / "root")
        except OSError:
            continue  # exited meanwhile, or a kernel thread
        if root == target or root.startswith(target + "/"):
            found.append(int(entry.name))
    return sorted(found)


def machine_processes(nspawn_pid: int, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of the machine systemd-nspawn nspawn_pid runs: its child in a PID namespace of its
    own (the machine's init) first, then every other process of that namespace. Their root links
    do not name the rootfs (each machine has its own mount namespace), their namespace does."""
    try:
        host = os.readlink(proc / "self/ns/pid")
    except OSError:
        return []
    parents: dict[int, int] = {}
    namespaces: dict[int, str] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry)
        try:
            namespace = os.readlink(entry / "ns/pid")
        except OSError:
            continue  # exited meanwhile, or a kernel thread
        if fields is None:
            continue
        namespaces[int(entry.name)] = namespace
        parents[int(entry.name)] = int(fields[1])
    inits = [
        pid
        for pid, parent in parents.items()
        if parent == nspawn_pid and namespaces.get(pid, host) != host
    ]
    if not inits:
        return []
    init = inits[0]
    rest = sorted(pid for pid, ns in namespaces.items() if ns == namespaces[init] and pid != init)
    return [init, *rest]


def _alive(state: MachineState) -> bool:
    return process_start_time(state.pid) == state.pid_start


def _wait_until(done: Callable[[], bool], timeout: float) -> bool:
    """Poll done every 0.2 s until it holds (True) or timeout seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.2)
    return False


class Machine:
    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.dir = root / name
        self.rootfs = self.dir / "rootfs"
        self.state_file = self.dir / "machine.json"
        self.console_log = self.dir / "console.log"
        self.cgroup = MachineCgroup(name)

    def state(self) -> MachineState | None:
        try:
            return MachineState(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def running(self) -> bool:
        state = self.state()
        return state is not None and _alive(state)

    def built_release(self) -> str | None:
        """The Debian codename the machine's root filesystem was built from (its os-release), None
        when it has none."""
        try:
            text = (self.rootfs / "etc/os-release").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key == "VERSION_CODENAME":
                return value.strip().strip('"') or None
        return None

    def host_public_key(self) -> str | None:
        try:
            return (self.rootfs / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split(" ")[1]
        except (OSError, IndexError):
            return None

    def write_hosts(self, spec: LabSpec) -> None:
        """Rewrite a running machine's /etc/hosts for the inventory's hosts (some may be new)."""
        write_hosts_file(self.rootfs, spec)

    # --- making ----------------------------------------------------------------------------
    def create_rootfs(
        self, image: Path, host: HostSpec, spec: LabSpec, authorized_key: str, runner: Runner
    ) -> None:
        if self.dir.exists():
            self._remove_dir()
        self.dir.mkdir(parents=True)
        tmp = self.dir / "rootfs.tmp"
        runner.run(["cp", "-a", "--reflink=auto", str(image), str(tmp)])
        (tmp / "etc/hostname").write_text(host.name + "\n")
        write_hosts_file(tmp, spec)
        ssh_dir = tmp / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(authorized_key.strip() + "\n")
        (ssh_dir / "authorized_keys").chmod(0o600)
        generate_ed25519_key(runner, tmp / "etc/ssh/ssh_host_ed25519_key", f"root@{host.name}")
        (tmp / "etc/ssh/sshd_config.d/pgstack-lab.conf").write_text(
            "# pgstack lab host: key login only, one host key made for this machine\n"
            "HostKey /etc/ssh/ssh_host_ed25519_key\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
        )
        tmp.rename(self.rootfs)

    def seed_packages(self, shared: Path) -> int:
        """Hard-link the shared .deb archive into this machine's apt cache; returns the count.

        Each host keeps its own /var/cache/apt/archives (apt locks that directory, so a shared
        bind mount would make parallel installs on several hosts fail), but starts with every
        package a lab host has downloaded before: apt verifies and reuses them.
        """
        return _link_debs(shared, self.rootfs / "var/cache/apt/archives")

    def harvest_packages(self, shared: Path) -> int:
        """Hard-link packages this machine downloaded into the shared archive; returns the count."""
        return _link_debs(self.rootfs / "var/cache/apt/archives", shared)

    def start(self, host: HostSpec, domain: str) -> MachineState:
        argv = [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--boot",
            f"--directory={self.rootfs}",
            f"--machine={host.machine}",
            f"--hostname={host.name}",
            f"--network-namespace-path=/run/netns/{netns_name(host)}",
            "--link-journal=no",
            "--resolv-conf=copy-host",
            "--timezone=copy",
            "--console=read-only",
        ]
        self.cgroup.create()
        try:
            with self.console_log.open("ab") as console:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=self.cgroup.join,  # noqa: PLW1509 (only writes, between fork and exec)
                )
        except subprocess.SubprocessError as exc:
            message = f"{host.name}: could not start systemd-nspawn in its cgroup: {exc}"
            raise BootError(message) from exc
        started = process_start_time(proc.pid)
        if started is None:
            raise BootError(f"{host.name}: systemd-nspawn exited at once; see {self.console_log}")
        state = MachineState(
            name=host.name,
            fqdn=host.fqdn(domain),
            address=str(host.address),
            release=host.release,
            pid=proc.pid,
            pid_start=started,
            netns=netns_name(host),
            veth=veth_name(host),
        )
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
        tmp.rename(self.state_file)
        return state

    def wait_booted(self, host: HostSpec, ssh_base: list[str], timeout: float) -> str:
        """Wait until systemd inside reports running (or degraded); return that state."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.running():
                tail = self._console_tail()
                raise BootError(f"{host.name}: systemd-nspawn exited during boot; console:\n{tail}")
            try:
                proc = subprocess.run(
                    [
                        *ssh_base,
                        "-o",
                        "ConnectTimeout=2",
                        f"root@{host.address}",
                        "systemctl",
                        "is-system-running",
                        "--wait",
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                    stdin=subprocess.DEVNULL,
                    timeout=max(1.0, deadline - time.monotonic()),
                )
            except subprocess.TimeoutExpired:
                break
            state = proc.stdout.strip()
            if state in ("running", "degraded"):
                return state
            errors = proc.stderr.strip().splitlines()
            last = state or (errors[-1] if errors else "no answer")
            time.sleep(1)
        raise BootError(
            f"{host.name}: not reachable over SSH within {timeout:.0f} s "
            f"(last answer: {last}); console log: {self.console_log}"
        )

    def _console_tail(self, lines: int = 20) -> str:
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- unmaking --------------------------------------------------------------------------
    def stop(self, *, kill: bool = False) -> None:
        """Stop the machine by its recorded PID: poweroff first, SIGKILL if it hangs; with kill,
        SIGKILL at once (a host losing its power: nothing inside shuts down)."""
        state = self.state()
        if state is None or not _alive(state):
            self._kill_orphans()
            return
        if not kill:
            log.info("stopping %s (pid %d)", self.name, state.pid)
            os.kill(state.pid, signal.SIGTERM)  # nspawn forwards it as an orderly poweroff
            if self._wait_gone(state, STOP_TIMEOUT):
                return
            log.warning(
                "%s did not power off in %.0f s: killing pid %d", self.name, STOP_TIMEOUT, state.pid
            )
        else:
            log.info("killing %s (pid %d)", self.name, state.pid)
        # A killed systemd-nspawn leaves its machine running: kill the machine's init first (the
        # kernel then kills the rest of its PID namespace), then nspawn.
        inside = [(pid, process_start_time(pid)) for pid in machine_processes(state.pid)]
        for pid, _ in inside:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.kill(state.pid, signal.SIGKILL)
        if not _wait_until(
            lambda: all(start is None or process_start_time(pid) != start for pid, start in inside),
            10.0,
        ):
            raise BootError(f"{self.name}: processes of the machine survived SIGKILL")
        if not self._wait_gone(state, 10.0):
            raise BootError(f"{self.name}: systemd-nspawn pid {state.pid} survived SIGKILL")

    def _kill_orphans(self) -> None:
        """A systemd-nspawn killed from outside leaves its machine running: kill what of the
        machine its cgroups still hold."""
        if not (orphans := self.cgroup.pids()):
            return
        log.warning(
            "%s: systemd-nspawn is gone but %d processes of the machine run: killing them",
            self.name,
            len(orphans),
        )
        self.cgroup.kill()
        if not _wait_until(lambda: not self.cgroup.pids(), 10.0):
            raise BootError(f"{self.name}: processes of the machine survived SIGKILL")

    @staticmethod
    def _wait_gone(state: MachineState, timeout: float) -> bool:
        return _wait_until(lambda: not _alive(state), timeout)

    def remove(self) -> None:
        if self.running():
            raise BootError(f"{self.name}: refusing to delete the rootfs of a running machine")
        if self.state_file.exists() and self.state() is None:
            raise BootError(
                f"{self.name}: {self.state_file} is unreadable, so whether the machine runs is "
                "unknown; stop its systemd-nspawn process, delete the file, and run again"
            )
        if self.dir.exists():
            self._remove_dir()
        self.cgroup.remove()

    def _remove_dir(self) -> None:
        """Remove the machine directory once nothing of the machine runs inside it."""
        self._wait_rootfs_released(STOP_TIMEOUT)
        # A process of the machine's PID namespace may still be finishing a write after nspawn
        # exited: try again shortly before giving up with a message instead of a traceback.
        for attempt in range(5):
            try:
                shutil.rmtree(self.dir)
                return
            except OSError as exc:
                if attempt == 4:
                    raise BootError(
                        f"{self.name}: could not remove {self.dir}: {exc}; run `down` again"
                    ) from exc
                time.sleep(1.0)
                self._wait_rootfs_released(STOP_TIMEOUT)

    def _wait_rootfs_released(self, timeout: float) -> None:
        """Wait until no process has its root in this machine's rootfs (all of it has exited)."""
        deadline = time.monotonic() + timeout
        while users := processes_rooted_in(self.rootfs):
            if time.monotonic() >= deadline:
                shown = ", ".join(str(pid) for pid in users[:5])
                raise BootError(
                    f"{self.name}: processes {shown} still run inside {self.rootfs} "
                    f"{timeout:.0f} s after the machine stopped; not removing it"
                )
            time.sleep(0.2)


def write_hosts_file(root: Path, spec: LabSpec) -> None:
    """/etc/hosts under root: every host of the inventory by address, FQDN and name."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{h.address}\t{h.fqdn(spec.domain)}\t{h.name}" for h in spec.hosts]
    (root / "etc/hosts").write_text("\n".join(lines) + "\n")

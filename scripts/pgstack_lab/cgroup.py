"""A cgroup of its own for each lab machine.

systemd-nspawn started with --keep-unit stays in the cgroup it was started from and puts the
machine's init into a "payload" child of that cgroup. Machines started from one cgroup would share
one cgroup tree: systemd inside each creates and removes the same unit cgroups, and a unit that
runs on two machines at once can lose its cgroup to the other machine (219/CGROUP). So each
machine is started from a cgroup of its own, `pgstack-lab/<machine>` at the root of each
hierarchy systemd uses: the named "systemd" hierarchy of cgroup v1 and the unified cgroup v2 one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from pathlib import Path

from pgstack_lab.errors import BootError

GROUP = "pgstack-lab"
MOUNTINFO = Path("/proc/self/mountinfo")


def systemd_hierarchies(mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Mount points of the hierarchies systemd manages: cgroup v1 name=systemd and cgroup2,
    the first mount of each (mountinfo fields: ... mount-point options [tags] - type source
    super-options)."""
    found: dict[str, Path] = {}
    for line in mountinfo.read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        kind, point = tail[0], Path(fields[4].replace("\\040", " "))
        if kind == "cgroup2":
            found.setdefault("unified", point)
        elif kind == "cgroup" and "name=systemd" in tail[2].split(","):
            found.setdefault("systemd", point)
    return list(found.values())


def machine_cgroups(hierarchies: list[Path] | None = None) -> set[str]:
    """Names of the machines that have a cgroup, in any hierarchy (a run killed between
    removing a machine's directory and its cgroup leaves only the cgroup)."""
    mounts = systemd_hierarchies() if hierarchies is None else hierarchies
    return {
        p.name
        for mount in mounts
        if (mount / GROUP).is_dir()
        for p in (mount / GROUP).iterdir()
        if p.is_dir()
    }


class MachineCgroup:
    """The cgroups one machine's systemd-nspawn is started in, in every systemd hierarchy."""

    def __init__(self, name: str, hierarchies: list[Path] | None = None) -> None:
        mounts = systemd_hierarchies() if hierarchies is None else hierarchies
        self.name = name
        self.paths = [mount / GROUP / name for mount in mounts]

    def create(self) -> None:
        """Make the machine's cgroups, empty: what a machine killed earlier left is removed."""
        self.remove()
        for path in self.paths:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                message = f"{self.name}: cannot create cgroup {path}: {exc.strerror}"
                raise BootError(message) from exc

    def join(self) -> None:
        """Move the calling process into the machine's cgroups; runs between fork and exec of
        systemd-nspawn, so it only writes ("0" names the writing process)."""
        for path in self.paths:
            fd = os.open(path / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        """Every process in the machine's cgroups (host PIDs): the machine's processes, found
        whether or not its systemd-nspawn still runs."""
        found: set[int] = set()
        for path in self.paths:
            for directory, _, _ in os.walk(path):
                with contextlib.suppress(OSError):  # a unit's cgroup went while walking
                    text = (Path(directory) / "cgroup.procs").read_text()
                    found.update(int(pid) for pid in text.split())
        return sorted(found)

    def kill(self) -> None:
        """SIGKILL every process in the machine's cgroups. A PID listed there belongs to the
        machine (a process leaves its cgroup only by exiting), so a reused PID is never hit."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Remove the machine's cgroups and what systemd inside made under them, deepest first.
        A cgroup directory goes with rmdir alone (its files are not removable one by one)."""
        for path in self.paths:
            if not path.is_dir():
                continue
            for directory, _, _ in os.walk(path, topdown=False):  # children before parents
                try:
                    os.rmdir(directory)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    busy = exc.errno == errno.EBUSY
                    detail = "processes still run in it" if busy else exc.strerror
                    raise BootError(
                        f"{self.name}: cannot remove cgroup {directory}: {detail}"
                    ) from exc
            with contextlib.suppress(OSError):  # the shared parent goes with the last machine
                path.parent.rmdir()

"""Which cgroup hierarchies a lab machine gets a cgroup in, and that its cgroups are made empty
and removed with everything under them. The real thing (machines in their own cgroups, one unit
on every host at once) is exercised by tests/lab."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from pgstack_lab.cgroup import GROUP, MachineCgroup, machine_cgroups, systemd_hierarchies
from pgstack_lab.errors import BootError

HYBRID = """\
25 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup ro,nosuid shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:24 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:25 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd
29 26 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
"""
UNIFIED = """\
26 25 0:23 / /sys/fs/cgroup rw,nosuid shared:8 - cgroup2 cgroup2 rw,nsdelegate
40 26 0:23 / /mnt/other\\040copy rw shared:8 - cgroup2 cgroup2 rw,nsdelegate
"""


def mountinfo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text(text)
    return path


def test_hybrid_hosts_use_the_named_systemd_and_the_unified_hierarchy(tmp_path: Path) -> None:
    found = systemd_hierarchies(mountinfo(tmp_path, HYBRID))
    assert found == [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd")]


def test_unified_hosts_use_the_first_mount_of_cgroup2(tmp_path: Path) -> None:
    assert systemd_hierarchies(mountinfo(tmp_path, UNIFIED)) == [Path("/sys/fs/cgroup")]


def test_this_machine_has_a_hierarchy_for_systemd() -> None:
    assert systemd_hierarchies() != []


def test_a_machine_gets_one_empty_cgroup_per_hierarchy(tmp_path: Path) -> None:
    roots = [tmp_path / "unified", tmp_path / "systemd"]
    cgroup = MachineCgroup("db1", roots)
    left = roots[1] / GROUP / "db1" / "payload/system.slice"
    left.mkdir(parents=True)  # what systemd inside a killed machine left
    cgroup.create()
    made = {p for p in tmp_path.rglob("*") if p.is_dir()}
    assert made == {root / part for root in roots for part in ("", GROUP, f"{GROUP}/db1")}


def test_removing_the_last_machine_removes_the_shared_group(tmp_path: Path) -> None:
    db1, backup1 = MachineCgroup("db1", [tmp_path]), MachineCgroup("backup1", [tmp_path])
    db1.create()
    backup1.create()
    (tmp_path / GROUP / "db1/payload/init.scope").mkdir(parents=True)
    db1.remove()
    assert sorted(p.name for p in (tmp_path / GROUP).iterdir()) == ["backup1"]
    backup1.remove()
    backup1.remove()  # nothing left to remove: no error
    assert list(tmp_path.iterdir()) == []


def test_a_cgroup_that_cannot_go_is_named(tmp_path: Path) -> None:
    cgroup = MachineCgroup("db1", [tmp_path])
    cgroup.create()
    (tmp_path / GROUP / "db1/cgroup.procs").write_text("1234\n")  # an rmdir that fails
    with pytest.raises(BootError, match=f"db1: cannot remove cgroup {tmp_path}/{GROUP}/db1"):
        cgroup.remove()


def test_the_processes_of_a_machine_are_found_and_killed_by_its_cgroups(tmp_path: Path) -> None:
    cgroup = MachineCgroup("db1", [tmp_path / "unified", tmp_path / "systemd"])
    cgroup.create()
    orphan = subprocess.Popen(["sleep", "300"])  # a process a killed systemd-nspawn left
    bystander = subprocess.Popen(["sleep", "300"])  # not the machine's
    try:
        for root in ("unified", "systemd"):
            unit = tmp_path / root / GROUP / "db1/payload/system.slice/ssh.service"
            unit.mkdir(parents=True)
            (unit / "cgroup.procs").write_text(f"{orphan.pid}\n")
        assert cgroup.pids() == [orphan.pid]
        cgroup.kill()
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert bystander.poll() is None
    finally:
        bystander.kill()
        orphan.kill()


def test_machines_known_only_by_their_cgroup_are_listed(tmp_path: Path) -> None:
    assert machine_cgroups([tmp_path]) == set()
    MachineCgroup("db1", [tmp_path]).create()
    MachineCgroup("mon1", [tmp_path / "other"]).create()
    assert machine_cgroups([tmp_path, tmp_path / "other"]) == {"db1", "mon1"}

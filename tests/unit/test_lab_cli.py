"""The lab tool's command line: usage errors exit 2 before anything runs; the summary a new user
sees after `make lab` names every endpoint and env file of the lab inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgstack_lab.cli import main
from pgstack_lab.machine import machine_processes, processes_rooted_in
from pgstack_lab.summary import render

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_INVENTORY = REPO_ROOT / "inventory/lab/hosts.yml"


def test_down_with_all_and_host_names_is_a_usage_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code = main(["-i", str(LAB_INVENTORY), "--root", str(tmp_path), "down", "--all", "db1"])
    assert code == 2
    assert "either --all or host names" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_summary_names_every_endpoint_and_env_file_of_the_lab() -> None:
    text = render(LAB_INVENTORY)
    for endpoint in (
        "db1.pgstack.internal:5432",
        "db1.pgstack.internal:6432",
        "db1.pgstack.internal:6379",
        "backup1.pgstack.internal:8432",
    ):
        assert endpoint in text
    assert "app1:/etc/pgstack/app.env" in text
    assert "app1:/etc/pgstack/billing.env" in text
    assert "make app-shell APP=app" in text


def test_processes_rooted_in_a_rootfs_are_found_by_their_root_link(tmp_path: Path) -> None:
    rootfs = tmp_path / "machines/db1/rootfs"
    (rootfs / "var").mkdir(parents=True)
    proc = tmp_path / "proc"
    for pid, root in (("10", rootfs), ("11", rootfs / "var"), ("12", tmp_path), ("13", Path("/"))):
        (proc / pid).mkdir(parents=True)
        (proc / pid / "root").symlink_to(root)
    (proc / "self").mkdir()
    (proc / "14").mkdir()  # no root link: a process that exited meanwhile
    assert processes_rooted_in(rootfs, proc) == [10, 11]


def test_machine_processes_are_the_pid_namespace_of_nspawns_child(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    # pid: (parent, PID namespace); 20 is nspawn, 21 the machine's init, 30 another machine's.
    table = {
        "self": (1, "pid:[1]"),
        "20": (1, "pid:[1]"),
        "22": (20, "pid:[1]"),  # a helper nspawn forks in the host's namespace
        "21": (20, "pid:[7]"),
        "25": (21, "pid:[7]"),
        "23": (21, "pid:[7]"),
        "30": (29, "pid:[8]"),
    }
    for pid, (parent, namespace) in table.items():
        (proc / pid / "ns").mkdir(parents=True)
        (proc / pid / "stat").write_text(f"{pid} (a (b) c) S {parent} 0 0\n")
        (proc / pid / "ns/pid").symlink_to(namespace)
    (proc / "26").mkdir()  # exited meanwhile
    assert machine_processes(20, proc) == [21, 23, 25]
    assert machine_processes(29, proc) == [30]
    assert machine_processes(99, proc) == []

"""The refusals that keep a drill away from live clusters, and the scratch cleanup."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import release
from pgstack_drill import scratch
from pgstack_drill.errors import PreconditionError


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_port_in_use_is_refused(tmp_path: Path, listener: int) -> None:
    with pytest.raises(PreconditionError, match=f"port {listener} is in use"):
        scratch.check_target(tmp_path, listener)


@pytest.mark.parametrize("major", sorted({f["postgresql"] for f in release.all_facts().values()}))
def test_a_data_directory_as_scratch_root_is_refused(tmp_path: Path, major: str) -> None:
    (tmp_path / "PG_VERSION").write_text(f"{major}\n")
    with pytest.raises(PreconditionError, match="is a PostgreSQL data directory"):
        scratch.check_target(tmp_path, free_port())


def test_a_directory_with_a_running_postmaster_is_refused(tmp_path: Path) -> None:
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}\n")
    with pytest.raises(PreconditionError, match="data directory"):
        scratch.check_target(tmp_path, free_port())
    assert scratch.postmaster_pid(tmp_path) == os.getpid()


def test_a_free_port_and_plain_directory_pass(tmp_path: Path) -> None:
    scratch.check_target(tmp_path, free_port())


def test_too_little_disk_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PreconditionError, match="MiB free, the restore needs about"):
        scratch.check_disk(tmp_path, 2**62)
    scratch.check_disk(tmp_path, 1)


def test_stale_scratch_is_removed_but_a_live_one_refused(tmp_path: Path) -> None:
    dead = tmp_path / "pgstack-drill-logical-20261123T030000Z" / "data"
    dead.mkdir(parents=True)
    (dead / "postmaster.pid").write_text("999999999\n")
    (tmp_path / "unrelated").mkdir()
    assert scratch.remove_stale(tmp_path) == ["pgstack-drill-logical-20261123T030000Z"]
    assert [p.name for p in tmp_path.iterdir()] == ["unrelated"]
    live = tmp_path / "pgstack-drill-pitr-20261124T030000Z" / "data"
    live.mkdir(parents=True)
    (live / "postmaster.pid").write_text(f"{os.getpid()}\n")
    with pytest.raises(PreconditionError, match="another drill is running"):
        scratch.remove_stale(tmp_path)
    assert live.is_dir()


def test_one_drill_at_a_time(tmp_path: Path) -> None:
    with scratch.locked(tmp_path):
        second = scratch.locked(tmp_path)
        with pytest.raises(PreconditionError, match="another drill"):
            second.__enter__()
    with scratch.locked(tmp_path):
        pass

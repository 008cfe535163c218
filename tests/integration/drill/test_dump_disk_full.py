"""The dump filesystem full: a scheduled run of the real dump tool (scripts/pgstack_backup) against
the real primary, its dumps and status file on a small tmpfs this test mounts.

One good dump first, and a copy of it under an old name that retention would delete; then the
filesystem fills (before the run, or at a given step of it: the real tool of that step runs behind a
wrapper that first fills the filesystem) and a run fails. Checked from the outside: no partial dump
or temporary file anywhere, every earlier file byte for byte, the status file's reason and its last
success, the exporter's metrics read from that status file, the exit code and the journal line.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from drill_helpers import BIN, CLUSTER, REPO_ROOT, Primary, dump_config

from pgstack_exporter.config import parse
from pgstack_exporter.exporter import Exporter

DATABASE = "dumpfull"
FS_SIZE = 8 << 20
PAGE = 4096
# Scheduled-dump name that retention (1 day, at least 1 kept) deletes after any successful run.
EXPIRED = "20200101T000000Z"


@dataclass(frozen=True)
class DumpFs:
    mount: Path
    config: Path
    bin_dir: Path  # the real client tools, linked; a test may put a wrapper in place of one

    @property
    def dumps(self) -> Path:
        return self.mount / "dumps" / DATABASE

    @property
    def status_file(self) -> Path:
        return self.mount / "status" / f"pg_dump-{CLUSTER}-{DATABASE}.json"

    @property
    def filler(self) -> Path:
        return self.mount / "filler"

    def fill_command(self) -> str:
        """A shell command that fills the filesystem (cat stops at ENOSPC)."""
        return f"cat /dev/zero >> {self.filler} 2>/dev/null"

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.status_file.read_text())
        return data

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pgstack_backup", "--config.file", str(self.config), "dump"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO_ROOT,
            check=False,
        )

    def files(self) -> dict[str, str]:
        """sha256 of every file on the filesystem but the filler, by path below the mount."""
        return {
            str(path.relative_to(self.mount)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(self.mount.rglob("*"))
            if path.is_file() and path != self.filler
        }

    def available(self) -> int:
        stats = os.statvfs(self.mount)
        return stats.f_bavail * stats.f_frsize


@pytest.fixture(scope="module")
def database(primary: Primary) -> str:
    """A small database: its dump is about 115 KiB, far more than the 8 KiB left."""
    primary.execute(f"CREATE DATABASE {DATABASE}")
    primary.execute(
        "CREATE TABLE notes AS SELECT g AS id, md5(g::text) AS note"
        " FROM generate_series(1, 5000) AS g",
        dbname=DATABASE,
    )
    return DATABASE


@pytest.fixture
def dump_fs(
    primary: Primary, backup_passfile: Path, base_dir: Path, database: str
) -> Iterator[DumpFs]:
    """A tmpfs of FS_SIZE holding the dumps and the status directory (one filesystem, as /var on a
    backup host), its first good dump made, and a copy of it named as an expired dump."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for the dumps needs root")
    mount = Path(tempfile.mkdtemp(prefix="dump-fs-", dir=base_dir))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE},mode=0755", "pgstack-dump-fs", str(mount)],
        check=True,
    )
    try:
        bin_dir = Path(tempfile.mkdtemp(prefix="dump-bin-", dir=base_dir))
        for tool in ("pg_dump", "pg_dumpall", "pg_restore"):
            (bin_dir / tool).symlink_to(BIN / tool)
        (mount / "dumps").mkdir()
        (mount / "status").mkdir()
        config = base_dir / f"{mount.name}.yml"
        config.write_text(
            dump_config(
                primary,
                backup_passfile,
                bin_dir=bin_dir,
                destination=mount / "dumps",
                status_dir=mount / "status",
                databases=[database],
                retention={"max_age_days": 1, "min_count": 1},
            )
        )
        fs = DumpFs(mount, config, bin_dir)
        first = fs.run()
        assert first.returncode == 0, first.stderr
        (good,) = fs.dumps.iterdir()
        subprocess.run(["cp", "-a", str(good), str(fs.dumps / EXPIRED)], check=True)
        time.sleep(1)  # the next run's name (its start, to the second) differs from the good one's
        yield fs
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


def fill(fs: DumpFs, leave: int) -> None:
    """Fill the filesystem with one file, then give back ``leave`` bytes (whole pages)."""
    subprocess.run(["sh", "-c", fs.fill_command()], check=False)
    assert fs.available() == 0
    size = fs.filler.stat().st_size
    os.truncate(fs.filler, (size - leave) // PAGE * PAGE)
    assert leave <= fs.available() < leave + 2 * PAGE


def fill_before(fs: DumpFs, tool: str) -> None:
    """``tool`` fills the filesystem as it starts: the disk runs full at that step of the run."""
    wrapper = fs.bin_dir / tool
    wrapper.unlink()
    wrapper.write_text(f'#!/bin/sh\n{fs.fill_command()}\nexec {BIN / tool} "$@"\n')
    wrapper.chmod(0o755)


def timestamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("step", "named"),
    [
        # pg_dump's write fails: it reports ENOSPC itself.
        ("run", ["pg_dump into", "/.partial-", "/data.dump", "No space left on device"]),
        # pg_dumpall exits 0 with a cut globals.sql: the runner finds the file incomplete.
        ("pg_dumpall", ["/.partial-", "/globals.sql is incomplete", "0 bytes available"]),
        # The dumps are written and read back; the runner's own manifest write fails.
        ("pg_restore", ["/.partial-", "No space left on device"]),
    ],
)
def test_a_full_filesystem_fails_the_run_and_keeps_every_earlier_dump(
    dump_fs: DumpFs, step: str, named: list[str]
) -> None:
    before = dump_fs.status()
    if step == "run":
        fill(dump_fs, leave=2 * PAGE)  # room for the status file, not for the dump
    else:
        fill(dump_fs, leave=1 << 20)
        fill_before(dump_fs, step)
    files = dump_fs.files()
    assert sum(1 for name in files if name.endswith("manifest.json")) == 2
    available = dump_fs.available()

    proc = dump_fs.run()

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    if step == "run":
        assert dump_fs.available() == available  # every page the run took is given back
    # No partial dump, no temporary file: the same files, byte for byte, but the status file.
    status_name = str(dump_fs.status_file.relative_to(dump_fs.mount))
    after = dump_fs.files()
    assert {k: v for k, v in after.items() if k != status_name} == {
        k: v for k, v in files.items() if k != status_name
    }
    assert sorted(p.name for p in dump_fs.dumps.iterdir()) == sorted(
        [EXPIRED, Path(before["last_success"]["path"]).name]
    )
    # The status file: the failure and its reason; the last success as it was.
    status = dump_fs.status()
    attempt = status["last_attempt"]
    assert attempt["exit_status"] == "failed"
    assert attempt["finished_at"] is not None
    assert attempt["path"] is None
    for part in named:
        assert part in attempt["error"]
    assert str(dump_fs.dumps) in attempt["error"]
    assert status["last_success"] == before["last_success"]
    assert f"dump of {DATABASE} failed: {attempt['error']}" in proc.stderr
    # What the exporter serves from that status file.
    registry = Exporter(
        parse({"version": 1, "status_files": {"directory": str(dump_fs.status_file.parent)}})
    ).registry()
    labels = {"cluster": CLUSTER, "database": DATABASE}
    value = registry.get_sample_value
    assert value("pgstack_status_file_valid", {"file": dump_fs.status_file.name}) == 1
    assert value("pgstack_dump_last_attempt_status", {**labels, "status": "failed"}) == 1
    assert value("pgstack_dump_last_attempt_status", {**labels, "status": "success"}) == 0
    assert value("pgstack_dump_last_success_timestamp_seconds", labels) == timestamp(
        before["last_success"]["finished_at"]
    )
    assert value("pgstack_dump_last_attempt_timestamp_seconds", labels) == timestamp(
        attempt["started_at"]
    )


def test_a_status_file_that_cannot_be_written_stays_whole_and_fails_the_run(
    dump_fs: DumpFs,
) -> None:
    """Not a byte left: the run cannot record its start, so it dumps nothing and says why."""
    fill(dump_fs, leave=0)
    files = dump_fs.files()
    status_dir = dump_fs.status_file.parent
    listing = sorted(p.name for p in status_dir.iterdir())

    proc = dump_fs.run()

    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        f"cannot write the status file {dump_fs.status_file}: No space left on device"
        in proc.stderr
    )
    assert f"dump of {DATABASE} not started" in proc.stderr
    assert dump_fs.files() == files
    assert sorted(p.name for p in status_dir.iterdir()) == listing

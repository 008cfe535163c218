"""What the drill integration tests share: the primary, the dump, the drill's directories."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

import release

# The one PostgreSQL server installed here (make host-deps installs the release's major); the
# drills find the same one themselves, as on a backup host, since the tests give no --bin-dir.
BIN = release.local_postgresql_bin()
MAJOR = BIN.parent.name  # /usr/lib/postgresql/<major>/bin
OS_USER = "postgres"
STANZA = "drill"
CLUSTER = "itdb"
REPO_ROOT = Path(__file__).resolve().parents[3]


def as_postgres(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", OS_USER, "--", *argv],
        check=True,
        text=True,
        capture_output=True,
        timeout=300,
        **kwargs,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def owned_dir(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    shutil.chown(path, user=OS_USER, group=OS_USER)
    return path


@dataclass(frozen=True)
class Primary:
    base: Path
    data: Path
    socket_dir: Path
    port: int
    cert: Path
    pgbackrest_config: Path  # the database host's side: archive-push, backup
    repo_config: Path  # the backup host's side, as roles/pgbackrest writes it: pg1-host set

    def conninfo(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={user}"

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conninfo(dbname), autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def pgbackrest(self, *args: str) -> str:
        return as_postgres(
            ["pgbackrest", f"--config={self.pgbackrest_config}", f"--stanza={STANZA}", *args]
        ).stdout

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_postmaster(data: Path, pid: int) -> None:
    """Stop a test postmaster at once (pg_ctl -m immediate), killing it if it outlives 20 s."""
    subprocess.run(
        [
            "runuser",
            "-u",
            OS_USER,
            "--",
            str(BIN / "pg_ctl"),
            "stop",
            "-D",
            str(data),
            "-m",
            "immediate",
            "-w",
        ],
        check=False,
        capture_output=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, 9)


def dump_config(
    primary: Primary,
    passfile: Path,
    *,
    bin_dir: Path,
    destination: Path,
    status_dir: Path,
    databases: list[str],
    **extra: Any,
) -> str:
    """The dump tool's configuration (pgstack-backup --config.file), as JSON: its connection to
    primary as pgstack_backup over TLS, verify-full, and the places it writes to."""
    return json.dumps(
        {
            "version": 1,
            "cluster": CLUSTER,
            "connection": {
                "host": "127.0.0.1",
                "port": primary.port,
                "user": "pgstack_backup",
                "passfile": str(passfile),
                "sslmode": "verify-full",
                "sslrootcert": str(primary.cert),
            },
            "bin_dir": str(bin_dir),
            "destination": str(destination),
            "status_dir": str(status_dir),
            "databases": databases,
            **extra,
        }
    )


@dataclass(frozen=True)
class Dumps:
    root: Path  # the --dumps-dir: <root>/<cluster>/<database>/<stamp>
    path: Path  # the one dump made


@dataclass(frozen=True)
class DrillDirs:
    scratch: Path
    reports: Path
    status: Path
    port: int

    def common(self) -> list[str]:
        return [
            "--cluster",
            CLUSTER,
            "--scratch-dir",
            str(self.scratch),
            "--port",
            str(self.port),
            "--reports-dir",
            str(self.reports),
            "--status-dir",
            str(self.status),
            "--os-user",
            OS_USER,
        ]

    def report(self) -> dict[str, Any]:
        (path,) = self.reports.glob("*.json")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def status_file(self, kind: str) -> dict[str, Any]:
        """The one status file of a drill kind (a logical drill's names its database)."""
        pattern = (
            f"drill-{CLUSTER}-logical-*.json"
            if kind == "logical"
            else f"drill-{CLUSTER}-{kind}.json"
        )
        (path,) = self.status.glob(pattern)
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def kind_of_last(self) -> str:
        (path,) = self.status.glob(f"drill-{CLUSTER}-*.json")
        return path.stem.removeprefix(f"drill-{CLUSTER}-").split("-")[0]

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.scratch.iterdir() if p.name.startswith("pgstack-drill-"))

"""Scratch state of a drill and the refusals that keep a drill away from live clusters.

Every drill works in a new directory ``<scratch_root>/pgstack-drill-<kind>-<stamp>/`` (the fixed
prefix is what the cleanup removes), runs its own postmaster there, listening only on a Unix
socket in that directory, and removes all of it at the end, after a failure or SIGTERM too.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pgstack_drill.errors import PreconditionError, VerificationFailed
from pgstack_drill.proc import Runner, last_line, pid_alive

log = logging.getLogger(__name__)

PREFIX = "pgstack-drill-"
DATABASE_PREFIX = "pgstack_drill_"
LOCK_FILE = ".pgstack-drill.lock"
MAX_SOCKET_PATH = 100
# Where PostgreSQL servers of this host put their sockets (Debian's clusters, hand-started ones).
SOCKET_DIRS = (Path("/var/run/postgresql"), Path("/tmp"))  # noqa: S108 - only looked at
# Settings given on the postmaster's command line: they win over anything in the restored
# postgresql.auto.conf, so a restored cluster can never archive into the live repository, reach
# the network, or load a library the backup host does not have.
SAFETY_SETTINGS = {
    "listen_addresses": "",
    "archive_mode": "off",
    "archive_command": "",
    "primary_conninfo": "",
    "shared_preload_libraries": "",
    "ssl": "off",
    "hot_standby": "on",
    "logging_collector": "off",
    "log_destination": "stderr",
}


def postmaster_pid(data_dir: Path) -> int | None:
    """The PID in ``postmaster.pid`` when that process is alive, else None."""
    try:
        first = (data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0]
        pid = int(first.strip())
    except (OSError, IndexError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def port_in_use(port: int) -> str | None:
    """Why ``port`` is taken on this host (a TCP listener on loopback or a PostgreSQL socket)."""
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                if probe.connect_ex((address, port)) == 0:
                    return f"something listens on {address}:{port}"
            except OSError:
                continue
    for directory in SOCKET_DIRS:
        if (directory / f".s.PGSQL.{port}").exists():
            return f"a PostgreSQL socket {directory}/.s.PGSQL.{port} exists"
    return None


def check_target(scratch_root: Path, port: int) -> None:
    """Refuse a root that is (or holds) a live data directory, and a port that is in use."""
    if postmaster_pid(scratch_root) is not None or (scratch_root / "PG_VERSION").exists():
        raise PreconditionError(
            f"{scratch_root} is a PostgreSQL data directory: a drill restores only into new "
            f"{PREFIX}* directories of an otherwise unused scratch root"
        )
    reason = port_in_use(port)
    if reason:
        raise PreconditionError(f"port {port} is in use ({reason}): choose a free --port")


def check_disk(path: Path, needed_bytes: int) -> None:
    free = shutil.disk_usage(path).free
    if free < needed_bytes:
        raise PreconditionError(
            f"{path}: {free / 2**20:.0f} MiB free, the restore needs about "
            f"{needed_bytes / 2**20:.0f} MiB"
        )


def remove_stale(scratch_root: Path) -> list[str]:
    """Remove scratch directories left by a killed drill; refuse while one has a live postmaster."""
    removed = []
    for entry in sorted(scratch_root.glob(f"{PREFIX}*")):
        if not entry.is_dir():
            continue
        if postmaster_pid(entry / "data") is not None:
            raise PreconditionError(f"{entry} has a running postmaster: another drill is running")
        shutil.rmtree(entry)
        removed.append(entry.name)
    return removed


@contextlib.contextmanager
def locked(scratch_root: Path) -> Iterator[None]:
    """One drill at a time per scratch root."""
    fd = os.open(scratch_root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise PreconditionError(f"another drill holds {scratch_root / LOCK_FILE}") from exc
        yield
    finally:
        os.close(fd)


@dataclass
class Scratch:
    """One drill's directory, its postmaster and how to reach it."""

    root: Path
    runner: Runner
    bin_dir: Path
    port: int
    timezone: str = "UTC"
    started_pid: int | None = None
    socket_dir: Path = Path()

    @classmethod
    def create(
        cls,
        scratch_root: Path,
        kind: str,
        started: datetime,
        *,
        runner: Runner,
        bin_dir: Path,
        port: int,
        timezone: str = "UTC",
    ) -> Scratch:
        root = scratch_root / f"{PREFIX}{kind}-{started.strftime('%Y%m%dT%H%M%SZ')}"
        root.mkdir(mode=0o700)
        scratch = cls(root=root, runner=runner, bin_dir=bin_dir, port=port, timezone=timezone)
        scratch.data_dir.mkdir(mode=0o700)
        # A Unix socket path has at most 107 bytes: under a deep scratch root the socket goes to
        # a directory of its own in /tmp (same prefix, removed with the rest).
        socket_dir = root / "run"
        if len(str(socket_dir / f".s.PGSQL.{port}.lock")) <= MAX_SOCKET_PATH:
            socket_dir.mkdir(mode=0o700)
        else:
            socket_dir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}run-"))
        scratch.socket_dir = socket_dir
        if os.geteuid() == 0:
            for path in (root, scratch.data_dir, scratch.socket_dir):
                shutil.chown(path, user=runner.os_user, group=None)
        return scratch

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def conninfo(self, dbname: str) -> str:
        return (
            f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname} "
            f"application_name=pgstack-drill connect_timeout=10"
        )

    def initdb(self) -> None:
        self.runner.run(
            self.runner.as_owner(
                [
                    self.tool("initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username=postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            "initdb",
            timeout=300,
        )

    def write_config(self, extra: dict[str, str] | None = None) -> None:
        """Our own postgresql.conf and pg_hba.conf, outside the data directory."""
        conf = self.root / "postgresql.conf"
        hba = self.root / "pg_hba.conf"
        ident = self.root / "pg_ident.conf"
        conf.write_text(
            "# pgstack-drill scratch cluster: Unix socket only, no archiving.\n"
            f"data_directory = '{self.data_dir}'\n"
            f"hba_file = '{hba}'\n"
            f"ident_file = '{ident}'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            f"timezone = '{self.timezone}'\n"
            "shared_buffers = 128MB\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "maintenance_work_mem = 256MB\n"
            "max_wal_size = 4GB\n"
            + "".join(f"{name} = '{value}'\n" for name, value in (extra or {}).items()),
            encoding="utf-8",
        )
        hba.write_text(
            "# Only the drill, through the socket in its own 0700 directory.\n"
            "local all all trust\n",
            encoding="utf-8",
        )
        ident.write_text("", encoding="utf-8")
        if os.geteuid() == 0:
            for path in (conf, hba, ident):
                shutil.chown(path, user=self.runner.os_user, group=None)

    def start(self, timeout: float = 3600) -> None:
        """Start the postmaster and wait until it accepts connections (recovery included)."""
        options = " ".join(f"-c {name}='{value}'" for name, value in SAFETY_SETTINGS.items())
        options += f" -c config_file='{self.root / 'postgresql.conf'}'"
        result = self.runner.run(
            self.runner.as_owner(
                [
                    self.tool("pg_ctl"),
                    "start",
                    "--wait",
                    f"--timeout={int(timeout)}",
                    "--pgdata",
                    str(self.data_dir),
                    "--log",
                    str(self.log_file),
                    "--options",
                    options,
                ]
            ),
            "pg_ctl start",
            check=False,
            timeout=timeout + 30,
        )
        self.started_pid = postmaster_pid(self.data_dir)
        if result.returncode != 0:
            raise VerificationFailed(f"the scratch postmaster did not start: {self.log_problem()}")

    def log_problem(self) -> str:
        """The first FATAL/PANIC line of the scratch server's log, else its last line."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "no server log"
        for line in text.splitlines():
            if "FATAL:" in line or "PANIC:" in line:
                return line.strip()[:500]
        return last_line(text)

    def alive(self) -> bool:
        return postmaster_pid(self.data_dir) is not None

    def stop(self) -> None:
        """Stop the postmaster (immediate: the scratch data is thrown away) and wait for it."""
        pid = postmaster_pid(self.data_dir) or self.started_pid
        if pid is None:
            return
        self.runner.run(
            self.runner.as_owner(
                [
                    self.tool("pg_ctl"),
                    "stop",
                    "--pgdata",
                    str(self.data_dir),
                    "--mode=immediate",
                    "--wait",
                    "--timeout=60",
                ]
            ),
            "pg_ctl stop",
            check=False,
            timeout=90,
        )
        deadline = time.monotonic() + 30
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            log.warning("scratch postmaster %d still alive after pg_ctl stop: killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)

    def remove(self) -> None:
        """Stop whatever runs and delete the whole directory; safe to call more than once."""
        try:
            self.stop()
        finally:
            for path in (self.root, self.socket_dir):
                if path.name.startswith(PREFIX) or path.parent == self.root:
                    shutil.rmtree(path, ignore_errors=True)

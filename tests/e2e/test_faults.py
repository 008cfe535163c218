"""Processes of the data tier killed under load, with what must hold checked.

Writers commit rows through PgBouncer (6432) as the application does, reconnecting after an error
as an application's pool does, and count a row only once COMMIT has returned. PostgreSQL is then
restarted, and its postmaster killed with SIGKILL: the writers carry on without anyone starting
anything, and every acknowledged row is in the table afterwards. Redis is killed with SIGKILL while
a client writes: systemd starts it again and every write acknowledged before the AOF's fsync
window (`redis_aof_fsync: everysec`) is there. A converge killed between writing a settings file
and its handler is completed by the next one. Each test prints what it measured.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis
from helpers import (
    LAB_INVENTORY,
    PGBOUNCER_PORT,
    ROLE_SECRETS,
    DbHost,
    conninfo,
    lab_ssh,
    pg_major,
    sh,
    wait_for,
)
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

pytestmark = pytest.mark.e2e

WRITERS = 4
# Rows committed before the fault, and after it: the load is running on both sides.
BEFORE = 200
AFTER = 200
# appendfsync everysec: Redis promises at most about a second of writes lost on a crash, two when
# an fsync is slow; a write acknowledged earlier than this before the kill must survive it.
REDIS_FSYNC_WINDOW = 2.0


@dataclass
class Load:
    """Writers inserting rows through PgBouncer; acked holds (id, when COMMIT returned)."""

    dsn: str
    password: str
    table: str
    acked: list[tuple[int, float]] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def write(self) -> None:
        insert = sql.SQL("INSERT INTO public.{} DEFAULT VALUES RETURNING id").format(
            sql.Identifier(self.table)
        )
        conn: psycopg.Connection[tuple[int]] | None = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, password=self.password, autocommit=True)
                row = conn.execute(insert).fetchone()
                assert row is not None
                with self.lock:
                    self.acked.append((row[0], time.monotonic()))
            except psycopg.Error:
                with self.lock:
                    self.errors.append(time.monotonic())
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.2)
        if conn is not None:
            conn.close()

    def start(self) -> None:
        self.threads = [threading.Thread(target=self.write, daemon=True) for _ in range(WRITERS)]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def count_after(self, moment: float) -> int:
        with self.lock:
            return sum(1 for _, at in self.acked if at > moment)


@pytest.fixture
def load(db_host: DbHost, ca_file: Path, secret: Callable[[str], str]) -> Iterator[Load]:
    """A table the migration role creates (dropped afterwards); writers on it through PgBouncer."""
    name = f"e2e_fault_{uuid.uuid4().hex[:12]}"
    direct = conninfo(db_host, "app_migration", ca_file)
    with psycopg.connect(
        direct, password=secret(ROLE_SECRETS["app_migration"]), autocommit=True
    ) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE public.{} (id bigserial PRIMARY KEY)").format(
                sql.Identifier(name)
            )
        )
    running = Load(
        conninfo(db_host, "app", ca_file, port=PGBOUNCER_PORT),
        secret(ROLE_SECRETS["app"]),
        name,
    )
    running.start()
    yield running
    running.finish()
    with psycopg.connect(
        direct, password=secret(ROLE_SECRETS["app_migration"]), autocommit=True
    ) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS public.{}").format(sql.Identifier(name)))


def stored_ids(db_host: DbHost, ca_file: Path, password: str, table: str) -> set[int]:
    dsn = conninfo(db_host, "app_migration", ca_file)
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        query = sql.SQL("SELECT id FROM public.{}").format(sql.Identifier(table))
        return {row[0] for row in conn.execute(query)}


def main_pid(unit: str) -> str:
    return sh("db1", f"systemctl show -p MainPID --value {unit}").strip()


FAULTS = {
    "restarted": "systemctl restart {unit}",
    # The postmaster's PID is the unit's main PID (Debian's unit reads it from its PID file).
    "postmaster-sigkill": "kill -KILL $(systemctl show -p MainPID --value {unit})",
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_postgresql_fault_under_load_through_pgbouncer_loses_no_acknowledged_commit(
    load: Load, db_host: DbHost, ca_file: Path, secret: Callable[[str], str], fault: str
) -> None:
    unit = f"postgresql@{pg_major(LAB_INVENTORY, db_host.name)}-main"
    wait_for(f"{BEFORE} commits before the fault", lambda: len(load.acked) >= BEFORE or None,
             timeout=60, every=0.5)  # fmt: skip
    pid_before = main_pid(unit)
    began = time.monotonic()
    sh("db1", FAULTS[fault].format(unit=unit))

    # Nobody starts anything: systemd (a killed postmaster) or the restart brings it back with a
    # new postmaster (backends of a killed one may serve a moment longer), and the writers
    # reconnect through PgBouncer.
    def running_again() -> bool:
        active = lab_ssh("db1", f"systemctl is-active {unit}").stdout.strip() == "active"
        return active and main_pid(unit) not in ("0", pid_before)

    wait_for("a new postmaster", lambda: running_again() or None, timeout=120, every=0.5)
    back = time.monotonic()
    wait_for(f"{AFTER} commits after it", lambda: load.count_after(back) >= AFTER or None,
             timeout=120, every=0.5)  # fmt: skip
    load.finish()
    stored = stored_ids(db_host, ca_file, secret(ROLE_SECRETS["app_migration"]), load.table)
    acknowledged = {row_id for row_id, _ in load.acked}
    missing = sorted(acknowledged - stored)
    assert missing == [], f"{len(missing)} acknowledged rows missing: {missing[:20]}"
    failed = [at for at in load.errors if at > began]
    # The outage the writers saw: the longest time without a commit from the fault on.
    times = [began, *sorted(at for _, at in load.acked if at > began)]
    outage = max(b - a for a, b in itertools.pairwise(times))
    print(
        f"{fault}: {len(acknowledged)} commits acknowledged, all stored; {len(failed)} failed "
        f"statements; no commit for {outage:.1f} s at most"
    )


@pytest.fixture
def redis_admin(db_host: DbHost, ca_file: Path, secret: Callable[[str], str]) -> redis.Redis:
    return redis_client(db_host, ca_file, "admin", secret("redis_admin"))


def redis_client(db_host: DbHost, ca_file: Path, user: str, password: str) -> redis.Redis:
    return redis.Redis(
        host=db_host.address,
        port=6379,
        username=user,
        password=password,
        ssl=True,
        ssl_ca_certs=str(ca_file),
        ssl_cert_reqs="required",
        ssl_min_version=ssl.TLSVersion.TLSv1_2,
        socket_timeout=5,
        socket_connect_timeout=5,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def test_redis_killed_keeps_every_write_acknowledged_before_the_fsync_window(
    db_host: DbHost, ca_file: Path, secret: Callable[[str], str], redis_admin: redis.Redis
) -> None:
    assert redis_admin.config_get("appendfsync") == {"appendfsync": "everysec"}
    run_id = redis_admin.info("server")["run_id"]
    prefix = f"session:e2e-fault-{uuid.uuid4().hex[:8]}"
    app = redis_client(db_host, ca_file, "app", secret("redis_app"))
    acked: list[tuple[str, float]] = []
    killed = threading.Event()

    def write() -> None:
        n = 0
        while not killed.is_set():
            name = f"{prefix}-{n}"
            try:
                app.set(name, "1", ex=3600)
            except redis.RedisError:
                return  # the kill: this write was not acknowledged
            acked.append((name, time.monotonic()))
            n += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    wait_for("writes before the kill", lambda: len(acked) >= 500 or None, timeout=60, every=0.2)
    kill_at = time.monotonic()
    sh("db1", "kill -KILL $(systemctl show -p MainPID --value redis-server)")
    killed.set()
    writer.join(timeout=30)
    app.close()

    # Nobody starts it: Debian's unit restarts Redis, which replays its AOF.
    def back() -> redis.Redis | None:
        conn = redis_client(db_host, ca_file, "app", secret("redis_app"))
        try:
            conn.ping()
        except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
            conn.close()
            return None
        return conn

    app = wait_for("Redis back", back, timeout=60, every=0.5)
    assert redis_admin.info("server")["run_id"] != run_id  # it really restarted
    names = [name for name, _ in acked]
    present = [bool(v) for v in app.mget(names)]
    lost = [name for (name, at), here in zip(acked, present, strict=True) if not here]
    old_enough = [name for (name, at), here in zip(acked, present, strict=True)
                  if not here and at < kill_at - REDIS_FSYNC_WINDOW]  # fmt: skip
    kept = [name for name, here in zip(names, present, strict=True) if here]
    if kept:
        app.delete(*kept)
    app.close()
    assert old_enough == [], f"{len(old_enough)} writes older than the fsync window lost"
    print(
        f"redis SIGKILL: {len(acked)} writes acknowledged, {len(lost)} lost, all of them within "
        f"the last {REDIS_FSYNC_WINDOW:.0f} s before the kill"
    )


# A reload-level setting the lab's inventory leaves alone, and a value it never has.
SETTING, VALUE, SHOWN = "log_min_duration_statement", 4321, "4321ms"


def show(setting: str) -> str:
    return sh("db1", f"sudo -u postgres psql -XAtc 'SHOW {setting}'").strip()


def test_a_converge_killed_before_its_handler_is_completed_by_the_next_one(
    ansible_playbook: Callable[..., subprocess.CompletedProcess[str]], repo_root: Path
) -> None:
    """postgresql.yml on db1 with a changed reload-level setting, killed as soon as it has written
    the settings file, before its reload handler: run again, it applies the setting (nothing in
    that run changes the file); back to the inventory's value, nothing is left pending."""
    before = show(SETTING)
    assert before != SHOWN
    extra = json.dumps({"postgresql_settings": {SETTING: VALUE}})
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(LAB_INVENTORY),
            "playbooks/postgresql.yml", "--limit", "db1", "-e", extra]  # fmt: skip
    play = subprocess.Popen(
        argv, cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=dict(os.environ, ANSIBLE_NOCOLOR="1"),
    )  # fmt: skip
    written = False
    assert play.stdout is not None
    try:
        for line in play.stdout:
            if "Render the reload-level settings" in line:
                written = True
            elif written and line.startswith("TASK ["):
                os.killpg(play.pid, signal.SIGKILL)  # the file is written, its handler not run
                break
    finally:
        play.wait(timeout=300)
    assert written, "the play ended before it wrote the settings file"
    assert play.returncode == -signal.SIGKILL
    assert show(SETTING) == before  # written, not applied: what the kill left

    again = ansible_playbook("--limit", "db1", "-e", extra, playbook="playbooks/postgresql.yml")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "PostgreSQL last read its configuration before these changed" in again.stdout
    assert show(SETTING) == SHOWN

    back = ansible_playbook("--limit", "db1", playbook="playbooks/postgresql.yml")
    assert back.returncode == 0, back.stdout[-3000:]
    assert show(SETTING) == before

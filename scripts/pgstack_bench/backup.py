"""Section "backup": pg_dump, pg_restore, pgBackRest and the drills' RTO at several sizes.

Per size (``--size-mb`` of ``pgstack-drill workload``: MiB of generated row text; the database
with its indexes is larger and the figures are plotted against the database's own size):

1. db1: a scratch database ``pgstack_bench_backup`` filled by ``pgstack-drill workload`` (the
   applications' ``jobs``/``results`` with their indexes), as the local superuser.
2. backup1, where the product dumps: ``pg_dump`` over ``verify-full`` TLS as ``pgstack_backup``
   (its passfile), custom format at ``-Z0/1/6/9`` and directory format ``-j 2 -Z1``.
3. backup1, into a scratch cluster of its own (socket only, the drills' scratch settings):
   ``pg_restore`` of the ``-Z1`` custom dump with one job and with ``-j 2``; the floor: the same
   tables (``--section=pre-data``), the same rows by ``COPY FROM`` plain text files, the same
   indexes and constraints (``--section=post-data``, one job).
4. backup1, pgBackRest on that cluster with a scratch stanza ``bench`` in a scratch repository
   (its own config file and include path: the lab's stanza ``main`` and its repository are never
   touched): full backup, about 10 % new rows, differential backup, 20 % more jobs and 50 %
   more results (the WAL to replay), then ``pgstack-drill pitr`` against the scratch stanza: its
   restore phase, its recover phase (WAL replay rate) and its RTO.
5. The logical drill as the product runs it: ``pgstack-backup dump`` (scratch config and
   destination) then ``pgstack-drill logical`` (its RTO).

Everything made is removed at the end of each size and of the section (try/finally); leftovers of
a killed run are removed at the start. Sizes: ``PGSTACK_BENCH_BACKUP_SIZES_MB`` (e.g. ``50,200``)
overrides the defaults below.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pgstack_bench.lab import BenchLab
from pgstack_bench.model import Cell, Curve, Section, SectionResult, Table
from pgstack_drill.schema import HEARTBEAT_BEAT, HEARTBEAT_SQL

log = logging.getLogger(__name__)

# About 7 min for the section on the 2-core machine (0.45 s per MiB of rows + 45 s per size).
DEFAULT_SIZES_MB = (50.0, 150.0, 450.0)
QUICK_SIZES_MB = (50.0,)
SIZES_ENV = "PGSTACK_BENCH_BACKUP_SIZES_MB"
RTO_LIMIT_S = 3600.0
RESTORE_GOAL = 1.5  # restore time over the floor

DB_HOST = "db1"
# The server binaries of the host's release (its PostgreSQL major), found by the shell on the host
# each command runs on.
BIN = "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
BACKUP_HOST = "backup1"
DATABASE = "pgstack_bench_backup"
# Everything on backup1 lives here (root-made, fixed name: a leftover is found and removed).
BENCH = "/var/tmp/pgstack-bench-backup"  # noqa: S108
CLUSTER_PORT = 55441
LOGICAL_DRILL_PORT = 55442
PITR_DRILL_PORT = 55443
STANZA = "bench"
HOST_CA = "/etc/pgstack/tls/ca.crt"
PASSFILE = "/etc/pgstack/pg_dump.pgpass"
DUMP_ROLE = "pgstack_backup"
# No compression, the fastest level and the default; level 9 was measured at 1-2 % fewer bytes
# than 6 for 18-79 % more time (50, 150 and 450 MiB of rows), so the default run leaves it out.
LEVELS = (0, 1, 6)
TABLES = ("jobs", "results")
# The drills' scratch settings (pgstack_drill.scratch.Scratch.write_config), plus what a pgBackRest
# source needs: full_page_writes on (as on db1), so the replayed WAL is the real kind.
CLUSTER_SETTINGS = {
    "listen_addresses": "''",
    "shared_buffers": "128MB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "on",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "ssl": "off",
    "timezone": "'UTC'",
}


# --- pure parts (tests/unit/test_bench_backup.py)


def parse_sizes(text: str | None, quick: bool) -> tuple[float, ...]:
    """The sizes to run (MiB of generated rows): ``text`` (comma separated) or the defaults."""
    if not text:
        return QUICK_SIZES_MB if quick else DEFAULT_SIZES_MB
    sizes: list[float] = []
    for part in text.split(","):
        try:
            size = float(part.strip())
        except ValueError as exc:
            raise ValueError(f"{SIZES_ENV}: not a number: {part.strip()!r}") from exc
        if size <= 0:
            raise ValueError(f"{SIZES_ENV}: sizes must be positive: {part.strip()!r}")
        sizes.append(size)
    return tuple(sorted(set(sizes)))


def disk_needed_mb(size_mb: float) -> float:
    """Free space backup1 needs for one size: five dumps (about 3.5 x rows together, -Z0 alone
    is 1.1 x), three restored copies at most (2 x rows each with indexes), the floor's text
    (1 x), the pgBackRest repository and the drill's restore (2.5 x), plus 512 MiB."""
    return size_mb * (3.5 + 3 * 2 + 1 + 2.5) + 512


def estimate_seconds(sizes_mb: Sequence[float], seconds_per_mb: float, fixed_s: float) -> float:
    """Run time for the sizes, given a cost per MiB of rows and a fixed cost per size."""
    return sum(size * seconds_per_mb + fixed_s for size in sizes_mb)


def linear_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least squares ``y = slope * x + intercept``; one point: a line through the origin."""
    if not points:
        raise ValueError("no points to fit")
    if len({x for x, _ in points}) == 1:
        x, y = points[0][0], sum(p[1] for p in points) / len(points)
        if x == 0:
            raise ValueError("cannot fit a single point at x = 0")
        return y / x, 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x


def size_at(limit: float, fit: tuple[float, float]) -> float | None:
    """The x at which the fitted line reaches ``limit``; None when it never rises to it."""
    slope, intercept = fit
    if slope <= 0:
        return None
    return max((limit - intercept) / slope, 0.0)


ELAPSED = re.compile(r"^@@elapsed (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$", re.MULTILINE)


def parse_elapsed(output: str) -> tuple[float, str]:
    """The seconds a ``timed()`` command took and its output without the marker line."""
    found = list(ELAPSED.finditer(output))
    if not found:
        raise ValueError(f"no @@elapsed line in {output.strip()[-300:]!r}")
    last = found[-1]
    rest = output[: last.start()] + output[last.end() :]
    return float(last[2]) - float(last[1]), rest.strip()


def phases(report: dict[str, Any]) -> dict[str, float]:
    """A drill report's phases, name -> seconds."""
    return {p["name"]: float(p["duration_seconds"]) for p in report.get("phases", [])}


def mib(num_bytes: float) -> float:
    return round(num_bytes / 2**20, 1)


# --- running things on the lab


def timed(lab: BenchLab, host: str, command: str, *, stdin: str | None = None) -> float:
    """Seconds a shell command took on the host, measured there (no SSH setup in it)."""
    script = (
        f'set -e; cd /tmp; s=$(date +%s.%N); {command}; e=$(date +%s.%N); echo "@@elapsed $s $e"'
    )
    seconds, _ = parse_elapsed(lab.sh(host, script, stdin=stdin, timeout=7200))
    return round(seconds, 2)


def as_postgres(command: str) -> str:
    return f"runuser -u postgres -- {command}"


def db1_sql(lab: BenchLab, sql: str, database: str = "postgres") -> str:
    return lab.sh(
        DB_HOST,
        f"cd /tmp && runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -d {database}",
        stdin=sql,
        timeout=3600,
    )


def bench_psql(database: str = "postgres") -> str:
    """psql on backup1 to the bench cluster (its socket, trust), reading SQL from stdin."""
    return as_postgres(
        f"{BIN}/psql -X -q -At -v ON_ERROR_STOP=1 -h {BENCH}/run -p {CLUSTER_PORT} -d {database}"
    )


def bench_sql(lab: BenchLab, sql: str, database: str = "postgres") -> str:
    return lab.sh(BACKUP_HOST, f"cd /tmp && {bench_psql(database)}", stdin=sql, timeout=7200)


def dump_conninfo(lab: BenchLab) -> str:
    return (
        f"host={lab.fqdn(DB_HOST)} port=5432 dbname={DATABASE} user={DUMP_ROLE} "
        f"sslmode=verify-full sslrootcert={HOST_CA} application_name=pgstack-bench"
    )


PGBACKREST = (
    f"env PGBACKREST_CONFIG_INCLUDE_PATH={BENCH}/conf.d "
    f"pgbackrest --config={BENCH}/pgbackrest.conf --stanza={STANZA}"
)


def cleanup(lab: BenchLab) -> None:
    """Stop the bench cluster, remove everything under BENCH on backup1, drop the database."""
    lab.sh(
        BACKUP_HOST,
        f"for d in {BENCH}/data {BENCH}/drill/pgstack-drill-*/data; do "
        f"if [ -f $d/postmaster.pid ]; then "
        f"{as_postgres(f'{BIN}/pg_ctl stop -D $d -m immediate -w')} || true; fi; done; "
        f"rm -rf {BENCH}",
    )
    db1_sql(lab, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE);")


def prepare_backup1(lab: BenchLab) -> None:
    """The bench directory, the cluster (initdb, not started) and the scratch pgBackRest config."""
    cipher = secrets.token_urlsafe(32)
    settings = "".join(f"-c {k}={v} " for k, v in CLUSTER_SETTINGS.items())
    lab.sh(
        BACKUP_HOST,
        f"set -e; umask 022; mkdir -p {BENCH}; cd {BENCH}; "
        f"mkdir dumps product conf.d; chown postgres: {BENCH}; "
        f"install -d -o postgres -m 0700 run repo lock log spool floor drill reports status; "
        f"chown root:postgres drill; chmod 0750 drill; "
        f"{as_postgres(f'{BIN}/initdb -D {BENCH}/data -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync')} >/dev/null; "  # noqa: E501
        f"echo {shlex.quote(settings.strip())} > {BENCH}/options; "
        f"umask 077; cat > {BENCH}/pgbackrest.conf; chown postgres: {BENCH}/pgbackrest.conf",
        stdin=(
            "[global]\n"
            f"repo1-path={BENCH}/repo\n"
            "repo1-cipher-type=aes-256-cbc\n"
            f"repo1-cipher-pass={cipher}\n"
            "repo1-retention-full=1\n"
            "compress-type=zst\n"
            "process-max=2\n"
            "start-fast=y\n"
            "archive-async=n\n"
            f"lock-path={BENCH}/lock\n"
            f"log-path={BENCH}/log\n"
            f"spool-path={BENCH}/spool\n"
            "log-level-console=warn\n"
            "log-level-file=off\n"
            f"[{STANZA}]\n"
            f"pg1-path={BENCH}/data\n"
            f"pg1-port={CLUSTER_PORT}\n"
            f"pg1-socket-path={BENCH}/run\n"
        ),
    )


def start_cluster(lab: BenchLab, *, archive: bool) -> None:
    extra = f"-c port={CLUSTER_PORT} -c unix_socket_directories={BENCH}/run "
    if archive:
        command = f"{PGBACKREST} archive-push %p"
        extra += f"-c archive_mode=on -c archive_command={shlex.quote(command)}"
    else:
        extra += "-c archive_mode=off"
    options = f"$(cat {BENCH}/options) {extra}"
    lab.sh(
        BACKUP_HOST,
        f"cd /tmp && {as_postgres(f'{BIN}/pg_ctl start -w -t 600 -D {BENCH}/data')} "
        f'-l {BENCH}/log/postgres.log -o "{options}" >/dev/null',
    )


def stop_cluster(lab: BenchLab) -> None:
    lab.sh(
        BACKUP_HOST,
        f"cd /tmp && {as_postgres(f'{BIN}/pg_ctl stop -w -m fast -D {BENCH}/data')}",
    )


# --- the measurements of one size


@dataclass
class SizeResult:
    size_mb: float
    db_bytes: int = 0
    fill_s: float = 0.0
    dumps: list[dict[str, Any]] = field(default_factory=list)
    restore: dict[str, float] = field(default_factory=dict)
    pgbackrest: dict[str, float] = field(default_factory=dict)
    logical: dict[str, Any] = field(default_factory=dict)
    pitr: dict[str, Any] = field(default_factory=dict)

    @property
    def db_mb(self) -> float:
        return mib(self.db_bytes)


def make_data(lab: BenchLab, result: SizeResult) -> None:
    db1_sql(lab, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE);\nCREATE DATABASE {DATABASE};")
    result.fill_s = timed(
        lab,
        DB_HOST,
        as_postgres(
            f"pgstack-drill workload --dbname 'dbname={DATABASE}' "
            f"--size-mb {result.size_mb:g} --seed 1 >/dev/null"
        ),
    )
    db1_sql(lab, "VACUUM ANALYZE;", DATABASE)
    result.db_bytes = int(db1_sql(lab, f"SELECT pg_database_size('{DATABASE}')").strip())
    log.info("backup: %s MiB of rows, database %s MiB", result.size_mb, result.db_mb)


def run_dumps(lab: BenchLab, result: SizeResult) -> None:
    conninfo = shlex.quote(dump_conninfo(lab))
    env = f"PGPASSFILE={PASSFILE}"
    runs = [
        (
            f"custom -Z{level}",
            f"-Fc -Z{level} -f {BENCH}/dumps/c{level}.dump",
            f"{BENCH}/dumps/c{level}.dump",
            level,
        )
        for level in LEVELS
    ]
    runs.append(("directory -j2 -Z1", f"-Fd -j 2 -Z1 -f {BENCH}/dumps/d1", f"{BENCH}/dumps/d1", 1))
    for name, args, path, level in runs:
        seconds = timed(lab, BACKUP_HOST, f"env {env} {BIN}/pg_dump {args} -d {conninfo}")
        size = int(lab.sh(BACKUP_HOST, f"du -sb {path} | cut -f1").strip())
        result.dumps.append({"dump": name, "level": level, "seconds": seconds, "bytes": size})
        log.info("backup: pg_dump %s: %.1f s, %s MiB", name, seconds, mib(size))
        if path.endswith("d1") or level not in (0, 1):  # keep -Z0 (floor's reference) and -Z1
            lab.sh(BACKUP_HOST, f"rm -rf {path}")
    lab.sh(BACKUP_HOST, f"rm -f {BENCH}/dumps/c0.dump")


def run_restores(lab: BenchLab, result: SizeResult) -> None:
    dump = f"{BENCH}/dumps/c1.dump"
    restore = f"{BIN}/pg_restore -h {BENCH}/run -p {CLUSTER_PORT} --no-owner --exit-on-error"
    for name, jobs in (("single", 1), ("parallel", 2)):
        bench_sql(lab, f"CREATE DATABASE r_{name};")
        result.restore[name] = timed(
            lab, BACKUP_HOST, as_postgres(f"{restore} -j {jobs} -d r_{name} {dump}")
        )
        log.info("backup: pg_restore -j %d: %.1f s", jobs, result.restore[name])
        if name == "single":
            bench_sql(lab, "DROP DATABASE r_single;")
    # The floor: the same rows from plain text with COPY, the same tables and indexes.
    copy_out = "".join(f"COPY {t} TO '{BENCH}/floor/{t}.copy';\n" for t in TABLES)
    bench_sql(lab, copy_out, "r_parallel")
    bench_sql(lab, "CREATE DATABASE r_floor;")
    result.restore["floor_tables"] = timed(
        lab, BACKUP_HOST, as_postgres(f"{restore} --section=pre-data -d r_floor {dump}")
    )
    copy_in = "".join(f"COPY {t} FROM '{BENCH}/floor/{t}.copy';\n" for t in TABLES)
    result.restore["floor_copy"] = timed(
        lab, BACKUP_HOST, f"cd /tmp && {bench_psql('r_floor')}", stdin=copy_in
    )
    result.restore["floor_indexes"] = timed(
        lab, BACKUP_HOST, as_postgres(f"{restore} --section=post-data -d r_floor {dump}")
    )
    result.restore["floor"] = round(
        sum(result.restore[k] for k in ("floor_tables", "floor_copy", "floor_indexes")), 2
    )
    bench_sql(lab, "DROP DATABASE r_floor;")
    lab.sh(BACKUP_HOST, f"rm -f {BENCH}/floor/*")
    log.info("backup: floor %.1f s", result.restore["floor"])


def drill_report(lab: BenchLab, kind: str) -> dict[str, Any]:
    name = lab.sh(BACKUP_HOST, f"ls -t {BENCH}/reports/*-{kind}.json | head -1").strip()
    report: dict[str, Any] = json.loads(lab.sh(BACKUP_HOST, f"cat {name}"))
    lab.sh(BACKUP_HOST, f"rm -f {BENCH}/reports/*")
    return report


def drill_args(port: int) -> str:
    return (
        f"--scratch-dir {BENCH}/drill --port {port} --reports-dir {BENCH}/reports "
        f"--status-dir {BENCH}/status --no-progress"
    )


def grow_sql(jobs_pct: float, results_pct: float, seed: int) -> str:
    """New rows copied from a sample of the existing ones (new ids): appends to the tables and
    touches every index, as new uploads do."""
    # Built from numbers only, never from input.
    return (
        "INSERT INTO jobs SELECT gen_random_uuid(), session_id, status, input_type, file_name, "  # noqa: S608
        "file_size, error_code, error_message, created_at, updated_at, started_at, completed_at "
        f"FROM jobs TABLESAMPLE SYSTEM ({jobs_pct}) REPEATABLE ({seed});\n"
        "INSERT INTO results SELECT gen_random_uuid(), job_id, format_type, content, size, "
        f"generated_at FROM results TABLESAMPLE SYSTEM ({results_pct}) REPEATABLE ({seed});\n"
    )


def run_pgbackrest(lab: BenchLab, result: SizeResult) -> None:
    stop_cluster(lab)
    start_cluster(lab, archive=True)
    bench_sql(lab, HEARTBEAT_SQL + HEARTBEAT_BEAT + ";\n")
    lab.sh(BACKUP_HOST, f"cd /tmp && {as_postgres(f'{PGBACKREST} stanza-create')}")
    pgbackrest = result.pgbackrest
    pgbackrest["full_s"] = timed(lab, BACKUP_HOST, as_postgres(f"{PGBACKREST} --type=full backup"))
    bench_sql(lab, grow_sql(jobs_pct=10, results_pct=10, seed=1), "r_parallel")
    pgbackrest["diff_s"] = timed(lab, BACKUP_HOST, as_postgres(f"{PGBACKREST} --type=diff backup"))
    info = json.loads(lab.sh(BACKUP_HOST, as_postgres(f"{PGBACKREST} --output=json info")))
    backups = info[0]["backup"]
    full, diff = backups[0], backups[-1]
    pgbackrest["full_repo_bytes"] = full["info"]["repository"]["delta"]
    pgbackrest["diff_repo_bytes"] = diff["info"]["repository"]["delta"]
    pgbackrest["backup_db_bytes"] = diff["info"]["size"]
    stop_lsn = diff["lsn"]["stop"]
    # WAL after the differential backup: the replay that the PITR drill measures.
    bench_sql(lab, grow_sql(jobs_pct=20, results_pct=50, seed=2), "r_parallel")
    bench_sql(lab, HEARTBEAT_BEAT + ";\n")
    wal = bench_sql(
        lab, f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{stop_lsn}')::bigint;"
    ).strip()
    pgbackrest["wal_bytes"] = int(wal)
    lab.sh(BACKUP_HOST, f"cd /tmp && {as_postgres(f'{PGBACKREST} check')}")
    stop_cluster(lab)  # what the drill restores is in the scratch repository now
    proc = lab.ssh(
        BACKUP_HOST,
        f"cd /tmp && PGBACKREST_CONFIG_INCLUDE_PATH={BENCH}/conf.d pgstack-drill pitr "
        f"--cluster {STANZA} --stanza {STANZA} --pgbackrest-config {BENCH}/pgbackrest.conf "
        f"{drill_args(PITR_DRILL_PORT)}",
        timeout=7200,
    )
    report = drill_report(lab, "pitr")
    drill_phases = phases(report)
    result.pitr = {
        "exit_code": proc.returncode,
        "result": report.get("result"),
        "error": report.get("error"),
        "rto_s": report.get("rto_seconds"),
        "rpo_s": report.get("rpo_seconds"),
        "phases": drill_phases,
    }
    pgbackrest["restore_s"] = drill_phases.get("restore", 0.0)
    recover = drill_phases.get("recover", 0.0)
    pgbackrest["replay_s"] = recover
    pgbackrest["replay_mib_s"] = round(mib(int(wal)) / recover, 1) if recover else 0.0
    log.info("backup: pgBackRest %s; pitr drill %s", pgbackrest, result.pitr["result"])


def run_logical_drill(lab: BenchLab, result: SizeResult) -> None:
    config = {
        "version": 1,
        "cluster": "db1",
        "connection": {
            "host": lab.fqdn(DB_HOST),
            "port": 5432,
            "user": DUMP_ROLE,
            "passfile": PASSFILE,
            "sslmode": "verify-full",
            "sslrootcert": HOST_CA,
            "connect_timeout": 10,
        },
        "bin_dir": lab.pg_bin(BACKUP_HOST),
        "destination": f"{BENCH}/product/db1",
        "status_dir": f"{BENCH}/product",
        "compress_level": 1,
        "databases": [DATABASE],
        "retention": {"max_age_days": 7, "min_count": 3},
    }
    lab.sh(
        BACKUP_HOST,
        f"mkdir -p {BENCH}/product/db1 && cat > {BENCH}/product/pg_dump.yml",
        stdin=json.dumps(config),  # JSON is YAML
    )
    dump_s = timed(
        lab,
        BACKUP_HOST,
        f"pgstack-backup --config.file {BENCH}/product/pg_dump.yml --log.level warning dump",
    )
    proc = lab.ssh(
        BACKUP_HOST,
        f"cd /tmp && pgstack-drill logical --cluster db1 --database {DATABASE} "
        f"--dumps-dir {BENCH}/product --jobs 2 {drill_args(LOGICAL_DRILL_PORT)}",
        timeout=7200,
    )
    report = drill_report(lab, "logical")
    result.logical = {
        "dump_s": dump_s,
        "exit_code": proc.returncode,
        "result": report.get("result"),
        "error": report.get("error"),
        "rto_s": report.get("rto_seconds"),
        "phases": phases(report),
    }
    lab.sh(BACKUP_HOST, f"rm -rf {BENCH}/product/db1")
    log.info(
        "backup: logical drill %s, RTO %s s", result.logical["result"], report.get("rto_seconds")
    )


def run_size(lab: BenchLab, size_mb: float) -> SizeResult:
    result = SizeResult(size_mb=size_mb)
    free_mb = int(lab.sh(BACKUP_HOST, "df -Pm /var/tmp | tail -1 | awk '{print $4}'").strip())
    if free_mb < disk_needed_mb(size_mb):
        raise RuntimeError(
            f"backup1: {free_mb} MiB free in /var/tmp, {disk_needed_mb(size_mb):.0f} MiB needed"
        )
    try:
        prepare_backup1(lab)
        make_data(lab, result)
        run_dumps(lab, result)
        start_cluster(lab, archive=False)
        run_restores(lab, result)
        run_pgbackrest(lab, result)
        run_logical_drill(lab, result)
    finally:
        cleanup(lab)
    return result


# --- the section


def run(lab: BenchLab) -> SectionResult:
    sizes = parse_sizes(os.environ.get(SIZES_ENV), lab.quick)
    cleanup(lab)  # leftovers of a killed run
    results = [run_size(lab, size) for size in sizes]
    return build_result(results)


def build_result(results: Sequence[SizeResult]) -> SectionResult:
    dump_rows: list[dict[str, Cell]] = []
    for r in results:
        for d in r.dumps:
            dump_rows.append(
                {
                    "database MiB": r.db_mb,
                    "dump": d["dump"],
                    "seconds": d["seconds"],
                    "dump MiB": mib(d["bytes"]),
                    "of database": round(d["bytes"] / r.db_bytes, 3) if r.db_bytes else None,
                    "MiB/s": round(r.db_mb / d["seconds"], 1) if d["seconds"] else None,
                }
            )
    restore_rows: list[dict[str, Cell]] = []
    for r in results:
        floor = r.restore.get("floor") or 0.0
        restore_rows.append(
            {
                "database MiB": r.db_mb,
                "single s": r.restore.get("single"),
                "-j 2 s": r.restore.get("parallel"),
                "floor s": floor,
                "floor: COPY s": r.restore.get("floor_copy"),
                "floor: indexes s": r.restore.get("floor_indexes"),
                "single / floor": round(r.restore["single"] / floor, 2) if floor else None,
                "-j 2 / floor": round(r.restore["parallel"] / floor, 2) if floor else None,
            }
        )
    backrest_rows: list[dict[str, Cell]] = [
        {
            "database MiB": r.db_mb,
            "full s": r.pgbackrest.get("full_s"),
            "full repo MiB": mib(r.pgbackrest.get("full_repo_bytes", 0)),
            "diff s": r.pgbackrest.get("diff_s"),
            "diff repo MiB": mib(r.pgbackrest.get("diff_repo_bytes", 0)),
            "restore s": r.pgbackrest.get("restore_s"),
            "WAL MiB": mib(r.pgbackrest.get("wal_bytes", 0)),
            "replay s": r.pgbackrest.get("replay_s"),
            "replay MiB/s": r.pgbackrest.get("replay_mib_s"),
        }
        for r in results
    ]
    drill_rows: list[dict[str, Cell]] = []
    for r in results:
        for kind, data in (("logical", r.logical), ("pitr", r.pitr)):
            drill_rows.append(
                {
                    "database MiB": r.db_mb,
                    "drill": kind,
                    "result": data.get("result"),
                    "RTO s": data.get("rto_s"),
                    "phases": ", ".join(
                        f"{name} {seconds:.1f}" for name, seconds in data.get("phases", {}).items()
                    ),
                }
            )
    fits: dict[str, tuple[float, float]] = {}
    limit_rows: list[dict[str, Cell]] = []
    for kind in ("logical", "pitr"):
        points = [
            (r.db_mb, float(getattr(r, kind)["rto_s"]))
            for r in results
            if getattr(r, kind).get("rto_s") is not None
        ]
        if not points:
            continue
        fit = linear_fit(points)
        fits[kind] = fit
        at = size_at(RTO_LIMIT_S, fit)
        limit_rows.append(
            {
                "drill": kind,
                "s per GiB": round(fit[0] * 1024, 1),
                "fixed s": round(fit[1], 1),
                "points": len(points),
                "RTO = 1 h at (GiB)": round(at / 1024, 1) if at is not None else None,
            }
        )
    tables = (
        Table(
            "pg_dump on backup1, over verify-full TLS to db1",
            tuple(dump_rows[0].keys()) if dump_rows else (),
            tuple(dump_rows),
        ),
        Table(
            "pg_restore of the custom -Z1 dump on backup1, and the floor",
            tuple(restore_rows[0].keys()) if restore_rows else (),
            tuple(restore_rows),
        ),
        Table(
            "pgBackRest, scratch stanza on backup1 (zst, aes-256-cbc, process-max 2)",
            tuple(backrest_rows[0].keys()) if backrest_rows else (),
            tuple(backrest_rows),
        ),
        Table(
            "Drills (pgstack-drill) at each size",
            ("database MiB", "drill", "result", "RTO s", "phases"),
            tuple(drill_rows),
        ),
        Table(
            "Database size at which the RTO passes 1 h (linear extrapolation)",
            ("drill", "s per GiB", "fixed s", "points", "RTO = 1 h at (GiB)"),
            tuple(limit_rows),
        ),
    )
    curves = build_curves(results, fits)
    summary = build_summary(results, limit_rows)
    return SectionResult(
        name=SECTION.name,
        title=SECTION.title,
        tables=tables,
        curves=curves,
        discussion=discussion(results, limit_rows),
        summary=summary,
        raw={
            "sizes": [asdict(r) | {"db_mb": r.db_mb} for r in results],
            "fits": {
                kind: {"slope_s_per_mib": f[0], "intercept_s": f[1]} for kind, f in fits.items()
            },
        },
    )


def build_curves(
    results: Sequence[SizeResult], fits: dict[str, tuple[float, float]]
) -> tuple[Curve, ...]:
    dump_series: dict[str, list[tuple[float, float]]] = {}
    for r in results:
        for d in r.dumps:
            dump_series.setdefault(str(d["dump"]), []).append((r.db_mb, float(d["seconds"])))
    restore_series: dict[str, list[tuple[float, float]]] = {}
    for r in results:
        for key, name in (
            ("single", "pg_restore"),
            ("parallel", "pg_restore -j 2"),
            ("floor", "floor: COPY + indexes"),
        ):
            if key in r.restore:
                restore_series.setdefault(name, []).append((r.db_mb, r.restore[key]))
    rto_series: dict[str, list[tuple[float, float]]] = {}
    top = max((r.db_mb for r in results), default=1.0)
    for kind in ("logical", "pitr"):
        for r in results:
            rto = getattr(r, kind).get("rto_s")
            if rto is not None:
                rto_series.setdefault(f"{kind} drill", []).append((r.db_mb, float(rto)))
        if kind in fits:
            at = size_at(RTO_LIMIT_S, fits[kind])
            if at is not None:
                top = max(top, at)
                slope, intercept = fits[kind]
                low = min(r.db_mb for r in results)
                rto_series[f"{kind}, extrapolated"] = [
                    (low, slope * low + intercept),
                    (at, RTO_LIMIT_S),
                ]
    low_x = min((r.db_mb for r in results), default=1.0)
    rto_series["1 h"] = [(low_x, RTO_LIMIT_S), (top, RTO_LIMIT_S)]

    def frozen(
        series: dict[str, list[tuple[float, float]]],
    ) -> dict[str, tuple[tuple[float, float], ...]]:
        return {name: tuple(sorted(points)) for name, points in series.items()}

    return (
        Curve(
            "backup-dump-time",
            "pg_dump time by size, level and format",
            "database (MiB)",
            "seconds",
            frozen(dump_series),
        ),
        Curve(
            "backup-restore-time",
            "Restore time by size: one job, two jobs, the floor",
            "database (MiB)",
            "seconds",
            frozen(restore_series),
        ),
        Curve(
            "backup-rto",
            "Drill RTO by size, extrapolated linearly to 1 h",
            "database (MiB)",
            "seconds",
            frozen(rto_series),
            log_x=True,
            log_y=True,
        ),
    )


def build_summary(
    results: Sequence[SizeResult], limit_rows: Sequence[dict[str, Cell]]
) -> tuple[tuple[str, str], ...]:
    if not results:
        return ()
    big = results[-1]
    label = f"{big.db_mb:.0f} MiB"
    out: list[tuple[str, str]] = []
    for d in big.dumps:
        out.append((f"pg_dump {d['dump']} ({label})", f"{d['seconds']} s, {mib(d['bytes'])} MiB"))
    floor = big.restore.get("floor")
    if floor:
        out.append(
            (
                f"restore single / -j2 / floor ({label})",
                f"{big.restore['single']} / {big.restore['parallel']} / {floor} s "
                f"({big.restore['parallel'] / floor:.2f}x floor, goal <= {RESTORE_GOAL}x)",
            )
        )
    pb = big.pgbackrest
    if pb:
        out.append(
            (
                f"pgBackRest full / diff / restore ({label})",
                f"{pb.get('full_s')} / {pb.get('diff_s')} / {pb.get('restore_s')} s",
            )
        )
        out.append(("WAL replay", f"{pb.get('replay_mib_s')} MiB/s"))
    for kind in ("logical", "pitr"):
        rto = getattr(big, kind).get("rto_s")
        out.append((f"{kind} drill RTO ({label})", f"{rto} s ({getattr(big, kind).get('result')})"))
    for row in limit_rows:
        out.append((f"{row['drill']} RTO = 1 h at", f"{row['RTO = 1 h at (GiB)']} GiB (linear)"))
    return tuple(out)


def discussion(results: Sequence[SizeResult], limit_rows: Sequence[dict[str, Cell]]) -> str:
    sizes = ", ".join(f"{r.size_mb:g}" for r in results)
    parts = [
        f"Data: `pgstack-drill workload --size-mb` {sizes} (MiB of generated row text: the "
        f"applications' `jobs` and `results` with their five indexes) in a scratch database on "
        f"db1; the tables and curves use the database's own size (`pg_database_size`). The "
        f"dumps run on backup1 as the product runs them (`pg_dump` over verify-full TLS as "
        f"`pgstack_backup`); restores go into a scratch cluster on backup1 with the drills' "
        f"scratch settings (fsync off, socket only). The floor is the same tables, the same "
        f"rows loaded with `COPY FROM` plain text files already on disk, and the same indexes "
        f"and constraints built with one job: what a restore cannot avoid.",
        "pgBackRest runs against that scratch cluster with a scratch stanza in a scratch "
        "repository on backup1 (zst, aes-256-cbc, process-max 2 as in the lab), so the backup "
        "times leave out the TLS hop from db1 that the lab's real backups take; the restores are "
        "where the product restores (the PITR drill on backup1, from the local repository). "
        "The replay rate is the WAL written after the differential backup divided by the PITR "
        "drill's recover phase, which also counts the scratch server's start and promotion "
        "(an underestimate when the WAL is small).",
        "The RTOs are the drills' own (`pgstack-drill logical` of a `pgstack-backup` dump, "
        "`pgstack-drill pitr` of the scratch stanza), verification included. The size at which "
        "an RTO would pass one hour is a straight line through the measured points (least "
        "squares; through the origin with a single size), extrapolated far beyond them: "
        "memory, disk and WAL volume change the slope at larger sizes, so treat it as an order "
        "of magnitude for this 2-core machine, not a promise.",
        "Filling the scratch database writes WAL on db1 that the lab's archiver pushes into the "
        "real stanza's archive (about twice the data); it expires with the lab's retention. "
        "Nothing else of the real stanza is touched.",
    ]
    below = [r for r in results if r.restore.get("floor")]
    if below:
        ratios = ", ".join(
            f"{r.restore['parallel'] / r.restore['floor']:.2f}x at {r.db_mb:.0f} MiB" for r in below
        )
        parts.append(f"Restore with `-j 2` over the floor: {ratios} (goal <= {RESTORE_GOAL}x).")
    return "\n\n".join(parts)


SECTION = Section(name="backup", title="Backup and restore", run=run)

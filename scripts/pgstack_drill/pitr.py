"""``pgstack-drill pitr``: restore the pgBackRest backup into a scratch cluster, recover, verify.

Phases: backup info (``pgbackrest info``: a backup exists, disk estimate), restore (``pgbackrest
restore`` into a new scratch data directory, archiving off, tablespaces mapped inside the scratch
directory), recover (start on the scratch socket, replay WAL to the target, promote), verify (every
database answers, the expected tables and checks, the newest heartbeat). RTO is the time to the
end of verify; RPO is the simulated disaster time minus the newest heartbeat restored.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pgstack_drill import pg, scratch
from pgstack_drill.drill import Drill, Options, Outcome, add_common_arguments, execute
from pgstack_drill.errors import ExitCode, PreconditionError, UsageError, VerificationFailed
from pgstack_drill.progress import human_bytes
from pgstack_drill.schema import HEARTBEAT_NEWEST
from pgstack_drill.status import format_time

log = logging.getLogger(__name__)

EXPECT_TABLE = re.compile(r"^(?P<db>[^:]+):(?P<schema>[^.]+)\.(?P<table>.+)$")
# pg_controldata lines whose values a hot standby needs at least (else recovery stops).
CONTROL_SETTINGS = {
    "max_connections setting": "max_connections",
    "max_worker_processes setting": "max_worker_processes",
    "max_wal_senders setting": "max_wal_senders",
    "max_prepared_xacts setting": "max_prepared_transactions",
    "max_locks_per_xact setting": "max_locks_per_transaction",
}
SPARE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Target:
    kind: str  # "end" | "time" | "name"
    value: str | None = None

    def pgbackrest_options(self) -> list[str]:
        if self.kind == "time":
            return ["--type=time", f"--target={self.value}", "--target-action=promote"]
        if self.kind == "name":
            return ["--type=name", f"--target={self.value}", "--target-action=promote"]
        return ["--type=default"]

    def describe(self) -> str:
        return "the end of the archive" if self.kind == "end" else f"{self.kind} {self.value}"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "pitr",
        help="restore the pgBackRest backup into a scratch cluster, recover and verify",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    add_common_arguments(parser)
    parser.add_argument("--stanza", default="main", help="pgBackRest stanza (default main)")
    parser.add_argument(
        "--pgbackrest-config",
        type=Path,
        help="pgbackrest --config (default: pgBackRest's own default)",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--target-time", help="recover to this time (ISO 8601 with a zone)")
    target.add_argument(
        "--target-name", help="recover to this restore point (pg_create_restore_point)"
    )
    target.add_argument(
        "--target-end", action="store_true", help="recover to the end of the archive (the default)"
    )
    parser.add_argument(
        "--set", dest="backup_set", help="this backup label (default: as pgBackRest picks)"
    )
    parser.add_argument(
        "--disaster-time",
        help="the simulated disaster, for the RPO "
        "(ISO 8601; default: the drill's start when recovering to the end)",
    )
    parser.add_argument(
        "--heartbeat-database",
        default="postgres",
        help="database holding pgstack_heartbeat (default postgres)",
    )
    parser.add_argument(
        "--expect-table",
        action="append",
        default=[],
        metavar="DB:SCHEMA.TABLE",
        help="a table that must exist after recovery (repeatable; rows are counted)",
    )
    parser.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="DB:SQL",
        help="a query that must return true after recovery (repeatable)",
    )
    parser.add_argument(
        "--recovery-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="give up waiting for recovery after this long (default 3600)",
    )

    parser.set_defaults(run=run)


def _aware(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{option}: not an ISO 8601 time: {text!r}") from exc
    if moment.tzinfo is None:
        raise UsageError(f"{option}: give a time zone (e.g. 2026-11-23T10:15:00Z): {text!r}")
    return moment


def parse_expectations(
    tables: list[str], checks: list[str]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    expected = []
    for item in tables:
        match = EXPECT_TABLE.match(item)
        if match is None:
            raise UsageError(f"--expect-table: expected DB:SCHEMA.TABLE, got {item!r}")
        expected.append((match["db"], match["schema"], match["table"]))
    parsed_checks = []
    for item in checks:
        database, _, query = item.partition(":")
        if not database or not query.strip():
            raise UsageError(f"--check: expected DB:SQL, got {item!r}")
        parsed_checks.append((database, query.strip()))
    return expected, parsed_checks


def run(args: argparse.Namespace) -> ExitCode:
    if args.target_time:
        _aware(args.target_time, "--target-time")
        target = Target("time", args.target_time)
    elif args.target_name:
        target = Target("name", args.target_name)
    else:
        target = Target("end")
    disaster = _aware(args.disaster_time, "--disaster-time") if args.disaster_time else None
    expected, checks = parse_expectations(args.expect_table, args.check)
    if args.recovery_timeout <= 0:
        raise UsageError("--recovery-timeout: expected a positive number of seconds")
    options = Options.from_args("pitr", args, None)
    base = ["pgbackrest", f"--stanza={args.stanza}", "--log-level-console=warn"]
    if args.pgbackrest_config is not None:
        base.insert(1, f"--config={args.pgbackrest_config}")
    plan = Plan(
        base,
        target,
        args.backup_set,
        disaster,
        args.heartbeat_database,
        expected,
        checks,
        args.recovery_timeout,
    )
    return execute(options, lambda drill: run_body(drill, plan))


@dataclass(frozen=True)
class Plan:
    pgbackrest: list[str]
    target: Target
    backup_set: str | None
    disaster: datetime | None
    heartbeat_database: str
    expected: list[tuple[str, str, str]]
    checks: list[tuple[str, str]]
    recovery_timeout: float


def newest_backup(info: Any, backup_set: str | None) -> dict[str, Any]:
    """The backup pgBackRest will restore (the named set, or the newest), from ``info`` JSON."""
    try:
        stanza = info[0]
        backups = stanza.get("backup") or []
    except (IndexError, KeyError, TypeError, AttributeError) as exc:
        raise PreconditionError("pgbackrest info: no such stanza") from exc
    if backup_set is not None:
        backups = [b for b in backups if b.get("label") == backup_set]
    if not backups:
        message = stanza.get("status", {}).get("message", "no backup")
        wanted = f"no backup {backup_set!r}" if backup_set else "no backup"
        raise PreconditionError(
            f"pgbackrest info: {wanted} in stanza {stanza.get('name')} ({message})"
        )
    return dict(backups[-1])


def control_settings(text: str) -> dict[str, str]:
    """From pg_controldata's output, the settings the scratch server must have at least."""
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in CONTROL_SETTINGS and value.strip().isdigit():
            found[CONTROL_SETTINGS[name.strip()]] = value.strip()
    return found


def run_body(drill: Drill, plan: Plan) -> Outcome:
    runner = drill.runner
    with drill.phase("backup info"):
        result = runner.run(
            runner.as_owner([*plan.pgbackrest, "--output=json", "info"]),
            "pgbackrest info",
            timeout=300,
        )
        try:
            info = json.loads(result.stdout)
        except ValueError as exc:
            raise PreconditionError("pgbackrest info: output is not JSON") from exc
        backup = newest_backup(info, plan.backup_set)
        size = int(backup.get("info", {}).get("size", 0))
        drill.facts["source"] = {
            "stanza": info[0].get("name"),
            "backup": backup.get("label"),
            "backup_type": backup.get("type"),
            "backup_stopped_at": format_time(
                datetime.fromtimestamp(
                    int(backup.get("timestamp", {}).get("stop", 0)),
                    tz=drill.timer.started_at.tzinfo,
                )
            ),
            "database_size_bytes": size,
            "target": plan.target.describe(),
        }
        scratch.check_disk(drill.options.scratch_root, int(size * 1.3) + SPARE_BYTES)
        work = drill.new_scratch()
        drill.timer.note(f"backup {backup.get('label')}, {human_bytes(size)}")
    with drill.phase("restore", drill.scratch_probe()):
        restore = [
            *plan.pgbackrest,
            "--reset-pg1-host",
            f"--pg1-path={work.data_dir}",
            "--archive-mode=off",
            f"--tablespace-map-all={work.root / 'tablespaces'}",
            *plan.target.pgbackrest_options(),
        ]
        if plan.backup_set:
            restore.append(f"--set={plan.backup_set}")
        runner.run(runner.as_owner([*restore, "restore"]), "pgbackrest restore")
    with drill.phase("recover"):
        control = runner.run(
            runner.as_owner([work.tool("pg_controldata"), str(work.data_dir)]), "pg_controldata"
        )
        work.write_config(control_settings(control.stdout))
        work.start(timeout=plan.recovery_timeout)
        wait_promoted(work, plan.recovery_timeout)
    with drill.phase("verify"):
        verification, newest = verify(work, plan)
        drill.facts["verification"] = verification
        problems = verification["problems"]
        drill.timer.note(f"{len(verification['databases'])} databases answered")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise VerificationFailed(f"verification: {problems[0]}{more}")
    rto = drill.timer.elapsed()
    disaster = plan.disaster or (drill.timer.started_at if plan.target.kind == "end" else None)
    rpo = None
    note = ""
    if newest is None:
        note = f"no pgstack_heartbeat row in database {plan.heartbeat_database}"
    elif disaster is not None:
        rpo = max(0.0, (disaster - newest).total_seconds())
        note = f"disaster at {format_time(disaster)}, newest heartbeat {newest.isoformat()}"
    else:
        note = (
            f"newest heartbeat {newest.isoformat()}; "
            f"no disaster time given for a {plan.target.kind} target"
        )
    drill.facts["source"]["newest_heartbeat"] = newest.isoformat() if newest else None
    return Outcome(
        source=drill.facts["source"],
        verification=verification,
        rto_seconds=rto,
        rpo_seconds=rpo,
        rpo_required=disaster is not None,
        rpo_note=note,
    )


def wait_promoted(work: scratch.Scratch, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not work.alive():
            raise VerificationFailed(f"recovery failed: {work.log_problem()}")
        try:
            with pg.connect(work.conninfo("postgres")) as conn:
                if pg.scalar(conn, "SELECT pg_is_in_recovery()") is False:
                    return
        except Exception as exc:
            log.debug("waiting for promotion: %s", exc)
        if time.monotonic() > deadline:
            raise VerificationFailed(f"recovery did not finish within {timeout:.0f} s")
        time.sleep(0.2)


def verify(work: scratch.Scratch, plan: Plan) -> tuple[dict[str, Any], datetime | None]:
    problems: list[str] = []
    databases: dict[str, int] = {}
    with pg.connect(work.conninfo("postgres")) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database "
                "WHERE datallowconn AND NOT datistemplate ORDER BY 1"
            ).fetchall()
        ]
    for name in names:
        try:
            with pg.connect(work.conninfo(name)) as conn:
                databases[name] = len(
                    conn.execute(
                        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind IN ('r', 'p') "
                        "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                    ).fetchall()
                )
        except Exception as exc:
            problems.append(f"database {name} does not answer: {str(exc).splitlines()[0]}")
    tables = [_expected_table(work, item, databases, problems) for item in plan.expected]
    checks = []
    for database, query in plan.checks:
        ok = False
        try:
            with pg.connect(work.conninfo(database)) as conn:
                ok = pg.scalar(conn, query) is True
        except Exception as exc:
            problems.append(f"check on {database} failed: {str(exc).splitlines()[0]}")
        else:
            if not ok:
                problems.append(f"check on {database} is not true: {query}")
        checks.append({"database": database, "sql": query, "ok": ok})
    newest = None
    if plan.heartbeat_database in databases:
        with pg.connect(work.conninfo(plan.heartbeat_database)) as conn:
            if pg.scalar(conn, "SELECT to_regclass('pgstack_heartbeat') IS NOT NULL"):
                newest = pg.scalar(conn, HEARTBEAT_NEWEST)
    verification = {
        "databases": databases,
        "tables": tables,
        "checks": checks,
        "problems": problems,
    }
    return verification, newest


def _expected_table(
    work: scratch.Scratch,
    item: tuple[str, str, str],
    databases: dict[str, int],
    problems: list[str],
) -> dict[str, Any]:
    """Whether ``DB:SCHEMA.TABLE`` exists in the restored cluster, and its row count."""
    from psycopg import sql  # noqa: PLC0415

    database, schema_name, table = item
    entry: dict[str, Any] = {
        "table": f"{database}:{schema_name}.{table}",
        "rows": None,
        "ok": False,
    }
    if database not in databases:
        problems.append(f"{entry['table']}: database {database} is not in the restored cluster")
        return entry
    with pg.connect(work.conninfo(database)) as conn:
        name = sql.Identifier(schema_name, table).as_string(conn)
        if not pg.scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (name,)):
            problems.append(f"{entry['table']}: missing from the restored cluster")
            return entry
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema_name, table))
        entry["rows"] = pg.scalar(conn, query)
        entry["ok"] = True
    return entry

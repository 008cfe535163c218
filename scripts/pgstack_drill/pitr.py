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
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pgstack_drill import pg, scratch, verification
from pgstack_drill.drill import Drill, Options, Outcome, add_common_arguments, execute
from pgstack_drill.errors import ExitCode, PreconditionError, UsageError, VerificationFailed
from pgstack_drill.progress import human_bytes
from pgstack_drill.status import format_time

log = logging.getLogger(__name__)

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
    verification.add_arguments(parser, "after recovery")
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


def run(args: argparse.Namespace) -> ExitCode:
    if args.target_time:
        _aware(args.target_time, "--target-time")
        target = Target("time", args.target_time)
    elif args.target_name:
        target = Target("name", args.target_name)
    else:
        target = Target("end")
    disaster = _aware(args.disaster_time, "--disaster-time") if args.disaster_time else None
    expectations = verification.parse(args)
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
        expectations,
        args.recovery_timeout,
    )
    return execute(options, lambda drill: run_body(drill, plan))


@dataclass(frozen=True)
class Plan:
    pgbackrest: list[str]
    target: Target
    backup_set: str | None
    disaster: datetime | None
    expectations: verification.Expectations
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
        scratch.check_disk(drill.scratch_options.root, int(size * 1.3) + SPARE_BYTES)
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
        verified = verification.verify(
            lambda database: pg.connect(work.conninfo(database)),
            plan.expectations,
            step=lambda text: drill.progress.probe(lambda: text),
        )
        drill.facts["verification"] = verified.report
        drill.timer.note(f"{len(verified.report['databases'])} databases answered")
        verification.raise_problems(verified.report)
    rto = drill.timer.elapsed()
    newest = verified.newest_heartbeat
    disaster = plan.disaster or (drill.timer.started_at if plan.target.kind == "end" else None)
    rpo = None
    note = ""
    if newest is None:
        note = verification.no_heartbeat(plan.expectations)
    elif disaster is not None:
        rpo, note = verification.rpo(disaster, newest)
    else:
        note = (
            f"newest heartbeat {newest.isoformat()}; "
            f"no disaster time given for a {plan.target.kind} target"
        )
    drill.facts["source"]["newest_heartbeat"] = newest.isoformat() if newest else None
    return Outcome(
        source=drill.facts["source"],
        verification=verified.report,
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

"""``pgstack-drill rebuild``: verify a rebuilt database host, read-only, over the network.

A playbook rebuilds a lost database host (provision, ``pgbackrest restore``, converge) and then
runs this on the backup host with the times of its own phases. Nothing is restored here: the
live cluster is verified (a primary; every database answers, the expected tables and checks, the
newest heartbeat) in the ``verify`` phase. RTO is the end of verify minus ``--started-at``; RPO
is the disaster time (default ``--started-at``) minus the newest heartbeat restored.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pgstack_drill import pg, verification
from pgstack_drill.drill import Drill, Options, Outcome, add_report_arguments, execute
from pgstack_drill.errors import ExitCode, PreconditionError, UsageError
from pgstack_drill.status import format_time, parse_time
from pgstack_drill.timing import Clock, Phase, SystemClock

log = logging.getLogger(__name__)

PHASE = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*)=(?P<start>[^/]*)/(?P<end>[^/]*)$")
VERIFY = "verify"
# How far a given time may lie ahead of this host's clock (the playbook's clock may differ).
CLOCK_TOLERANCE = timedelta(seconds=60)
CONNECT_TIMEOUT = "10"
APPLICATION_NAME = "pgstack-drill-rebuild"
READ_ONLY = "-c default_transaction_read_only=on"
SERVER_QUERY = (
    "SELECT s.system_identifier::text, pg_is_in_recovery(), current_setting('server_version'), "
    "CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint()) "
    "ELSE ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::int END "
    "FROM pg_control_system() s"
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "rebuild",
        help="verify a database host rebuilt from the backup (read-only, over the network)",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    add_report_arguments(parser)
    pg.add_dbname_argument(parser, "the rebuilt cluster (its database lists the others)")
    parser.add_argument(
        "--started-at",
        required=True,
        metavar="TIME",
        help="when the rebuild began, UTC YYYY-MM-DDTHH:MM:SSZ (the RTO counts from here)",
    )
    parser.add_argument(
        "--disaster-time",
        metavar="TIME",
        help="when the host was lost, for the RPO (UTC; default --started-at)",
    )
    parser.add_argument(
        "--phase",
        action="append",
        default=[],
        metavar="NAME=START/END",
        help="a phase the playbook ran, UTC times (repeatable, e.g. restore=T2/T3)",
    )
    verification.add_arguments(parser, "on the rebuilt cluster")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Plan:
    dbname: str
    host: str  # host:port, for messages
    first: str  # the database of --dbname, which lists the others
    started_at: datetime
    disaster: datetime
    phases: tuple[Phase, ...]
    expectations: verification.Expectations


def parse_utc(text: str, option: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(f"{option}: expected UTC YYYY-MM-DDTHH:MM:SSZ, got {text!r}") from exc


def parse_phases(items: list[str], started_at: datetime, now: datetime) -> tuple[Phase, ...]:
    """``NAME=START/END`` of the playbook's phases, as offsets from ``started_at``."""
    phases = []
    seen: set[str] = set()
    latest = now + CLOCK_TOLERANCE
    for item in items:
        match = PHASE.match(item)
        if match is None:
            raise UsageError(
                f"--phase: expected NAME=START/END (NAME [a-z][a-z0-9_-]*), got {item!r}"
            )
        name = match["name"]
        option = f"--phase {name}"
        if name == VERIFY:
            raise UsageError(f"{option}: the name of the drill's own phase")
        if name in seen:
            raise UsageError(f"{option}: given twice")
        seen.add(name)
        start = parse_utc(match["start"], f"{option} START")
        end = parse_utc(match["end"], f"{option} END")
        if start < started_at:
            raise UsageError(f"{option}: starts before --started-at {format_time(started_at)}")
        if end < start:
            raise UsageError(f"{option}: ends before it starts")
        if end > latest:
            raise UsageError(f"{option}: ends in the future (now {format_time(now)})")
        phases.append(
            Phase(
                name,
                (start - started_at).total_seconds(),
                (end - start).total_seconds(),
                "playbook",
            )
        )
    return tuple(phases)


def dbname_target(dbname: str) -> tuple[str, str]:
    """``host:port`` (for messages) and the database of a conninfo, refusing a malformed one."""
    from psycopg import ProgrammingError  # noqa: PLC0415
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    try:
        params = conninfo_to_dict(dbname)
    except ProgrammingError as exc:
        raise UsageError(f"--dbname: not a libpq connection string: {exc}") from exc
    if params.get("password"):
        raise UsageError("--dbname: no password on the command line; use a passfile")
    host = str(params.get("host") or params.get("hostaddr") or "the local socket")
    return f"{host}:{params.get('port') or 5432}", str(params.get("dbname") or "postgres")


def parse_plan(args: argparse.Namespace, now: datetime) -> Plan:
    """Every option checked (exit 2 naming it) before anything is written."""
    dbname = pg.checked_dbname(args.dbname)
    host, first = dbname_target(dbname)
    started_at = parse_utc(args.started_at, "--started-at")
    if started_at > now + CLOCK_TOLERANCE:
        raise UsageError(f"--started-at: in the future (now {format_time(now)})")
    disaster = started_at
    if args.disaster_time:
        disaster = parse_utc(args.disaster_time, "--disaster-time")
        if disaster > started_at:
            raise UsageError(
                f"--disaster-time: after --started-at {format_time(started_at)} "
                "(the host is lost before its rebuild begins)"
            )
    phases = parse_phases(args.phase, started_at, now)
    return Plan(dbname, host, first, started_at, disaster, phases, verification.parse(args))


def run(
    args: argparse.Namespace,
    clock: Clock | None = None,
    connect: verification.Connect | None = None,
) -> ExitCode:
    """The command; ``clock`` and ``connect`` (the rebuilt cluster's sessions) for tests."""
    clock = clock or SystemClock()
    plan = parse_plan(args, clock.now())
    options = Options.from_args("rebuild", args, None, scratch=False)
    sessions = connect or connector(plan.dbname)
    return execute(
        options,
        lambda drill: run_body(drill, plan, sessions),
        clock=clock,
        started_at=plan.started_at,
    )


def connector(dbname: str) -> verification.Connect:
    """Read-only sessions on the database named, the rest of ``dbname`` kept."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: PLC0415

    given = conninfo_to_dict(dbname)
    options = " ".join(str(o) for o in (given.get("options"), READ_ONLY) if o)
    defaults = {"connect_timeout": CONNECT_TIMEOUT, "application_name": APPLICATION_NAME}
    extra = {key: value for key, value in defaults.items() if key not in given}

    def connect(database: str) -> Any:
        return pg.connect(make_conninfo(dbname, dbname=database, options=options, **extra))

    return connect


def server_facts(connect: verification.Connect, first: str, host: str) -> dict[str, Any]:
    """The server's identity; the rebuilt host unreachable (or refusing us) is a precondition."""
    try:
        conn = connect(first)
    except Exception as exc:
        message = " ".join(str(exc).split())[:500]
        raise PreconditionError(f"cannot connect to {host}: {message}") from exc
    with conn:
        system_identifier, in_recovery, version, timeline = conn.execute(SERVER_QUERY).fetchone()
        return {
            "host": conn.info.host,
            "port": conn.info.port,
            "dbname": conn.info.dbname,
            "user": conn.info.user,
            "system_identifier": system_identifier,
            "timeline": timeline,
            "server_version": version,
            "in_recovery": in_recovery,
        }


def measure_rpo(plan: Plan, newest: datetime | None) -> tuple[float | None, str]:
    """The RPO and how it was measured; None (with the reason) when it cannot be."""
    if newest is None:
        return None, verification.no_heartbeat(plan.expectations)
    if newest > plan.started_at:
        return None, (
            f"the newest heartbeat {newest.isoformat()} is after --started-at "
            f"{format_time(plan.started_at)}: it was written on the rebuilt server, "
            "not restored from the backup"
        )
    return verification.rpo(plan.disaster, newest)


def run_body(drill: Drill, plan: Plan, connect: verification.Connect) -> Outcome:
    for phase in plan.phases:
        drill.timer.record(phase)
    with drill.phase(VERIFY):
        source = server_facts(connect, plan.first, plan.host)
        source["disaster_time"] = format_time(plan.disaster)
        drill.facts["source"] = source
        problems = []
        if source["in_recovery"]:
            problems.append(f"{plan.host} is in recovery (a standby), not a primary")
        verified = verification.verify(
            connect,
            plan.expectations,
            first=plan.first,
            where="the rebuilt cluster",
            problems=problems,
            step=lambda text: drill.progress.probe(lambda: text),
        )
        newest = verified.newest_heartbeat
        source["newest_heartbeat"] = newest.isoformat() if newest else None
        drill.facts["verification"] = verified.report
        drill.timer.note(f"{len(verified.report['databases'])} databases answered")
        verification.raise_problems(verified.report)
    rto = drill.timer.elapsed()
    rpo, note = measure_rpo(plan, newest)
    return Outcome(
        source=source,
        verification=verified.report,
        rto_seconds=rto,
        rpo_seconds=rpo,
        rpo_required=True,
        rpo_note=note,
    )

"""What every drill shares: options, timing, progress, signals, verdict, reports, status, cleanup.

A drill body (``logical.run_body``, ``pitr.run_body``, ``rebuild.run_body``) does its phases in a
:class:`Drill` and returns an :class:`Outcome`; :func:`execute` turns that (or the exception that
ended the body) into the verdict against the objectives, the reports, the status file and the exit
code, and removes the scratch state whatever happened. A drill that restores nothing (rebuild)
has no scratch options: no scratch directory, lock or cleanup.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pgstack_common.signals import signals_ignored, signals_raise
from pgstack_drill import report, scratch, status
from pgstack_drill.errors import DrillError, ExitCode, PreconditionError, Terminated, UsageError
from pgstack_drill.proc import Runner
from pgstack_drill.progress import Progress, directory_bytes, human_bytes
from pgstack_drill.scratch import Scratch
from pgstack_drill.timing import Clock, PhaseTimer, SystemClock

log = logging.getLogger(__name__)

DEFAULT_SCRATCH = Path("/var/lib/pgstack/drills/scratch")
DEFAULT_REPORTS = Path("/var/lib/pgstack/drills/reports")
DEFAULT_STATUS = Path("/var/lib/pgstack/status")
# Debian installs each PostgreSQL major's server under <root>/<major>/bin; without --bin-dir a
# drill uses the one the backup host has (the restore_drill role installs its release's major).
SERVER_ROOT = Path("/usr/lib/postgresql")
DEFAULT_PORT = 55432
RTO_OBJECTIVE = 3600.0
RPO_OBJECTIVE = 300.0


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the drills that restore into a scratch cluster (logical, pitr)."""
    add_report_arguments(parser)
    add_scratch_arguments(parser)


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every drill takes: what is drilled, where results go, the objectives."""
    parser.add_argument(
        "--cluster",
        required=True,
        help="inventory name of the database host whose backup is drilled",
    )
    parser.add_argument(
        "--reports-dir",
        type=Path,
        default=DEFAULT_REPORTS,
        help=f"JSON, Markdown and HTML reports, and their history (default {DEFAULT_REPORTS})",
    )
    parser.add_argument(
        "--status-dir",
        type=Path,
        default=DEFAULT_STATUS,
        help=f"where the status file is written (default {DEFAULT_STATUS}; docs/drills.md)",
    )
    parser.add_argument(
        "--rto-objective",
        type=float,
        default=RTO_OBJECTIVE,
        metavar="SECONDS",
        help=f"recovery time objective (default {RTO_OBJECTIVE:.0f})",
    )
    parser.add_argument(
        "--rpo-objective",
        type=float,
        default=RPO_OBJECTIVE,
        metavar="SECONDS",
        help=f"recovery point objective (default {RPO_OBJECTIVE:.0f})",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress on stderr (default: only when stderr is a terminal)",
    )


def add_scratch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scratch-dir",
        type=Path,
        default=DEFAULT_SCRATCH,
        help=f"where scratch clusters are made (default {DEFAULT_SCRATCH})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port of the scratch postmaster, must be free (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--bin-dir",
        type=Path,
        default=None,
        help=f"PostgreSQL server binaries (default: the one server installed, {SERVER_ROOT}/*/bin)",
    )
    parser.add_argument(
        "--os-user",
        default="postgres",
        help="owner of the scratch cluster when run as root (default postgres)",
    )


@dataclass(frozen=True)
class ScratchOptions:
    """Where a restoring drill makes its scratch cluster."""

    root: Path
    port: int
    bin_dir: Path | None  # None: the one server installed (installed_bin_dir), found in preflight
    os_user: str


@dataclass(frozen=True)
class Options:
    kind: str
    cluster: str
    database: str | None
    reports_dir: Path
    status_dir: Path
    rto_objective: float
    rpo_objective: float
    progress: bool | None
    scratch: ScratchOptions | None  # None: the drill restores nothing (rebuild)

    @classmethod
    def from_args(
        cls, kind: str, args: argparse.Namespace, database: str | None, *, scratch: bool = True
    ) -> Options:
        if args.rto_objective <= 0 or args.rpo_objective <= 0:
            raise UsageError("objectives must be positive numbers of seconds")
        scratch_options = None
        if scratch:
            if not 1024 <= args.port <= 65535:
                raise UsageError("--port: expected 1024..65535")
            scratch_options = ScratchOptions(
                root=args.scratch_dir, port=args.port, bin_dir=args.bin_dir, os_user=args.os_user
            )
        return cls(
            kind=kind,
            cluster=args.cluster,
            database=database,
            reports_dir=args.reports_dir,
            status_dir=args.status_dir,
            rto_objective=args.rto_objective,
            rpo_objective=args.rpo_objective,
            progress=args.progress,
            scratch=scratch_options,
        )


@dataclass(frozen=True)
class Outcome:
    """What a drill body found: what it restored, what it checked, what it measured."""

    source: dict[str, Any]
    verification: dict[str, Any]
    rto_seconds: float
    rpo_seconds: float | None = None
    rpo_required: bool = False
    rpo_note: str = ""


@dataclass
class Drill:
    options: Options
    clock: Clock
    timer: PhaseTimer
    progress: Progress
    runner: Runner
    scratch: Scratch | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str, probe: Callable[[], str] | None = None) -> Iterator[None]:
        self.progress.phase(name, probe)
        with self.timer.phase(name):
            yield
        self.progress.probe(None)

    def scratch_probe(self) -> Callable[[], str]:
        def probe() -> str:
            if self.scratch is None:
                return ""
            return f"{human_bytes(directory_bytes(self.scratch.data_dir))} in the scratch cluster"

        return probe

    @property
    def scratch_options(self) -> ScratchOptions:
        if self.options.scratch is None:
            raise RuntimeError(f"a {self.options.kind} drill has no scratch options")
        return self.options.scratch

    def new_scratch(self, timezone: str = "UTC") -> Scratch:
        settings = self.scratch_options
        if settings.bin_dir is None:
            raise RuntimeError("new_scratch before preflight found the server binaries")
        self.scratch = Scratch.create(
            settings.root,
            self.options.kind,
            self.timer.started_at,
            runner=self.runner,
            bin_dir=settings.bin_dir,
            port=settings.port,
            timezone=timezone,
        )
        return self.scratch


def installed_bin_dir(server_root: Path) -> Path:
    """The bin directory of the one PostgreSQL server installed under ``server_root``."""
    found = sorted(path.parent for path in server_root.glob("*/bin/pg_ctl"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise PreconditionError(
            f"no PostgreSQL server installed ({server_root}/*/bin/pg_ctl): install the"
            " postgresql-<major> package of the database host's major, or give --bin-dir"
        )
    raise PreconditionError(
        f"{len(found)} PostgreSQL servers installed ({', '.join(map(str, found))}):"
        " give --bin-dir of the database host's major"
    )


def preflight(settings: ScratchOptions) -> ScratchOptions:
    """The checks every restoring drill makes before it creates anything; the settings with the
    server binaries found when --bin-dir was not given."""
    root = settings.root
    if not root.is_dir():
        raise PreconditionError(f"--scratch-dir {root}: not a directory")
    scratch.check_target(root, settings.port)
    if settings.bin_dir is None:
        settings = dataclasses.replace(settings, bin_dir=installed_bin_dir(SERVER_ROOT))
    elif not (settings.bin_dir / "pg_ctl").is_file():
        raise PreconditionError(
            f"--bin-dir {settings.bin_dir}: no pg_ctl (PostgreSQL server package)"
        )
    return settings


def verdict(options: Options, outcome: Outcome) -> list[str]:
    """Why the drill missed an objective; empty when it met both (or the RPO is not asked for)."""
    missed = []
    if outcome.rto_seconds > options.rto_objective:
        missed.append(
            f"RTO {outcome.rto_seconds:.1f} s exceeds the objective {options.rto_objective:.0f} s"
        )
    if outcome.rpo_seconds is not None and outcome.rpo_seconds > options.rpo_objective:
        missed.append(
            f"RPO {outcome.rpo_seconds:.1f} s exceeds the objective {options.rpo_objective:.0f} s"
        )
    elif outcome.rpo_seconds is None and outcome.rpo_required:
        missed.append(f"RPO not measured: {outcome.rpo_note or 'no heartbeat found'}")
    return missed


def _guarded(
    drill: Drill, body: Callable[[Drill], Outcome]
) -> tuple[Outcome | None, str | None, ExitCode]:
    """Run the body with the checks before and the cleanup after; map what ended it to a code."""
    settings = drill.options.scratch
    try:
        if settings is None:
            return body(drill), None, ExitCode.OK
        settings = preflight(settings)
        drill.options = dataclasses.replace(drill.options, scratch=settings)
        with scratch.locked(settings.root):
            stale = scratch.remove_stale(settings.root)
            if stale:
                log.warning("removed scratch left by an earlier drill: %s", ", ".join(stale))
            try:
                return body(drill), None, ExitCode.OK
            finally:
                with signals_ignored(), drill.phase("cleanup"):
                    if drill.scratch is not None:
                        drill.scratch.remove()
    except DrillError as exc:
        return None, str(exc), exc.exit_code
    except Terminated as exc:
        return None, str(exc), ExitCode.UNEXPECTED
    except Exception as exc:
        log.exception("the drill failed unexpectedly")
        return None, f"unexpected: {type(exc).__name__}: {exc}"[:500], ExitCode.UNEXPECTED


def execute(
    options: Options,
    body: Callable[[Drill], Outcome],
    clock: Clock | None = None,
    stream: Any = None,
    started_at: datetime | None = None,
) -> ExitCode:
    """Run ``body``; ``started_at``, when given, is when the drill began (before this process)."""
    clock = clock or SystemClock()
    runner = Runner(options.scratch.os_user if options.scratch else "postgres")
    timer = PhaseTimer(clock, started_at)
    progress = Progress(timer.elapsed, stream=stream, enabled=options.progress)
    drill = Drill(options=options, clock=clock, timer=timer, progress=progress, runner=runner)
    status_file = status.status_path(
        options.status_dir, options.cluster, options.kind, options.database
    )
    current = status.read_status(status_file)
    shared = None
    if current is None and options.kind == "logical" and options.database:
        shared = status.shared_history(options.status_dir, options.cluster, options.database)
    current = (
        current
        or shared
        or status.Status(
            drill=options.kind,
            cluster=options.cluster,
            database=options.database,
            rto_objective=options.rto_objective,
            rpo_objective=options.rpo_objective,
        )
    )
    current = dataclasses.replace(
        current,
        database=options.database,
        rto_objective=options.rto_objective,
        rpo_objective=options.rpo_objective,
    )
    started_at = timer.started_at.replace(microsecond=0)
    current = _record(status_file, current, status.Attempt(started_at=started_at, result="running"))
    if shared is not None and status_file.exists():  # its history lives on in the database's file
        _remove(status.shared_logical_path(options.status_dir, options.cluster))

    with progress, signals_raise():
        outcome, error, code = _guarded(drill, body)
    # The outcome is known: a stop from here on waits for the report and the status (a few
    # milliseconds), so that the last attempt never stays "running".
    with signals_ignored():
        return _finish(
            drill, status_file, current, started_at, outcome=outcome, error=error, code=code
        )


def _finish(
    drill: Drill,
    status_file: Path,
    current: status.Status,
    started_at: datetime,
    *,
    outcome: Outcome | None,
    error: str | None,
    code: ExitCode,
) -> ExitCode:
    """The verdict, the reports and the attempt's final status, once the drill has ended."""
    options, clock = drill.options, drill.clock
    if outcome is not None and code == ExitCode.OK:
        missed = verdict(options, outcome)
        if missed:
            error, code = "; ".join(missed), ExitCode.VERIFICATION_FAILED
    if error is not None:
        log.error("%s drill of %s: %s", options.kind, options.cluster, error)
    finished_at = clock.now().replace(microsecond=0)
    result: status.Result = {ExitCode.OK: "passed", ExitCode.VERIFICATION_FAILED: "failed"}.get(
        code, "error"
    )  # type: ignore[assignment]
    doc = report.build(
        drill=options.kind,
        cluster=options.cluster,
        database=options.database,
        host=socket.gethostname(),
        started_at=started_at,
        finished_at=finished_at,
        result=result,
        exit_code=int(code),
        error=error,
        objectives={"rto_seconds": options.rto_objective, "rpo_seconds": options.rpo_objective},
        phases=drill.timer.phases,
        facts=drill.facts,
        outcome=dataclasses.asdict(outcome) if outcome is not None else None,
    )
    report_path = None
    try:
        report_path = report.write_all(options.reports_dir, doc)
    except OSError as exc:
        log.error("cannot write the report in %s: %s", options.reports_dir, exc.strerror)
    _record(
        status_file,
        current,
        status.Attempt(
            started_at=started_at,
            result=result,
            finished_at=finished_at,
            exit_code=int(code),
            rto_seconds=outcome.rto_seconds if outcome else None,
            rpo_seconds=outcome.rpo_seconds if outcome else None,
            error=error,
            report=str(report_path) if report_path else None,
        ),
    )
    print(report.summary_line(doc))
    if report_path is not None:
        print(f"report: {report_path} (.md, .html beside it)")
    return code


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.error("cannot remove %s: %s", path, exc.strerror)


def _record(path: Path, current: status.Status, attempt: status.Attempt) -> status.Status:
    try:
        return status.record(path, current, attempt)
    except OSError as exc:
        log.error("cannot write the status file %s: %s", path, exc.strerror)
        return current

"""pgstack-backup: ``dump`` (scheduled or labelled runs), ``prune``, ``finalize`` (ExecStopPost).

Exit codes: 0 ok, 1 a dump or its read-back check failed, 2 usage or configuration, 3 precondition
(another run holds the lock, destination or status file not writable), 4 unexpected.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import logging
import re
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pgstack_backup.config import Config, load_config
from pgstack_backup.dump import Runner
from pgstack_backup.errors import BackupError, ConfigError, ExitCode, PreconditionError, Terminated
from pgstack_backup.status import Attempt, Status, read_status, record, status_path
from pgstack_common.signals import raise_terminated

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/pgstack/pg_dump.yml")
# A labelled dump's suffix and the name of its restore point (pg_create_restore_point takes at most
# 63 bytes). The same rule as plugins/test/preflight.py (RESTORE_POINT_LABEL), which
# playbooks/pre_migration.yml applies; tests/unit/test_restore_point_label.py checks both.
LABEL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _lock(config: Config) -> int:
    """Hold an exclusive lock for the whole run: one dump run at a time per status directory."""
    import os  # noqa: PLC0415

    path = config.status_dir / "pg_dump.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise PreconditionError("another pgstack-backup dump is running") from exc
    return fd


def _record(path: Path, status: Status, attempt: Attempt) -> Status | None:
    """record(); None when the status file cannot be written (a full filesystem): the previous
    file stays whole (it is replaced atomically) and the error is logged."""
    try:
        return record(path, status, attempt)
    except OSError as exc:
        log.error("cannot write the status file %s: %s", path, exc.strerror or exc)
        return None


def run_dump(config: Config, databases: Sequence[str], label: str | None) -> ExitCode:
    runner = Runner(config, now=utc_now)
    _lock(config)
    worst = ExitCode.OK
    for database in databases:
        path = status_path(config.status_dir, config.cluster, database)
        started_at = utc_now()
        began = time.monotonic()
        running = Attempt(started_at=started_at, exit_status="running")
        status = _record(path, read_status(path, config.cluster, database), running)
        if status is None:
            # A dump nobody could see: none is taken, and retention does not run.
            log.error("dump of %s not started: its status file cannot record it", database)
            worst = max(worst, ExitCode.PRECONDITION)
            continue
        try:
            result = runner.dump(database, label)
            if label is None:
                runner.prune(database)
        except Terminated as exc:
            log.error("dump of %s: %s", database, exc)
            _record(path, status, _failed(started_at, began, str(exc)))
            return ExitCode.VERIFICATION_FAILED
        except BackupError as exc:
            log.error("dump of %s failed: %s", database, exc)
            attempt = _failed(started_at, began, str(exc))
            code = exc.exit_code
        except Exception as exc:
            log.exception("dump of %s failed unexpectedly", database)
            attempt = _failed(started_at, began, f"unexpected: {type(exc).__name__}")
            code = ExitCode.UNEXPECTED
        else:
            attempt = Attempt(
                started_at=started_at,
                finished_at=utc_now(),
                duration_seconds=time.monotonic() - began,
                exit_status="success",
                path=str(result.path),
                size_bytes=result.size_bytes,
            )
            code = ExitCode.OK
        if _record(path, status, attempt) is None:
            code = max(code, ExitCode.PRECONDITION)
        worst = max(worst, code)
    return worst


def _failed(started_at: datetime, began: float, error: str) -> Attempt:
    return Attempt(
        started_at=started_at,
        finished_at=utc_now(),
        duration_seconds=time.monotonic() - began,
        exit_status="failed",
        error=error,
    )


def run_prune(config: Config, databases: Sequence[str]) -> ExitCode:
    """Apply retention now (after changing it, or to check it with faked ages)."""
    runner = Runner(config, now=utc_now)
    _lock(config)
    for database in databases:
        for name in runner.prune(database):
            print(f"deleted {database}/{name}")
    return ExitCode.OK


def run_finalize(config: Config, service_result: str) -> ExitCode:
    """After the service stopped: an attempt still "running" was killed before it could record."""
    code = ExitCode.OK
    for database in config.databases:
        path = status_path(config.status_dir, config.cluster, database)
        status = read_status(path, config.cluster, database)
        attempt = status.last_attempt
        if attempt is None or attempt.exit_status != "running":
            continue
        finished = utc_now()
        failed = dataclasses.replace(
            attempt,
            exit_status="failed",
            finished_at=finished,
            duration_seconds=(finished - attempt.started_at).total_seconds(),
            error=f"the run ended before recording a result (service result: {service_result})",
        )
        log.error("dump of %s was interrupted (%s)", database, service_result)
        if _record(path, status, failed) is None:
            code = ExitCode.PRECONDITION
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgstack-backup", description=__doc__.splitlines()[0])
    parser.add_argument("--config.file", dest="config", type=Path, default=DEFAULT_CONFIG,
                        help=f"configuration file (default {DEFAULT_CONFIG})")  # fmt: skip
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=["debug", "info", "warning", "error"])  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    dump = commands.add_parser("dump", help="dump the configured databases now")
    dump.add_argument("--database", action="append", default=[],
                      help="only this database (repeatable; default: all configured)")  # fmt: skip
    dump.add_argument("--label", help="a labelled dump (<stamp>-<label>), never pruned")
    prune = commands.add_parser("prune", help="apply retention to the dumps now")
    prune.add_argument("--database", action="append", default=[],
                       help="only this database (repeatable; default: all configured)")  # fmt: skip
    finalize = commands.add_parser("finalize", help="mark interrupted attempts failed")
    finalize.add_argument("--service-result", default="unknown",
                          help="systemd's $SERVICE_RESULT, recorded with the failure")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
        if args.command == "finalize":
            return run_finalize(config, args.service_result)
        unknown = sorted(set(args.database) - set(config.databases))
        if unknown:
            raise ConfigError(f"--database: not in {args.config}: {', '.join(unknown)}")
        if getattr(args, "label", None) is not None and not LABEL.fullmatch(args.label):
            raise ConfigError(
                f"--label: 1-63 lower-case letters, digits, '.', '_', '-', starting with a letter "
                f"or digit: {args.label!r}"
            )
        signal.signal(signal.SIGTERM, raise_terminated)
        if args.command == "prune":
            return run_prune(config, args.database or config.databases)
        return run_dump(config, args.database or config.databases, args.label)
    except BackupError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except Terminated as exc:
        log.error("%s", exc)
        return ExitCode.VERIFICATION_FAILED

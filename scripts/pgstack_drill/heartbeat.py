"""``pgstack-drill heartbeat``: write the heartbeat row on the primary, every second.

``pgstack_heartbeat`` holds one row whose ``beat_at`` is rewritten each ``--interval``; a PITR
drill reads the newest ``beat_at`` in the restored cluster to measure the RPO. Runs until stopped
(``--count 0``, as a service) or ``--count`` times; a lost connection is retried every interval.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from pgstack_drill import pg
from pgstack_drill.errors import ExitCode, UsageError
from pgstack_drill.schema import HEARTBEAT_BEAT, HEARTBEAT_EXISTS, HEARTBEAT_SQL

log = logging.getLogger(__name__)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "heartbeat",
        help="write the RPO heartbeat row every second",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    pg.add_dbname_argument(parser, "the primary's database")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between beats (1)")
    parser.add_argument("--count", type=int, default=0, help="beats to write, 0 = until stopped")
    parser.add_argument(
        "--print-schema",
        action="store_true",
        help="print the table and the statement a timer can run instead, and exit",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> ExitCode:
    if args.print_schema:
        sys.stdout.write(HEARTBEAT_SQL + "\n-- each second:\n" + HEARTBEAT_BEAT + ";\n")
        return ExitCode.OK
    dbname = pg.checked_dbname(args.dbname)
    if args.interval <= 0 or args.count < 0:
        raise UsageError("--interval must be positive and --count 0 or more")
    beat(dbname, args.interval, args.count)
    return ExitCode.OK


def beat(dbname: str, interval: float, count: int) -> None:
    written = 0
    conn: Any = None
    next_at = time.monotonic()
    try:
        while count == 0 or written < count:
            try:
                if conn is None:
                    conn = pg.connect(dbname)
                    # CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the table
                    # exists: a role that may only write the row must not run it.
                    if pg.scalar(conn, HEARTBEAT_EXISTS) is None:
                        conn.execute(HEARTBEAT_SQL)
                conn.execute(HEARTBEAT_BEAT)
                written += 1
            except Exception as exc:
                log.warning("heartbeat failed, retrying: %s", str(exc).splitlines()[0][:200])
                if conn is not None:
                    conn.close()
                conn = None
            if count and written >= count:
                break
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        if conn is not None:
            conn.close()

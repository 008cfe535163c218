"""``pgstack-drill logical``: restore a pg_dump dump into a scratch cluster and verify it exactly.

Phases: fetch (copy the dump's files into the scratch directory, checking size and sha256 against
the manifest), scratch cluster (initdb, start), globals (roles, before anything they own),
schema (``pg_restore --section=pre-data``), data (``--section=data -j N``), indexes and
constraints (``--section=post-data -j N``), verify (every table's row count and checksum against
the manifest). RTO is the time from the start to the end of verify: a verified, queryable database.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path
from typing import Any

from pgstack_common.manifest import DUMP_FILES
from pgstack_drill import pg, scratch
from pgstack_drill.drill import Drill, Options, Outcome, add_common_arguments, execute
from pgstack_drill.dumps import Manifest, compare_tables, find_dump, read_manifest
from pgstack_drill.errors import ExitCode, UsageError, VerificationFailed
from pgstack_drill.progress import human_bytes

log = logging.getLogger(__name__)

DEFAULT_DUMPS = Path("/var/backups/pgstack/dumps")
# A restored database takes about this many times the bytes of its compressed dump (gzip -Z1 of
# mixed data is 2.4x; indexes double it again), plus the fresh cluster itself.
RESTORE_FACTOR = 8
CLUSTER_BYTES = 128 * 2**20


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "logical",
        help="restore a pg_dump dump into a scratch cluster and verify it",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    add_common_arguments(parser)
    parser.add_argument("--database", required=True, help="the dumped database")
    parser.add_argument(
        "--dumps-dir",
        type=Path,
        default=DEFAULT_DUMPS,
        help=f"pg_dump destination root, <dir>/<cluster>/<database>/<stamp>[-<label>] "
        f"(default {DEFAULT_DUMPS})",
    )
    parser.add_argument(
        "--dump",
        metavar="NAME_OR_LABEL",
        help="this dump (directory name or label) instead of the newest",
    )
    parser.add_argument("--jobs", type=int, default=2, help="pg_restore -j (default 2)")
    parser.add_argument(
        "--timezone",
        default="UTC",
        help="TimeZone of the dump session, for the checksums (default UTC)",
    )

    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> ExitCode:
    if args.jobs < 1:
        raise UsageError("--jobs: expected 1 or more")
    options = Options.from_args("logical", args, args.database)
    dump_parent = args.dumps_dir / args.cluster

    def body(drill: Drill) -> Outcome:
        return run_body(
            drill,
            dump_parent=dump_parent,
            database=args.database,
            dump_name=args.dump,
            jobs=args.jobs,
            timezone=args.timezone,
        )

    return execute(options, body)


def fetch(manifest: Manifest, source: Path, target: Path) -> int:
    """Copy the dump's files, checking each against the manifest; return the bytes copied."""
    target.mkdir(mode=0o700)
    copied = 0
    for name in DUMP_FILES:
        entry = manifest.files[name]
        digest = hashlib.sha256()
        size = 0
        try:
            with (source / name).open("rb") as src, (target / name).open("wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    digest.update(block)
                    dst.write(block)
                    size += len(block)
        except FileNotFoundError as exc:
            raise VerificationFailed(f"{name}: missing from {source}") from exc
        if size != entry.size_bytes or digest.hexdigest() != entry.sha256:
            raise VerificationFailed(
                f"{name}: {size} bytes, sha256 {digest.hexdigest()[:12]}..., the manifest says "
                f"{entry.size_bytes} bytes, {entry.sha256[:12]}...: damaged since the dump"
            )
        copied += size
    return copied


def run_body(
    drill: Drill,
    *,
    dump_parent: Path,
    database: str,
    dump_name: str | None,
    jobs: int,
    timezone: str,
) -> Outcome:
    runner = drill.runner
    with drill.phase("fetch"):
        dump_dir = find_dump(dump_parent, database, dump_name)
        manifest = read_manifest(dump_dir)
        drill.facts["source"] = {
            "dump": str(dump_dir),
            "label": manifest.label,
            "dumped_at": manifest.started_at,
            "server_version": manifest.server_version,
            "size_bytes": manifest.size_bytes,
            "tables": len(manifest.tables),
        }
        needed = manifest.size_bytes * (RESTORE_FACTOR + 1) + CLUSTER_BYTES
        scratch.check_disk(drill.scratch_options.root, needed)
        work = drill.new_scratch(timezone)
        copied = fetch(manifest, dump_dir, work.root / "dump")
        drill.timer.note(f"{human_bytes(copied)} from {dump_dir.name}")
    files = work.root / "dump"
    scratch_db = f"{scratch.DATABASE_PREFIX}{database}"
    with drill.phase("scratch cluster"):
        work.initdb()
        work.write_config()
        work.start()
    with drill.phase("globals"):
        result = runner.run(
            [
                work.tool("psql"),
                "-X",
                "-q",
                "-d",
                work.conninfo("postgres"),
                "-f",
                str(files / "globals.sql"),
            ],
            "psql -f globals.sql",
            timeout=600,
        )
        skipped = [line for line in result.stderr.splitlines() if "ERROR:" in line]
        unexpected = [line for line in skipped if "already exists" not in line]
        for line in unexpected:
            log.warning("globals.sql: %s", line.strip())
        drill.timer.note(
            f"{len(skipped)} statements skipped ({len(unexpected)} not 'already exists')"
        )
        with pg.connect(work.conninfo("postgres")) as conn:
            conn.execute(f'CREATE DATABASE "{scratch_db}" TEMPLATE template0')
    restore = [
        work.tool("pg_restore"),
        "--exit-on-error",
        "--no-tablespaces",
        "-d",
        work.conninfo(scratch_db),
    ]
    sections = (
        ("schema", "pre-data", 1),
        ("data", "data", jobs),
        ("indexes and constraints", "post-data", jobs),
    )
    for phase, section, section_jobs in sections:
        with drill.phase(phase, drill.scratch_probe()):
            runner.run(
                [
                    *restore,
                    f"--section={section}",
                    f"--jobs={section_jobs}",
                    str(files / "data.dump"),
                ],
                f"pg_restore --section={section}",
            )
    with drill.phase("verify"):
        with pg.connect(work.conninfo(scratch_db)) as conn:
            pg.set_text_form(conn, timezone)

            def on_table(index: int, count: int, name: str) -> None:
                drill.progress.probe(lambda: f"table {index + 1}/{count} {name}")

            actual = pg.summaries(conn, on_table)
        problems = compare_tables(manifest.tables, actual)
        expected = {t.qualified: t for t in manifest.tables}
        drill.facts["verification"] = {
            "tables": [
                {
                    "table": t.qualified,
                    "rows": t.rows,
                    "checksum": t.checksum,
                    "expected_rows": expected[t.qualified].rows
                    if t.qualified in expected
                    else None,
                    "ok": t.qualified in expected and expected[t.qualified] == t,
                }
                for t in actual
            ],
            "problems": problems,
        }
        rows = sum(t.rows for t in actual)
        drill.timer.note(f"{len(actual)} tables, {rows} rows")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise VerificationFailed(f"verification: {problems[0]}{more}")
    rto = drill.timer.elapsed()
    return Outcome(
        source=drill.facts["source"], verification=drill.facts["verification"], rto_seconds=rto
    )

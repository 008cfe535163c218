"""``pgstack-drill workload``: fill ``jobs`` and ``results`` with N MiB of realistic rows, fast.

Rows come from a seeded generator (same ``--seed`` and ``--size-mb``, same rows) and go in through
COPY, one batch of jobs then their results, in one transaction. Prints the throughput.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pgstack_drill import pg
from pgstack_drill.errors import ExitCode, PreconditionError, UsageError
from pgstack_drill.schema import JOB_STATUSES, WORKLOAD_SQL

BASE_TIME = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
BATCH_JOBS = 250
INPUT_TYPES = (("pdf", 40), ("docx", 20), ("image", 15), ("audio", 10), ("csv", 10), ("html", 5))
EXTENSIONS = {
    "pdf": "pdf",
    "docx": "docx",
    "image": "png",
    "audio": "mp3",
    "csv": "csv",
    "html": "html",
}
STATUS_WEIGHTS = (5, 2, 4, 60, 8, 3, 6, 6, 3, 3)
FORMATS = ("text", "markdown", "json", "html")
ERRORS = (
    ("E_TIMEOUT", "processing timed out after {n} s"),
    ("E_PARSE", "could not parse page {n}: unexpected token"),
    ("E_TOO_LARGE", "file exceeds the limit by {n} bytes"),
    ("E_UPSTREAM", "the extraction service answered 503 after {n} retries"),
)
WORDS = [
    "invoice",
    "total",
    "amount",
    "due",
    "customer",
    "order",
    "shipment",
    "delivery",
    "report",
    "quarter",
    "revenue",
    "account",
    "balance",
    "payment",
    "reference",
    "contract",
    "clause",
    "party",
    "signature",
    "date",
    "page",
    "section",
    "summary",
    "table",
    "figure",
    "analysis",
    "result",
    "method",
    "sample",
    "value",
    "average",
    "median",
    "growth",
    "region",
    "product",
    "service",
    "request",
    "response",
    "status",
    "update",
    "review",
    "approval",
]
JOB_COLUMNS = (
    "id",
    "session_id",
    "status",
    "input_type",
    "file_name",
    "file_size",
    "error_code",
    "error_message",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
)
RESULT_COLUMNS = ("id", "job_id", "format_type", "content", "size", "generated_at")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "workload",
        help="create the sample schema and fill it with N MiB",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    pg.add_dbname_argument(parser, "the target database")
    parser.add_argument(
        "--size-mb",
        type=float,
        default=10.0,
        help="MiB of row data to generate (COPY text; default 10)",
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="empty jobs and results first (default: refuse when jobs has rows)",
    )
    parser.add_argument("--print-schema", action="store_true", help="print the schema and exit")
    parser.set_defaults(run=run)


def _escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _field(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f+00")
    return _escape(str(value))


def _line(values: tuple[object, ...]) -> str:
    return "\t".join(_field(v) for v in values) + "\n"


@dataclass(frozen=True)
class Batch:
    jobs: str
    results: str
    job_count: int
    result_count: int


class Generator:
    """Deterministic rows: the n-th job and its results depend only on the seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        words = [self.rng.choice(WORDS) for _ in range(20000)]
        # Sentences with punctuation and line breaks, sliced for each result's content.
        chunks = []
        for index, word in enumerate(words):
            chunks.append(word + (".\n" if index % 17 == 16 else " "))
        self.corpus = "".join(chunks)
        self.session: uuid.UUID = self._uuid()
        self.session_left = 0
        self.clock = BASE_TIME
        self.input_types = [t for t, _ in INPUT_TYPES]
        self.input_weights = [w for _, w in INPUT_TYPES]

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _content(self) -> str:
        length = int(self.rng.lognormvariate(7.0, 0.8)) + 40
        length = min(length, len(self.corpus) - 1)
        start = self.rng.randrange(0, len(self.corpus) - length)
        return self.corpus[start : start + length]

    def batch(self, count: int) -> Batch:
        rng = self.rng
        jobs: list[str] = []
        results: list[str] = []
        for _ in range(count):
            if self.session_left == 0:
                self.session = self._uuid()
                self.session_left = rng.randint(1, 12)
            self.session_left -= 1
            self.clock += timedelta(milliseconds=rng.randint(50, 4000))
            job_id = self._uuid()
            status = rng.choices(JOB_STATUSES, STATUS_WEIGHTS)[0]
            input_type = rng.choices(self.input_types, self.input_weights)[0]
            name = "-".join(rng.choice(WORDS) for _ in range(2))
            created = self.clock
            started = (
                None
                if status in ("PENDING", "UPLOADING")
                else created + timedelta(milliseconds=rng.randint(100, 30000))
            )
            finished = status in ("COMPLETE", "FAILED", "CANCELLED", "PARTIAL_COMPLETE")
            completed = (
                (started or created) + timedelta(seconds=rng.uniform(0.5, 600))
                if finished
                else None
            )
            error_code = error_message = None
            if status == "FAILED" or status.startswith("RETRY_"):
                code, message = rng.choice(ERRORS)
                error_code, error_message = code, message.format(n=rng.randint(2, 900))
            updated = completed or started or created
            jobs.append(
                _line(
                    (
                        job_id,
                        self.session,
                        status,
                        input_type,
                        f"{name}-{rng.randint(1, 9999)}.{EXTENSIONS[input_type]}",
                        int(rng.lognormvariate(12, 1.5)),
                        error_code,
                        error_message,
                        created,
                        updated,
                        started,
                        completed,
                    )
                )
            )
            formats = 0
            if status == "COMPLETE":
                formats = rng.randint(1, 3)
            elif status == "PARTIAL_COMPLETE":
                formats = 1
            for format_type in rng.sample(FORMATS, formats):
                content = self._content()
                results.append(
                    _line(
                        (
                            self._uuid(),
                            job_id,
                            format_type,
                            content,
                            len(content.encode()),
                            completed,
                        )
                    )
                )
        return Batch("".join(jobs), "".join(results), count, len(results))

    def batches(self, size_bytes: int) -> Iterator[Batch]:
        done = 0
        while done < size_bytes:
            batch = self.batch(BATCH_JOBS)
            done += len(batch.jobs.encode()) + len(batch.results.encode())
            yield batch


def run(args: argparse.Namespace) -> ExitCode:
    if args.print_schema:
        sys.stdout.write(WORKLOAD_SQL)
        return ExitCode.OK
    dbname = pg.checked_dbname(args.dbname)
    if args.size_mb <= 0:
        raise UsageError("--size-mb: expected a positive number")
    stats = fill(dbname, args.size_mb, args.seed, args.replace)
    print(stats)
    return ExitCode.OK


def fill(dbname: str, size_mb: float, seed: int, replace: bool) -> str:
    began = time.monotonic()
    generator = Generator(seed)
    jobs = results = sent = 0
    with pg.connect(dbname) as conn:
        conn.autocommit = False
        conn.execute(WORKLOAD_SQL)
        if replace:
            conn.execute("TRUNCATE jobs, results")
        elif pg.scalar(conn, "SELECT EXISTS (SELECT FROM jobs)"):
            raise PreconditionError("jobs already has rows: use --replace to empty it first")
        with conn.cursor() as cursor:
            for batch in generator.batches(int(size_mb * 2**20)):
                for table, columns, text in (
                    ("jobs", JOB_COLUMNS, batch.jobs),
                    ("results", RESULT_COLUMNS, batch.results),
                ):
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        copy.write(text)
                    sent += len(text.encode())
                jobs += batch.job_count
                results += batch.result_count
        conn.commit()
    seconds = time.monotonic() - began
    mib = sent / 2**20
    return (
        f"workload: {jobs} jobs, {results} results, {mib:.1f} MiB in {seconds:.1f} s "
        f"({mib / seconds:.1f} MiB/s, {(jobs + results) / seconds:.0f} rows/s)"
    )

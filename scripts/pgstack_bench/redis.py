"""Redis over TLS vs plaintext: redis-benchmark on db1 against the lab's TLS Redis and a scratch
plaintext redis-server on 127.0.0.1 started for the section.

Both servers run on db1 and redis-benchmark runs there too, so both paths are loopback and the
difference is TLS. The scratch server gets the lab server's persistence settings (AOF everysec,
the same RDB save points) so that persistence does not count as TLS. redis-benchmark takes a
password only as ``-a``, so on the lab server it logs in as a scratch ACL user made for the
section (a random password, its one key, no dangerous commands), created and deleted through
redis-cli as ``admin``, whose password reaches db1 on stdin into a root-only file and never an
argv. The scratch user and the one key the benchmark writes are deleted at the end.
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from pgstack_bench.lab import BenchLab
from pgstack_bench.model import Cell, Section, SectionResult, Table

log = logging.getLogger(__name__)

HOST = "db1"
WORK = "/var/tmp/pgstack-bench-redis"  # noqa: S108  (on db1, root-only, removed at the end)
CA = "/etc/pgstack/tls/ca.crt"
PLAIN_PORT = 16379
PLAIN_UNIT = "pgstack-bench-redis-plain.service"
# The one key redis-benchmark SET writes without -r: its placeholder, as is.
KEY = "key:__rand_int__"
BENCH_USER = "pgstack-bench"
CLIENTS = 50


@dataclass(frozen=True)
class Run:
    server: str  # tls | plain
    pipeline: int
    test: str  # SET | GET
    rps: float
    p50_ms: float | None


def parse_csv(text: str) -> dict[str, tuple[float, float | None]]:
    """redis-benchmark --csv -> {test: (requests per second, p50 latency ms)}.

    Redis 7 prints a header row ("test","rps","avg_latency_ms",...,"p50_latency_ms",...);
    older releases print rows of just ("test","rps") without a header."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        raise ValueError("redis-benchmark printed nothing")
    header = rows[0] if rows[0][0] == "test" else ["test", "rps"]
    body = rows[1:] if rows[0][0] == "test" else rows
    found: dict[str, tuple[float, float | None]] = {}
    for row in body:
        record = dict(zip(header, row, strict=False))
        p50 = record.get("p50_latency_ms")
        found[record["test"].split()[0]] = (float(record["rps"]), float(p50) if p50 else None)
    return found


def _benchmark(lab: BenchLab, *, tls: bool, pipeline: int, requests: int) -> list[Run]:
    if tls:
        target = (
            f"--tls --cacert {CA} --sni {lab.fqdn(HOST)} -h 127.0.0.1 -p 6379 "
            f'--user {BENCH_USER} -a "$pw"'
        )
        prefix = f"pw=$(cat {WORK}/bench); "
    else:
        target = f"-h 127.0.0.1 -p {PLAIN_PORT}"
        prefix = ""
    command = (
        f"cd / && {prefix}redis-benchmark {target} -c {CLIENTS} -n {requests} "
        f"-P {pipeline} -t set,get --csv 2>&1"
    )
    out = lab.sh(HOST, command, timeout=1200)
    try:
        parsed = parse_csv(out)
    except (ValueError, KeyError) as error:
        raise RuntimeError(f"redis-benchmark printed no results: {out.strip()[:300]}") from error
    return [
        Run("tls" if tls else "plain", pipeline, test, rps, p50)
        for test, (rps, p50) in parsed.items()
    ]


def _lab_cli_command(args: str) -> str:
    """redis-cli as admin on the lab server (a command with a secret in it goes through stdin)."""
    return (
        f"cd / && REDISCLI_AUTH=$(cat {WORK}/admin) redis-cli --tls --cacert {CA} "
        f"-h 127.0.0.1 -p 6379 --user admin --no-auth-warning {args}"
    )


def _lab_cli(lab: BenchLab, args: str, *, stdin: str | None = None) -> str:
    return lab.sh(HOST, _lab_cli_command(args), stdin=stdin).strip()


def _start_plain(lab: BenchLab) -> None:
    settings = lab.sh(
        HOST, "grep -E '^(save|appendonly|appendfsync|maxmemory|maxmemory-policy) ' "
        "/etc/redis/redis.conf",
    ).splitlines()  # fmt: skip
    options = " ".join(
        f"--{name} {value}" if name != "save" else f'--save "{value}"'
        for name, value in (line.split(None, 1) for line in settings)
    )
    lab.sh(
        HOST,
        f"systemd-run --quiet --collect --unit={PLAIN_UNIT} -p DynamicUser=yes "
        f"-- /usr/bin/redis-server --bind 127.0.0.1 --port {PLAIN_PORT} --dir /tmp "
        f"--protected-mode yes --daemonize no {options} && sleep 1 && "
        f"redis-cli -h 127.0.0.1 -p {PLAIN_PORT} PING",
    )


def run(lab: BenchLab) -> SectionResult:
    requests = 50_000 if lab.quick else 200_000
    repeats = 1 if lab.quick else 3
    pipelines = (1, 16)
    runs: list[Run] = []
    key_existed = True
    try:
        lab.sh(
            HOST,
            f"umask 077 && mkdir -p {WORK} && cat > {WORK}/admin",
            stdin=lab.secret("redis_admin") + "\n",
        )
        key_existed = _lab_cli(lab, f"EXISTS {KEY}") != "0"
        if key_existed:
            raise RuntimeError(f"{KEY} exists on the lab's Redis: not overwriting it")
        password = secrets.token_hex(24)
        lab.sh(HOST, f"umask 077 && cat > {WORK}/bench", stdin=password + "\n")
        _lab_cli(
            lab,
            "",
            stdin=f"ACL SETUSER {BENCH_USER} reset on >{password} ~{KEY} +@all -@dangerous "
            "+config|get\n",
        )
        _start_plain(lab)
        for repeat in range(repeats):
            for pipeline in pipelines:
                for tls in (True, False):
                    log.info(
                        "redis-benchmark %s -P %d (%d/%d)",
                        "TLS" if tls else "plain",
                        pipeline,
                        repeat + 1,
                        repeats,
                    )
                    runs.extend(_benchmark(lab, tls=tls, pipeline=pipeline, requests=requests))
    finally:
        cleanup = ([f"DEL {KEY}"] if not key_existed else []) + [f"ACL DELUSER {BENCH_USER}"]
        for command in cleanup:
            if lab.ssh(HOST, _lab_cli_command(command)).returncode != 0:
                log.warning("cleanup on the lab's Redis failed: %s", command)
        lab.ssh(
            HOST,
            f"systemctl stop {PLAIN_UNIT} 2>/dev/null; systemctl reset-failed {PLAIN_UNIT} "
            f"2>/dev/null; rm -rf {WORK}; true",
        )
    return _result(runs, requests=requests, repeats=repeats)


def _median(
    runs: Sequence[Run], server: str, pipeline: int, test: str
) -> tuple[float, float | None]:
    chosen = [r for r in runs if (r.server, r.pipeline, r.test) == (server, pipeline, test)]
    if not chosen:
        return 0.0, None
    p50s = [r.p50_ms for r in chosen if r.p50_ms is not None]
    return (
        statistics.median(r.rps for r in chosen),
        statistics.median(p50s) if p50s else None,
    )


def rows(runs: Sequence[Run]) -> list[dict[str, Cell]]:
    found: list[dict[str, Cell]] = []
    for pipeline in sorted({r.pipeline for r in runs}):
        for test in ("SET", "GET"):
            tls_rps, tls_p50 = _median(runs, "tls", pipeline, test)
            plain_rps, plain_p50 = _median(runs, "plain", pipeline, test)
            if not tls_rps or not plain_rps:
                continue
            found.append(
                {
                    "command": test,
                    "pipeline": pipeline,
                    "TLS ops/s": round(tls_rps),
                    "plaintext ops/s": round(plain_rps),
                    "TLS / plain": f"{tls_rps / plain_rps:.2f}x",
                    "TLS p50 ms": tls_p50,
                    "plaintext p50 ms": plain_p50,
                }
            )
    return found


def _result(runs: Sequence[Run], *, requests: int, repeats: int) -> SectionResult:
    table_rows = rows(runs)
    columns = (
        "command",
        "pipeline",
        "TLS ops/s",
        "plaintext ops/s",
        "TLS / plain",
        "TLS p50 ms",
        "plaintext p50 ms",
    )
    ratios: Mapping[str, str] = {
        f"{row['command']} -P {row['pipeline']}": str(row["TLS / plain"]) for row in table_rows
    }
    discussion = (
        f"redis-benchmark ran on db1 with {CLIENTS} connections, {requests:,} requests per "
        f"test, 3-byte values, against the lab's Redis (TLS on 6379, a scratch ACL user, the "
        "server's certificate chain checked against the lab CA; redis-benchmark does not check "
        f"the host name) and a scratch plaintext redis-server on 127.0.0.1:{PLAIN_PORT} with "
        "the lab server's persistence settings; "
        + (
            f"each figure is the median of {repeats} runs, TLS and plaintext alternating."
            if repeats > 1
            else "one run each (quick), TLS and plaintext alternating."
        )
        + " Both servers are single-threaded and share db1's 2 cores with the benchmark client "
        "and the rest of the lab, so the ratio is the meaningful figure, not the absolute rates. "
        "redis-benchmark keeps its connections for the whole test, so this is the cost of "
        "encrypting the traffic (and of the 50 handshakes), not of a handshake per request; "
        "pipelining puts more commands in each TLS record."
    )
    return SectionResult(
        name="redis",
        title="Redis over TLS vs plaintext",
        tables=(Table("redis-benchmark on db1 (loopback)", columns, tuple(table_rows)),),
        discussion=discussion,
        summary=tuple((f"TLS/plain {what}", ratio) for what, ratio in ratios.items()),
        raw={"runs": [asdict(r) for r in runs], "requests": requests, "repeats": repeats},
    )


SECTION = Section("redis", "Redis over TLS vs plaintext", run)

"""Exporter cost: pgstack-exporter against the exporters Debian packages, on db1.

Debian's prometheus-postgres-exporter (0.11, default settings and a second instance with
``--auto-discover-databases``), prometheus-pgbouncer-exporter and prometheus-redis-exporter are
installed on db1 for the section (their packaged services are kept from starting by a
policy-rc.d and disabled) and run as scratch systemd units on 127.0.0.1 next to a scratch
instance of the installed pgstack-exporter with the host's own configuration. A small Python
loop on db1 scrapes them over loopback; the controller parses what they answered.

Every exporter logs in as the monitoring role; the passwords reach db1 on stdin and live in
root-only environment files read by systemd, never in argv or a log. Everything the section adds
(packages, the scratch units and files, the scratch databases) is removed when it ends.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import secrets
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from pgstack_bench.lab import BenchLab, scram_verifier
from pgstack_bench.model import Cell, Curve, Section, SectionResult, Table

log = logging.getLogger(__name__)

HOST = "db1"
WORK = "/var/tmp/pgstack-bench-exporter"  # noqa: S108  (on db1, root-only, removed at the end)
CA = "/etc/pgstack/tls/ca.crt"
PACKAGES = (
    "prometheus-postgres-exporter",
    "prometheus-pgbouncer-exporter",
    "prometheus-redis-exporter",
)
PGBOUNCER_EXPORTER = "/usr/bin/prometheus-pgbouncer-exporter"
SCRAPE_TIMEOUT_S = 30.0
DB_PREFIX = "bench_db_"
TABLES_DB = "bench_tables"
RUNTIME_PREFIXES = ("go_", "process_", "promhttp_", "python_")
UNIT_PREFIX = "pgstack-bench-"
# psql sessions creating or dropping the scratch databases, each over its own SSH connection: sshd
# drops connections beyond its MaxStartups (10 unauthenticated at once by default), and 16 at once
# were cut off ("kex_exchange_identification: Connection reset by peer").
SESSIONS = 8
# postgres_exporter --auto-discover-databases opens a connection per database: it logs in as a
# scratch member of the monitoring role (its privileges, its own connection limit), so that it can
# neither take the monitoring role's 5 connections from the host's pgstack-exporter nor exhaust
# max_connections.
AUTO_ROLE = "pgstack_bench_autodiscover"
AUTO_CONNECTION_LIMIT = 10


@dataclass(frozen=True)
class Exporter:
    key: str  # unit pgstack-bench-<key>.service, env file <key>.env
    label: str
    port: int
    command: str
    env: Mapping[str, str]
    secrets: Mapping[str, str]  # environment variable -> lab secret name
    user: str | None = None  # None: a DynamicUser

    @property
    def unit(self) -> str:
        return f"{UNIT_PREFIX}{self.key}.service"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"


def exporters(address: str, pgstack: str, *, go_pgbouncer: bool = True) -> tuple[Exporter, ...]:
    """pgstack first, then postgres_exporter (default), pgbouncer, redis; auto-discover last.
    go_pgbouncer: Debian's prometheus-pgbouncer-exporter is prometheus-community's Go exporter
    (Debian 13; flags and one connection string) rather than the Python one (Debian 12; host,
    port and listen address in environment variables)."""
    pg_dsn = (
        f"postgresql://pgstack_monitoring@{address}:5432/postgres?sslmode=verify-full"
        f"&sslrootcert={CA}&application_name=pgstack-bench-postgres-exporter"
    )
    pg_secret = {"PGPASSWORD": "postgresql_monitoring"}
    return (
        Exporter(
            "pgstack",
            "pgstack-exporter",
            19716,
            f"{pgstack} --config.file=/etc/pgstack/exporter.yml "
            "--web.listen-address=127.0.0.1:19716 --log.level=warn",
            {},
            {},
            user="pgstack-exporter",
        ),
        Exporter(
            "postgres",
            "postgres_exporter",
            19187,
            "/usr/bin/prometheus-postgres-exporter --web.listen-address=127.0.0.1:19187",
            {"DATA_SOURCE_NAME": pg_dsn},
            pg_secret,
        ),
        Exporter(
            "pgbouncer",
            "pgbouncer_exporter",
            19127,
            PGBOUNCER_EXPORTER
            + (" --web.listen-address=127.0.0.1:19127 --log.level=warn" if go_pgbouncer else ""),
            (
                {
                    "PGBOUNCER_EXPORTER_CONNECTION_STRING": (
                        f"postgres://pgstack_monitoring@{address}:6432/pgbouncer"
                        f"?sslmode=verify-full&sslrootcert={CA}"
                        "&application_name=pgstack-bench-pgbouncer-exporter"
                    )
                }
                if go_pgbouncer
                else {
                    "HOST": "127.0.0.1",
                    "PORT": "19127",
                    "PGBOUNCER_HOST": address,
                    "PGBOUNCER_PORT": "6432",
                    "PGBOUNCER_USER": "pgstack_monitoring",
                    "PGSSLMODE": "verify-full",
                    "PGSSLROOTCERT": CA,
                    "PGAPPNAME": "pgstack-bench-pgbouncer-exporter",
                }
            ),
            pg_secret,
        ),
        Exporter(
            "redis",
            "redis_exporter",
            19121,
            "/usr/bin/prometheus-redis-exporter",
            {
                "REDIS_ADDR": f"rediss://{address}:6379",
                "REDIS_USER": "monitoring",
                "REDIS_EXPORTER_TLS_CA_CERT_FILE": CA,
                "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": "127.0.0.1:19121",
            },
            {"REDIS_PASSWORD": "redis_monitoring"},
        ),
        Exporter(
            "postgres-auto",
            "postgres_exporter --auto-discover-databases",
            19188,
            "/usr/bin/prometheus-postgres-exporter --web.listen-address=127.0.0.1:19188 "
            "--auto-discover-databases",
            {
                "DATA_SOURCE_NAME": pg_dsn.replace(
                    "postgres-exporter", "postgres-exporter-auto"
                ).replace("pgstack_monitoring@", f"{AUTO_ROLE}@")
            },
            {},  # a password made for the run (_create_auto_role)
        ),
    )


# --- parsing what the exporters answer (pure; tests/unit/test_bench_exporter.py)


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], value)


def parse_labels(text: str) -> dict[str, str]:
    """The labels of ``{a="x",b="y\\"z"}`` (braces included)."""
    inner = text.strip()[1:-1]
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        match = _LABEL.match(inner, pos)
        if match is None:
            if inner[pos:].strip(" ,"):
                raise ValueError(f"bad label set {text!r}")
            break
        labels[match[1]] = _unescape(match[2])
        pos = match.end()
    return labels


def parse_value(text: str) -> float:
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    return float(text)


def parse_prometheus_text(text: str) -> list[Sample]:
    """Every sample of a Prometheus text-format (0.0.4) answer; comments and blanks skipped."""
    samples: list[Sample] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _SAMPLE.match(stripped)
        if match is None:
            raise ValueError(f"line {number}: not a sample: {stripped[:120]!r}")
        labels = parse_labels(match[2]) if match[2] else {}
        samples.append(Sample(match[1], labels, parse_value(match[3])))
    return samples


def find_value(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    """The value of the first sample called name whose labels include the given ones."""
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def sum_values(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    values = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(values) if values else None


def series_counts(samples: Sequence[Sample]) -> tuple[int, int]:
    """(all series, series outside the exporter's own runtime: go_, process_, python_...)."""
    own = sum(1 for s in samples if not s.name.startswith(RUNTIME_PREFIXES))
    return len(samples), own


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of nothing")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Agreement:
    what: str
    pgstack: float | None
    other: float | None
    agree: bool
    rule: str


def agree(
    what: str, mine: float | None, theirs: float | None, *, counter: bool, slack: float
) -> Agreement:
    """Compare one figure. pgstack was scraped first: a counter may have advanced by up to
    ``slack`` (or 1 %) by the time postgres_exporter read it, never gone back; a gauge may
    differ by ``slack`` either way (an exporter's own connection coming or going)."""
    if mine is None or theirs is None:
        return Agreement(what, mine, theirs, False, "missing")
    if counter:
        allowed = max(slack, 0.01 * abs(theirs))
        ok = 0 <= theirs - mine <= allowed
        rule = f"0 ≤ theirs - ours ≤ {allowed:g}"
    else:
        ok = abs(theirs - mine) <= slack
        rule = "equal" if slack == 0 else f"|diff| ≤ {slack:g}"
    return Agreement(what, mine, theirs, ok, rule)


def compare_counters(
    pgstack: Sequence[Sample], postgres_exporter: Sequence[Sample], database: str = "app"
) -> list[Agreement]:
    """Figures both exporters report, read from scrapes taken back to back."""
    pgdb = {"database": database}
    theirs_db = {"datname": database}
    return [
        agree(
            "up (pgstack_up{kind=postgresql} / pg_up)",
            find_value(pgstack, "pgstack_up", kind="postgresql"),
            find_value(postgres_exporter, "pg_up"),
            counter=False,
            slack=0,
        ),
        agree(
            "max_connections",
            find_value(pgstack, "pgstack_postgresql_max_connections"),
            find_value(postgres_exporter, "pg_settings_max_connections"),
            counter=False,
            slack=0,
        ),
        agree(
            f"xact_commit of {database}",
            find_value(pgstack, "pgstack_postgresql_commits_total", **pgdb),
            find_value(postgres_exporter, "pg_stat_database_xact_commit", **theirs_db),
            counter=True,
            slack=10,
        ),
        agree(
            f"blks_read of {database}",
            find_value(pgstack, "pgstack_postgresql_blocks_read_total", **pgdb),
            find_value(postgres_exporter, "pg_stat_database_blks_read", **theirs_db),
            counter=True,
            slack=10,
        ),
        agree(
            f"blks_hit of {database}",
            find_value(pgstack, "pgstack_postgresql_blocks_hit_total", **pgdb),
            find_value(postgres_exporter, "pg_stat_database_blks_hit", **theirs_db),
            counter=True,
            slack=1000,
        ),
        agree(
            "client backends (sum of pgstack_postgresql_connections{backend_type=client "
            "backend} / sum of pg_stat_database_numbackends)",
            sum_values(pgstack, "pgstack_postgresql_connections", backend_type="client backend"),
            sum_values(postgres_exporter, "pg_stat_database_numbackends"),
            counter=False,
            slack=2,
        ),
    ]


def parse_ss(output: str) -> dict[int, list[tuple[int, int]]]:
    """``ss -tnpH state established`` -> {pid: [(local port, peer port), ...]}."""
    found: dict[int, list[tuple[int, int]]] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        # with a state filter ss omits the State column: Recv-Q Send-Q Local Peer Process
        local, peer = fields[2], fields[3]
        try:
            ports = (int(local.rsplit(":", 1)[1]), int(peer.rsplit(":", 1)[1]))
        except (IndexError, ValueError):
            continue
        for pid in re.findall(r"pid=(\d+),", line):
            found.setdefault(int(pid), []).append(ports)
    return found


# --- what runs on db1

REMOTE_SCRAPER = r"""
import json, os, subprocess, sys, time, urllib.error, urllib.request, zlib, base64
P = json.loads(sys.stdin.readline())
TCK = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in f[11:15]) / TCK  # utime stime cutime cstime

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None

def scrape(url, timeout):
    began = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = answer.read()
        took = time.monotonic() - began
        return took, body, (None if took <= timeout else "timeout")
    except (TimeoutError, OSError) as error:
        took = time.monotonic() - began
        reason = getattr(error, "reason", error)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return took, None, "timeout"
        return took, None, f"{type(error).__name__}: {error}"

def wait_ready(url, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            import socket
            host, port = url.split("/")[2].split(":")
            socket.create_connection((host, int(port)), 1).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False

def pack(body):
    return base64.b64encode(zlib.compress(body or b"", 6)).decode()

def client_ports():
    out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-XAtc",
        "SELECT client_port FROM pg_stat_activity WHERE client_port IS NOT NULL"],
        capture_output=True, text=True, cwd="/", check=False).stdout
    return [int(x) for x in out.split()]

out = {"mode": P["mode"], "exporters": {}}
if P["mode"] == "pair":
    first, second = P["urls"]
    t0 = time.monotonic()
    _, a, ea = scrape(first, P["timeout"])
    t1 = time.monotonic()
    _, b, eb = scrape(second, P["timeout"])
    out["pair"] = {"gap_s": time.monotonic() - t1, "first_s": t1 - t0, "bodies": [pack(a), pack(b)],
                   "errors": [ea, eb]}
    print(json.dumps(out))
    sys.exit(0)

for e in P["exporters"]:
    r = {"pid": e["pid"], "latencies": [], "errors": [], "timed_out": False}
    out["exporters"][e["key"]] = r
    if not wait_ready(e["url"]):
        r["errors"].append("not listening")
        continue
    took, body, error = scrape(e["url"], P["timeout"])
    r["cold_s"] = took
    r["cold_error"] = error
    if error == "timeout":
        r["timed_out"] = True
    if body is not None:
        r["body"] = pack(body)
    if not r["timed_out"]:
        c0, began = cpu(e["pid"]), time.monotonic()
        for _ in range(P["rounds"]):
            took, body, error = scrape(e["url"], P["timeout"])
            if error:
                r["errors"].append(error)
                if error == "timeout":
                    r["timed_out"] = True
                    break
            else:
                r["latencies"].append(took)
                r["body"] = pack(body)
            if time.monotonic() - began > P["budget"]:
                r["budget_hit"] = True
                break
        r["cpu_s"] = cpu(e["pid"]) - c0
        r["wall_s"] = time.monotonic() - began
        r["scrapes"] = len(r["latencies"]) + len(r["errors"])
    time.sleep(1.0)  # between scrapes: what the exporter keeps open
    r["rss_kib"] = rss_kib(e["pid"])
    r["ss"] = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True,
                             text=True, check=False).stdout
    r["pg_client_ports"] = client_ports()
print(json.dumps(out))
"""


def _unpack(text: str | None) -> str:
    if not text:
        return ""
    return zlib.decompress(base64.b64decode(text)).decode("utf-8", "replace")


def _psql(lab: BenchLab, sql: str, *, dbname: str = "postgres", timeout: float = 1800) -> str:
    return lab.sh(
        HOST,
        f"cd / && runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {dbname}",
        stdin=sql,
        timeout=timeout,
    )


def _psql_sessions(lab: BenchLab, statements: Sequence[str]) -> None:
    """Run statements in SESSIONS psql sessions at once. CREATE and DROP DATABASE each wait for
    a checkpoint; concurrent sessions share checkpoints (on a local server of Debian 12's major,
    80 databases: 8 sessions created them 2.8x and dropped them 5x faster than one)."""
    chunks = [statements[i::SESSIONS] for i in range(SESSIONS)]
    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        done = [pool.submit(_psql, lab, "\n".join(chunk) + "\n") for chunk in chunks if chunk]
        for future in done:
            future.result()


def _is_binary(lab: BenchLab, path: str) -> bool:
    """Whether path is a compiled program rather than a script (no "#!" at its start)."""
    return lab.sh(HOST, f"head -c 2 {path}") != "#!"


def _installed(lab: BenchLab) -> set[str]:
    out = lab.sh(HOST, "dpkg-query -W -f='${Package} ${db:Status-Status}\\n'")
    return {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}


INSTALL = """\
guard=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d && guard=1
fi
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
  --no-install-recommends {packages} >/dev/null
rc=$?
[ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
for unit in {packages}; do systemctl disable --now "$unit" >/dev/null 2>&1; done
exit $rc
"""


@dataclass
class _State:
    before: set[str]
    prometheus_user: bool
    # what our install added (not what someone else installs on db1 meanwhile)
    added: set[str] | None = None


def _install(lab: BenchLab, state: _State) -> None:
    packages = " ".join(PACKAGES)
    try:
        lab.sh(HOST, INSTALL.format(packages=packages), timeout=900)
    finally:
        state.added = _installed(lab) - state.before


def _cleanup(lab: BenchLab, state: _State, all_exporters: Sequence[Exporter]) -> None:
    """Put db1 back as it was; every step runs even when an earlier one fails."""
    steps: list[tuple[str, str]] = [
        (
            "stop the scratch units",
            " ; ".join(
                f"systemctl stop {e.unit} 2>/dev/null; systemctl reset-failed {e.unit} 2>/dev/null"
                for e in all_exporters
            )
            + " ; true",
        ),
        ("remove the scratch files", f"rm -rf {WORK}"),
    ]
    for what, command in steps:
        proc = lab.ssh(HOST, command, timeout=120)
        if proc.returncode != 0:
            log.warning("cleanup: %s failed: %s", what, proc.stderr.strip()[-500:])
    try:
        _drop_scratch_databases(lab)
    except Exception:
        log.exception("cleanup: dropping the scratch databases failed")
    try:
        _drop_auto_role(lab)
    except Exception:
        log.exception("cleanup: dropping %s failed", AUTO_ROLE)
    try:
        added = state.added if state.added is not None else _installed(lab) - state.before
        new = sorted(added & _installed(lab))
        if new:
            log.info("purging %s", " ".join(new))
            lab.sh(
                HOST,
                "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -q "
                + " ".join(new)
                + " >/dev/null",
                timeout=900,
            )
        if not state.prometheus_user:
            lab.ssh(
                HOST,
                "if id prometheus >/dev/null 2>&1; then deluser --system prometheus >/dev/null;"
                " fi; if getent group prometheus >/dev/null; then delgroup --system prometheus"
                " >/dev/null; fi; rm -rf /var/lib/prometheus /var/log/prometheus; true",
            )
    except Exception:
        log.exception("cleanup: purging the packages failed")


def _create_auto_role(lab: BenchLab) -> str:
    password = secrets.token_hex(16)
    verifier = scram_verifier(password, secrets.token_bytes(16))
    _psql(
        lab,
        f"CREATE ROLE {AUTO_ROLE} LOGIN CONNECTION LIMIT {AUTO_CONNECTION_LIMIT} "
        f"IN ROLE pgstack_monitoring PASSWORD '{verifier}';",
    )
    return password


def _drop_auto_role(lab: BenchLab) -> None:
    terminate = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = "
    _psql(lab, f"{terminate}'{AUTO_ROLE}';\nDROP ROLE IF EXISTS {AUTO_ROLE};")


def _write_env_files(
    lab: BenchLab,
    all_exporters: Sequence[Exporter],
    extra: Mapping[str, Mapping[str, str]],
) -> None:
    files: dict[str, str] = {}
    for exporter in all_exporters:
        env = dict(exporter.env)
        env.update({var: lab.secret(name) for var, name in exporter.secrets.items()})
        env.update(extra.get(exporter.key, {}))
        files[f"{exporter.key}.env"] = "".join(f'{k}="{v}"\n' for k, v in env.items())
    writer = (
        "import json, os, sys\n"
        f"os.makedirs({WORK!r}, mode=0o700, exist_ok=True)\n"
        "for name, text in json.load(sys.stdin).items():\n"
        f"    path = os.path.join({WORK!r}, name)\n"
        "    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
        "    os.write(fd, text.encode()); os.close(fd)\n"
    )
    lab.sh(HOST, f"umask 077 && python3 -c {_quote(writer)}", stdin=json.dumps(files))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def pgstack_command(lab: BenchLab) -> str:
    """How the host runs pgstack-exporter: its wrapper, or the code directory the service was
    started from when the wrapper is mid-upgrade (a converge running at the same time)."""
    if lab.ssh(HOST, "/usr/local/bin/pgstack-exporter --version").returncode == 0:
        return "/usr/local/bin/pgstack-exporter"
    return "/usr/bin/python3 /usr/local/lib/pgstack/pgstack_exporter.pyz"


class StartFailed(RuntimeError):
    """A scratch exporter exited right after it started (a result, not a bench failure)."""


def _start(lab: BenchLab, exporter: Exporter) -> int:
    user = (
        f"-p User={exporter.user} -p Group={exporter.user}"
        if exporter.user
        else "-p DynamicUser=yes"
    )
    lab.sh(
        HOST,
        f"systemctl stop {exporter.unit} 2>/dev/null; systemctl reset-failed {exporter.unit} "
        f"2>/dev/null; systemd-run --quiet --collect --unit={exporter.unit} "
        f"-p EnvironmentFile={WORK}/{exporter.key}.env {user} -- {exporter.command}",
    )
    pid = lab.sh(
        HOST, f"sleep 1.5; systemctl is-active --quiet {exporter.unit} && "
        f"systemctl show -p MainPID --value {exporter.unit} || echo 0",
    ).strip()  # fmt: skip
    if not pid.isdigit() or pid == "0":
        journal = lab.ssh(HOST, f"journalctl -u {exporter.unit} -n 5 --no-pager -o cat").stdout
        lines = [line for line in journal.splitlines() if exporter.unit not in line]
        raise StartFailed(lines[-1].strip() if lines else "exited at once")
    return int(pid)


def _stop(lab: BenchLab, exporter: Exporter) -> None:
    lab.ssh(HOST, f"systemctl stop {exporter.unit}; systemctl reset-failed {exporter.unit}")


def _scrape_remote(lab: BenchLab, params: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    command = f"python3 -c {_quote(REMOTE_SCRAPER)}"
    out = lab.sh(HOST, command, stdin=json.dumps(params) + "\n", timeout=timeout)
    result: dict[str, Any] = json.loads(out)
    return result


# --- the scratch databases


def _database_count(lab: BenchLab) -> int:
    return int(_psql(lab, "SELECT count(*) FROM pg_database WHERE NOT datistemplate;").strip())


def _grow_databases(lab: BenchLab, target: int) -> int:
    """Create scratch databases until the cluster holds ``target`` (or its own, if more)."""
    present = _database_count(lab)
    query = f"SELECT count(*) FROM pg_database WHERE datname LIKE '{DB_PREFIX}%';"  # noqa: S608
    existing = _psql(lab, query)
    start = int(existing.strip()) + 1
    missing = target - present
    if missing > 0:
        log.info("creating %d scratch databases", missing)
        # FILE_COPY: a checkpoint instead of the template's blocks in the WAL (and in the
        # pgBackRest archive on backup1).
        _psql_sessions(
            lab,
            [
                f"CREATE DATABASE {DB_PREFIX}{i} STRATEGY = FILE_COPY;"
                for i in range(start, start + missing)
            ],
        )
    return _database_count(lab)


def _drop_scratch_databases(lab: BenchLab) -> None:
    query = f"SELECT datname FROM pg_database WHERE datname LIKE '{DB_PREFIX}%' OR datname = '{TABLES_DB}';"  # noqa: E501, S608
    names = _psql(lab, query).split()
    if names:
        log.info("dropping %d scratch databases", len(names))
        _psql_sessions(lab, [f"DROP DATABASE IF EXISTS {n} WITH (FORCE);" for n in names])


def _create_tables(lab: BenchLab, count: int) -> int:
    _psql(lab, f"CREATE DATABASE {TABLES_DB} STRATEGY = FILE_COPY;")
    batch = 500
    sql = "".join(
        "DO $$ BEGIN FOR i IN "
        f"{first}..{min(first + batch - 1, count)} LOOP "
        "EXECUTE format('CREATE TABLE t_%s (id int PRIMARY KEY, v text)', i); END LOOP; END $$;\n"
        for first in range(1, count + 1, batch)
    )
    _psql(lab, sql, dbname=TABLES_DB)
    return int(
        _psql(
            lab,
            "SELECT count(*) FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = 'public'::regnamespace;",
            dbname=TABLES_DB,
        ).strip()
    )


# --- one size


@dataclass(frozen=True)
class Measurement:
    key: str
    label: str
    databases: int
    tables: int | None
    cold_ms: float | None
    cold_error: str | None
    p50_ms: float | None
    p95_ms: float | None
    scrapes: int
    errors: int
    timed_out: bool
    cpu_s_per_100: float | None
    rss_mib: float | None
    tcp_held: int
    pg_held: int
    series: int
    own_series: int
    failure: str | None = None


def summarize(key: str, label: str, databases: int, tables: int | None, r: Mapping[str, Any]
              ) -> Measurement:  # fmt: skip
    """One exporter's remote result -> its figures."""
    latencies = [float(x) * 1000 for x in r.get("latencies", [])]
    scrapes = int(r.get("scrapes", 0))
    cpu = r.get("cpu_s")
    conns = parse_ss(str(r.get("ss", ""))).get(int(r["pid"]), [])
    # the exporter's own sockets to a server (not the scrapes it answers)
    outbound = [(local, peer) for local, peer in conns if peer in (5432, 6432, 6379)]
    pg_ports = set(r.get("pg_client_ports", []))
    body = _unpack(r.get("body"))
    samples = parse_prometheus_text(body) if body else []
    total, own = series_counts(samples)
    cold = r.get("cold_s")
    rss = r.get("rss_kib")
    failure = r.get("start_error")
    if failure is None and "not listening" in r.get("errors", []):
        failure = "not listening"
    return Measurement(
        failure=None if failure is None else f"did not start: {failure}",
        key=key,
        label=label,
        databases=databases,
        tables=tables,
        cold_ms=None if cold is None else float(cold) * 1000,
        cold_error=r.get("cold_error"),
        p50_ms=percentile(latencies, 50) if latencies else None,
        p95_ms=percentile(latencies, 95) if latencies else None,
        scrapes=scrapes,
        errors=len(r.get("errors", [])),
        timed_out=bool(r.get("timed_out")),
        cpu_s_per_100=(float(cpu) * 100 / scrapes) if cpu is not None and scrapes else None,
        rss_mib=None if rss is None else float(rss) / 1024,
        tcp_held=len(outbound),
        pg_held=sum(1 for local, peer in outbound if peer == 5432 and local in pg_ports),
        series=total,
        own_series=own,
    )


def _measure_size(
    lab: BenchLab,
    all_exporters: Sequence[Exporter],
    *,
    databases: int,
    tables: int | None,
    rounds: int,
    budget: float,
) -> tuple[list[Measurement], list[Agreement] | None]:
    """Restart the scratch exporters, scrape them; postgres_exporter with auto-discovery runs
    alone afterwards, because it opens a connection per database and the monitoring role may
    hold 5 (shared with the host's own pgstack-exporter)."""
    main, auto = list(all_exporters[:-1]), all_exporters[-1]
    pids: dict[str, int] = {}
    failed: dict[str, dict[str, Any]] = {}
    for exporter in main:
        try:
            pids[exporter.key] = _start(lab, exporter)
        except StartFailed as error:
            log.warning("%s did not start: %s", exporter.label, error)
            failed[exporter.key] = {"pid": 0, "start_error": str(error)}
    running = [e for e in main if e.key in pids]
    params = {
        "mode": "scrape",
        "timeout": SCRAPE_TIMEOUT_S,
        "rounds": rounds,
        "budget": budget,
        "exporters": [{"key": e.key, "url": e.url, "pid": pids[e.key]} for e in running],
    }
    wait = len(main) * (budget + 3 * SCRAPE_TIMEOUT_S) + 120
    remote = _scrape_remote(lab, params, timeout=wait)
    remote["exporters"].update(failed)
    agreements = None
    if tables is None:
        pair = _scrape_remote(
            lab,
            {"mode": "pair", "timeout": SCRAPE_TIMEOUT_S, "urls": [main[0].url, main[1].url]},
            timeout=3 * SCRAPE_TIMEOUT_S,
        )["pair"]
        ours, theirs = (parse_prometheus_text(_unpack(b)) for b in pair["bodies"])
        agreements = compare_counters(ours, theirs)
    for exporter in main:
        _stop(lab, exporter)
    try:
        pid = _start(lab, auto)
        params = {**params, "exporters": [{"key": auto.key, "url": auto.url, "pid": pid}]}
        remote["exporters"].update(_scrape_remote(lab, params, timeout=wait)["exporters"])
    except StartFailed as error:
        remote["exporters"][auto.key] = {"pid": 0, "start_error": str(error)}
    finally:
        _stop(lab, auto)
    results = [
        summarize(e.key, e.label, databases, tables, remote["exporters"][e.key])
        for e in all_exporters
    ]
    for m in results:
        log.info(
            "%s at %d databases%s: p50 %s ms, p95 %s ms, %d scrapes, %d errors%s",
            m.label,
            m.databases,
            f" / {m.tables} tables" if m.tables else "",
            _ms(m.p50_ms),
            _ms(m.p95_ms),
            m.scrapes,
            m.errors,
            ", timed out" if m.timed_out else "",
        )
    return results, agreements


# --- the result


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _latency_cell(m: Measurement, value: float | None) -> Cell:
    if value is None and m.timed_out:
        return f"no answer within {SCRAPE_TIMEOUT_S:.0f} s"
    return _ms(value)


def _row(m: Measurement) -> dict[str, Cell]:
    if m.failure:
        return {
            "exporter": m.label,
            "databases": m.databases,
            "tables": m.tables,
            "first scrape ms": m.failure,
        }
    if m.cold_error == "timeout":
        cold: Cell = f"no answer within {SCRAPE_TIMEOUT_S:.0f} s"
    elif m.cold_error:
        cold = f"error: {m.cold_error}"
    else:
        cold = _ms(m.cold_ms)
    return {
        "exporter": m.label,
        "databases": m.databases,
        "tables": m.tables,
        "first scrape ms": cold,
        "p50 ms": _latency_cell(m, m.p50_ms),
        "p95 ms": _latency_cell(m, m.p95_ms),
        "scrapes (errors)": f"{m.scrapes} ({m.errors})",
        "CPU s / 100 scrapes": None if m.cpu_s_per_100 is None else round(m.cpu_s_per_100, 2),
        "RSS MiB": None if m.rss_mib is None else round(m.rss_mib, 1),
        "connections held": f"{m.tcp_held} ({m.pg_held} to PostgreSQL)",
        "series (own)": f"{m.series:,} ({m.own_series:,})",
    }


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    if mine is None or theirs is None or theirs <= 0:
        return None
    return mine / theirs


def _goal_rows(ms: Sequence[Measurement]) -> list[dict[str, Cell]]:
    rows: list[dict[str, Cell]] = []
    sizes = sorted({(m.databases, m.tables or 0) for m in ms}, key=lambda s: (s[1] > 0, s[0]))
    for databases, tables in sizes:
        at = {m.key: m for m in ms if m.databases == databases and (m.tables or 0) == tables}
        ours, theirs = at.get("pgstack"), at.get("postgres")
        if ours is None or theirs is None:
            continue
        p50 = _ratio(ours.p50_ms, theirs.p50_ms)
        cpu = _ratio(ours.cpu_s_per_100, theirs.cpu_s_per_100)
        big = databases >= 1000 or tables >= 10000
        p95_goal: Cell = "—"
        if big and ours.p95_ms is not None:
            p95_goal = "met" if ours.p95_ms < 100 else "missed"
        rows.append(
            {
                "size": f"{databases:,} databases" + (f", {tables:,} tables" if tables else ""),
                "pgstack p50 / p95 ms": f"{_ms(ours.p50_ms)} / {_ms(ours.p95_ms)}",
                "postgres_exporter p50 / p95 ms": f"{_ms(theirs.p50_ms)} / {_ms(theirs.p95_ms)}",
                "latency ratio (p50)": None if p50 is None else f"{p50:.2f}x",
                "CPU ratio": None if cpu is None else f"{cpu:.2f}x",
                "ratio goal ≤ 0.1x": _goal(p50, cpu),
                "p95 < 100 ms": p95_goal,
            }
        )
    return rows


def _goal(p50: float | None, cpu: float | None) -> str:
    parts = []
    for what, value in (("latency", p50), ("CPU", cpu)):
        if value is not None:
            parts.append(f"{what} {'met' if value <= 0.1 else 'missed'}")
    return ", ".join(parts) or "—"


def _fmt_value(value: float | None) -> Cell:
    if value is None:
        return "missing"
    return int(value) if float(value).is_integer() else round(value, 3)


def _curves(ms: Sequence[Measurement]) -> tuple[Curve, ...]:
    by_db = [m for m in ms if m.tables is None]
    labels = {m.key: m.label.replace(" --auto-discover-databases", " auto-discover") for m in ms}
    curves = []
    for stat in ("p50", "p95"):
        series: dict[str, tuple[tuple[float, float], ...]] = {}
        for key, label in labels.items():
            points = []
            for m in sorted(by_db, key=lambda m: m.databases):
                value = m.p50_ms if stat == "p50" else m.p95_ms
                if m.key == key and value is not None:
                    points.append((float(m.databases), value))
            if points:
                series[label] = tuple(points)
        curves.append(
            Curve(
                name=f"exporter-scrape-{stat}",
                title=f"Scrape latency {stat} vs databases",
                x_label="databases in the cluster",
                y_label=f"scrape {stat} (ms)",
                series=series,
                log_x=True,
                log_y=True,
            )
        )
    return tuple(curves)


def _discussion(
    ms: Sequence[Measurement], agreements: Sequence[Agreement] | None, rounds: int
) -> str:
    biggest = max((m.databases for m in ms if m.tables is None), default=0)
    at = {m.key: m for m in ms if m.databases == biggest and m.tables is None}
    ours, theirs, auto = at.get("pgstack"), at.get("postgres"), at.get("postgres-auto")
    text = [
        "How it was measured: every exporter ran on db1 as a scratch systemd unit listening on "
        "127.0.0.1 (pgstack-exporter as a second instance of the installed code with the host's "
        "own `/etc/pgstack/exporter.yml`, so Prometheus' scrapes of the service do not count), and "
        f"a Python loop on db1 scraped each one {rounds} times in a row over loopback after one "
        "first scrape (timed apart: pgstack-exporter reads database sizes then, and caches them "
        "for 300 s). Latency is the full HTTP request as the loop saw it. CPU is utime + stime of "
        "the exporter process and its waited-for children (`/proc/<pid>/stat`) across the "
        "scrapes, background work included (pgstack-exporter's health and TLS probes). RSS is "
        "VmRSS after the scrapes. Connections held are the exporter's established TCP "
        "connections to PostgreSQL, PgBouncer or Redis one second after its last scrape (`ss`), "
        "and those of them that are `pg_stat_activity` rows. Series count every sample of the "
        "last answer; in brackets without the exporter's own `go_`/`process_`/`python_` series. "
        "pgstack-exporter's scrape covers all its targets (PostgreSQL, PgBouncer, Redis, status "
        "files, pgBackRest, TLS probes); postgres_exporter's covers PostgreSQL only.",
    ]
    smallest = min((m.databases for m in ms), default=0)
    text.append(
        f"The smallest size is the lab's own {smallest} databases; the larger ones add empty "
        f"scratch databases (`{DB_PREFIX}N`, created with `STRATEGY = FILE_COPY` so that they "
        "cost a checkpoint rather than WAL in the pgBackRest archive)"
        + (
            ", and the last one 10,000 tables in one scratch database"
            if any(m.tables for m in ms)
            else ""
        )
        + "; all are dropped at the end."
    )
    failures = sorted({f"{m.label} {m.failure}" for m in ms if m.failure})
    if failures:
        text.append(
            "; ".join(failures).replace("did not start: ", "did not start (")
            + ")."
            + " Debian 12's prometheus-pgbouncer-exporter (1.7, Python) reads `SHOW STATS` "
            "columns that PgBouncer removed in 1.8 (`total_requests`), so it fails against "
            "Debian 12's PgBouncer 1.18 before it serves a single scrape; a user of Debian's "
            "packages has no working PgBouncer exporter."
            if any("total_requests" in f for f in failures)
            else ""
        )
    if ours and theirs and ours.p50_ms and theirs.p50_ms:
        text.append(
            f"At {biggest:,} databases the whole pgstack scrape took {_ms(ours.p50_ms)} ms "
            f"(p50) against {_ms(theirs.p50_ms)} ms for postgres_exporter's PostgreSQL scrape "
            f"alone ({ours.p50_ms / theirs.p50_ms:.2f}x)"
            + (
                f", with {ours.own_series:,} series against {theirs.own_series:,}; its CPU time "
                f"per scrape ({ours.cpu_s_per_100 * 10:.0f} ms) is "
                f"{ours.cpu_s_per_100 * 10 / ours.p50_ms:.0%} of that latency, so the time is "
                "spent in the exporter's own Python process rather than waiting for PostgreSQL."
                if ours.cpu_s_per_100 is not None
                else "."
            )
        )
    verdicts = [
        f"{row['size']}: ratio {row['ratio goal ≤ 0.1x']}"
        + (f", p95 < 100 ms {row['p95 < 100 ms']}" if row["p95 < 100 ms"] != "—" else "")
        for row in _goal_rows(ms)
    ]
    if verdicts:
        text.append(
            "Against the goals (the whole pgstack scrape at most 0.1x postgres_exporter's "
            "PostgreSQL scrape in latency and in CPU; p95 under 100 ms at 1,000 databases and at "
            "10,000 tables): " + "; ".join(verdicts) + "."
        )
    if auto is not None:
        silent = sorted({m.databases for m in ms if m.key == auto.key and m.timed_out})
        if silent:
            text.append(
                f"postgres_exporter with `--auto-discover-databases` gave no answer within "
                f"{SCRAPE_TIMEOUT_S:.0f} s at "
                + " and ".join(f"{n:,}" for n in silent)
                + " databases."
            )
        text.append(
            "With `--auto-discover-databases` postgres_exporter keeps a connection per "
            "database. The lab's monitoring role may hold 5 connections and the host's own "
            "pgstack-exporter needs one of them, and without a limit 100 databases would take "
            "all of PostgreSQL's 100 connections: that instance logged in as a scratch member of "
            "the monitoring role (the same privileges) with "
            f"`CONNECTION LIMIT {AUTO_CONNECTION_LIMIT}` instead, and ran alone "
            "after the others had been stopped. Beyond that many databases its connections fail "
            "(`too many connections for role`), as they would under any connection limit in "
            "production; whether it answers in time without a limit was not measured here."
        )
    if agreements is not None:
        bad = [a for a in agreements if not a.agree]
        text.append(
            "Counters compared from two scrapes taken back to back (pgstack first, then "
            "postgres_exporter, at the smallest size): a counter may only have advanced between "
            "the two reads (by at most the slack shown or 1 %), a gauge must be equal or within "
            "the slack shown. "
            + (
                "All agreed."
                if not bad
                else "Disagreed: " + "; ".join(f"{a.what}" for a in bad) + "."
            )
        )
    return "\n\n".join(text)


def run(lab: BenchLab) -> SectionResult:
    address = lab.address(HOST)
    pgstack = pgstack_command(lab)
    all_exporters = exporters(address, pgstack)  # the unit names, for the cleanup
    sizes = (1, 100) if lab.quick else (1, 100, 1000)
    rounds = 20 if lab.quick else 40
    budget = 60.0 if lab.quick else 300.0
    state = _State(
        before=_installed(lab),
        prometheus_user=lab.ssh(HOST, "id prometheus").returncode == 0,
    )
    measurements: list[Measurement] = []
    agreements: list[Agreement] | None = None
    try:
        log.info("installing %s on %s", ", ".join(PACKAGES), HOST)
        _install(lab, state)
        all_exporters = exporters(
            address, pgstack, go_pgbouncer=_is_binary(lab, PGBOUNCER_EXPORTER)
        )
        _drop_scratch_databases(lab)  # what a killed run left
        _drop_auto_role(lab)
        password = _create_auto_role(lab)
        _write_env_files(lab, all_exporters, {"postgres-auto": {"PGPASSWORD": password}})
        for size in sizes:
            databases = _grow_databases(lab, size)
            found, pairs = _measure_size(
                lab, all_exporters, databases=databases, tables=None, rounds=rounds, budget=budget
            )
            measurements.extend(found)
            agreements = agreements if agreements is not None else pairs
        if not lab.quick:
            _drop_scratch_databases(lab)
            tables = _create_tables(lab, 10_000)
            found, _ = _measure_size(
                lab,
                all_exporters,
                databases=_database_count(lab),
                tables=tables,
                rounds=rounds,
                budget=budget,
            )
            measurements.extend(found)
    finally:
        _cleanup(lab, state, all_exporters)
    return _result(measurements, agreements, rounds)


def _result(
    ms: Sequence[Measurement], agreements: Sequence[Agreement] | None, rounds: int
) -> SectionResult:
    columns = (
        "exporter",
        "databases",
        "tables",
        "first scrape ms",
        "p50 ms",
        "p95 ms",
        "scrapes (errors)",
        "CPU s / 100 scrapes",
        "RSS MiB",
        "connections held",
        "series (own)",
    )
    tables = [
        Table(
            "Goals: the whole pgstack scrape against postgres_exporter's PostgreSQL scrape",
            (
                "size",
                "pgstack p50 / p95 ms",
                "postgres_exporter p50 / p95 ms",
                "latency ratio (p50)",
                "CPU ratio",
                "ratio goal ≤ 0.1x",
                "p95 < 100 ms",
            ),
            tuple(_goal_rows(ms)),
        ),
        Table("Each exporter at each size", columns, tuple(_row(m) for m in ms)),
    ]
    if agreements is not None:
        tables.append(
            Table(
                "The same figures from pgstack-exporter and postgres_exporter, back to back",
                ("figure", "pgstack", "postgres_exporter", "agree", "tolerance"),
                tuple(
                    {
                        "figure": a.what,
                        "pgstack": _fmt_value(a.pgstack),
                        "postgres_exporter": _fmt_value(a.other),
                        "agree": "yes" if a.agree else "NO",
                        "tolerance": a.rule,
                    }
                    for a in agreements
                ),
            )
        )
    summary: list[tuple[str, str]] = []
    for row in _goal_rows(ms):
        summary.append(
            (
                f"pgstack vs postgres_exporter at {row['size']}",
                f"p50/p95 {row['pgstack p50 / p95 ms']} vs {row['postgres_exporter p50 / p95 ms']}"
                f" ms, latency {row['latency ratio (p50)']}, CPU {row['CPU ratio']}",
            )
        )
    if agreements is not None:
        summary.append(("counters agree", f"{sum(a.agree for a in agreements)}/{len(agreements)}"))
    raw = {
        "measurements": [asdict(m) for m in ms],
        "agreements": [asdict(a) for a in agreements or []],
    }
    return SectionResult(
        name="exporter",
        title="Exporter cost",
        tables=tuple(tables),
        curves=_curves(ms),
        discussion=_discussion(ms, agreements, rounds),
        summary=tuple(summary),
        raw=raw,
    )


SECTION = Section("exporter", "Exporter cost", run)

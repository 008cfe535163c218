"""The exporter benchmark's parsing: Prometheus text, percentiles, ss output, the comparison of
pgstack-exporter's and postgres_exporter's figures, redis-benchmark's CSV (no lab, no network)."""

from __future__ import annotations

import base64
import hmac
import math
import zlib

import pytest

from pgstack_bench.exporter import (
    Exporter,
    compare_counters,
    exporters,
    find_value,
    parse_prometheus_text,
    parse_ss,
    percentile,
    scram_verifier,
    series_counts,
    sum_values,
    summarize,
)
from pgstack_bench.redis import parse_csv

PGSTACK = """\
# HELP pgstack_up 1 when the target answered
# TYPE pgstack_up gauge
pgstack_up{kind="postgresql",target="db1"} 1.0
pgstack_up{kind="redis",target="db1"} 0.0
pgstack_postgresql_max_connections{target="db1"} 100.0
pgstack_postgresql_commits_total{database="app",target="db1"} 1500.0
pgstack_postgresql_blocks_read_total{database="app",target="db1"} 320.0
pgstack_postgresql_blocks_hit_total{database="app",target="db1"} 98000.0
pgstack_postgresql_connections{backend_type="client backend",state="idle",target="db1"} 4.0
pgstack_postgresql_connections{backend_type="client backend",state="active",target="db1"} 1.0
pgstack_postgresql_connections{backend_type="walwriter",state="",target="db1"} 1.0
python_gc_objects_collected_total{generation="0"} 512.0
process_resident_memory_bytes 4.5e+07
"""

POSTGRES_EXPORTER = """\
# HELP pg_up Whether the last scrape of metrics from PostgreSQL was able to connect.
# TYPE pg_up gauge
pg_up 1
pg_settings_max_connections{server="10.77.41.11:5432"} 100
pg_stat_database_xact_commit{datid="16384",datname="app",server="10.77.41.11:5432"} 1503
pg_stat_database_blks_read{datid="16384",datname="app",server="10.77.41.11:5432"} 320
pg_stat_database_blks_hit{datid="16384",datname="app",server="10.77.41.11:5432"} 98010
pg_stat_database_numbackends{datid="5",datname="postgres",server="10.77.41.11:5432"} 5
pg_stat_database_numbackends{datid="16384",datname="app",server="10.77.41.11:5432"} 0
go_goroutines 9
"""


def test_parse_prometheus_text_reads_names_labels_values() -> None:
    samples = parse_prometheus_text(PGSTACK)
    assert len(samples) == 11
    assert find_value(samples, "pgstack_up", kind="redis") == 0.0
    assert find_value(samples, "pgstack_up", kind="postgresql") == 1.0
    assert find_value(samples, "process_resident_memory_bytes") == 4.5e7
    assert find_value(samples, "pgstack_up", kind="pgbouncer") is None
    assert sum_values(samples, "pgstack_postgresql_connections", backend_type="client backend") == 5


def test_parse_escapes_special_values_and_timestamps() -> None:
    text = (
        'm{a="x\\"y",b="back\\\\slash",c="line\\nbreak", d="comma,inside"} +Inf 1700000000000\n'
        "n NaN\n"
        "o -Inf\n"
        "p 1.5e-3\n"
    )
    m, n, o, p = parse_prometheus_text(text)
    assert m.labels == {"a": 'x"y', "b": "back\\slash", "c": "line\nbreak", "d": "comma,inside"}
    assert m.value == math.inf
    assert math.isnan(n.value)
    assert o.value == -math.inf
    assert p.value == 0.0015


def test_parse_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_prometheus_text("ok 1\n<html>not metrics</html>\n")


def test_series_counts_leave_out_runtime_series() -> None:
    assert series_counts(parse_prometheus_text(PGSTACK)) == (11, 9)
    assert series_counts(parse_prometheus_text(POSTGRES_EXPORTER)) == (8, 7)


def test_percentile_interpolates_like_numpy() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="nothing"):
        percentile([], 50)


def test_counters_agree_within_the_tolerance() -> None:
    found = {
        a.what.split(" (")[0]: a
        for a in compare_counters(
            parse_prometheus_text(PGSTACK), parse_prometheus_text(POSTGRES_EXPORTER)
        )
    }
    assert all(a.agree for a in found.values()), found
    assert found["xact_commit of app"].pgstack == 1500
    assert found["xact_commit of app"].other == 1503
    assert found["client backends"].pgstack == 5
    assert found["client backends"].other == 5


def test_counters_disagree_when_they_differ_or_go_back() -> None:
    theirs = (
        POSTGRES_EXPORTER.replace("} 1503", "} 1400")  # commits went back
        .replace('pg_settings_max_connections{server="10.77.41.11:5432"} 100', "x 1")
        .replace("} 98010", "} 500000")  # far more than the slack
    )
    found = {
        a.what.split(" (")[0]: a
        for a in compare_counters(parse_prometheus_text(PGSTACK), parse_prometheus_text(theirs))
    }
    assert not found["xact_commit of app"].agree
    assert not found["max_connections"].agree
    assert found["max_connections"].rule == "missing"
    assert not found["blks_hit of app"].agree
    assert found["blks_read of app"].agree


SS = """\
0      0      10.77.41.11:43824  10.77.41.11:5432  users:(("python3",pid=5731,fd=6))
0      0      10.77.41.11:51000  10.77.41.11:6432  users:(("python3",pid=5731,fd=7))
0      0      127.0.0.1:19716    127.0.0.1:40000   users:(("python3",pid=5731,fd=9))
0      0      10.77.41.11:5432   10.77.41.11:43824 users:(("postgres",pid=5749,fd=9))
0      0      [::ffff:10.77.41.11]:40112 [::ffff:10.77.41.11]:5432 users:(("pe",pid=812,fd=3))
"""


def test_parse_ss_groups_connections_by_process() -> None:
    found = parse_ss(SS)
    assert found[5731] == [(43824, 5432), (51000, 6432), (19716, 40000)]
    assert found[5749] == [(5432, 43824)]
    assert found[812] == [(40112, 5432)]


def _pack(text: str) -> str:
    return base64.b64encode(zlib.compress(text.encode())).decode()


def test_summarize_counts_only_connections_to_servers() -> None:
    remote = {
        "pid": 5731,
        "latencies": [0.010, 0.012, 0.011, 0.050],
        "errors": [],
        "cold_s": 0.2,
        "cold_error": None,
        "cpu_s": 0.08,
        "scrapes": 4,
        "rss_kib": 46080,
        "ss": SS,
        "pg_client_ports": [43824, 12345],
        "body": _pack(PGSTACK),
    }
    m = summarize("pgstack", "pgstack-exporter", 3, None, remote)
    assert m.tcp_held == 2  # PostgreSQL and PgBouncer, not the scrape on 19716
    assert m.pg_held == 1
    assert m.p50_ms == pytest.approx(11.5)
    assert m.cpu_s_per_100 == pytest.approx(2.0)
    assert m.rss_mib == 45.0
    assert (m.series, m.own_series) == (11, 9)
    assert m.failure is None


def test_summarize_records_an_exporter_that_did_not_start() -> None:
    m = summarize("pgbouncer", "pgbouncer_exporter", 3, None, {"pid": 0, "start_error": "boom"})
    assert m.failure == "did not start: boom"
    assert m.p50_ms is None


REDIS_CSV = """\
"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","41152.26","1.151","0.360","1.087","1.647","2.183","3.447"
"GET","45871.56","1.032","0.320","0.975","1.463","1.951","2.807"
"""


def test_parse_redis_benchmark_csv() -> None:
    assert parse_csv(REDIS_CSV) == {"SET": (41152.26, 1.087), "GET": (45871.56, 0.975)}
    assert parse_csv('"SET","1000.00"\n"GET","2000.00"\n') == {
        "SET": (1000.0, None),
        "GET": (2000.0, None),
    }
    with pytest.raises(ValueError, match="nothing"):
        parse_csv("")


def test_scram_verifier_matches_rfc_7677() -> None:
    """The stored server key signs RFC 7677's example exchange as the RFC says."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_verifier("pencil", salt)
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    assert method == "SCRAM-SHA-256"
    assert iterations_salt == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    server_key = base64.b64decode(keys.split(":")[1])
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = (
        f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        f"c=biws,r={nonce}"
    )
    signature = hmac.new(server_key, auth_message.encode(), "sha256").digest()
    assert base64.b64encode(signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_the_pgbouncer_exporter_is_started_in_the_dialect_of_the_installed_one() -> None:
    def pgbouncer(go: bool) -> Exporter:
        (found,) = [
            e
            for e in exporters("10.0.0.1", "/usr/local/bin/pgstack-exporter", go_pgbouncer=go)
            if e.key == "pgbouncer"
        ]
        return found

    go, python = pgbouncer(True), pgbouncer(False)
    assert "--web.listen-address=127.0.0.1:19127" in go.command
    dsn = go.env["PGBOUNCER_EXPORTER_CONNECTION_STRING"]
    assert dsn.startswith("postgres://pgstack_monitoring@10.0.0.1:6432/pgbouncer?")
    assert "sslmode=verify-full" in dsn
    assert "--" not in python.command
    assert python.env["PORT"] == "19127"
    assert python.env["PGBOUNCER_HOST"] == "10.0.0.1"
    # the password comes from the lab's secrets into the env file, never on a command line
    for exporter in (go, python):
        assert exporter.secrets == {"PGPASSWORD": "postgresql_monitoring"}
        assert "PGPASSWORD" not in exporter.env

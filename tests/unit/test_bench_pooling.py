"""The pure parts of the pooling benchmark: percentiles, pgbench's report, errors, SCRAM."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from pgstack_bench.pooling import (
    Latency,
    PgbenchRun,
    Plan,
    mean_run,
    parse_console,
    parse_pgbench,
    percentile,
    ratio,
    scram_verifier,
    session_uuid,
    short_error,
)

PGBENCH_15 = """\
pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: simple update>
scaling factor: 10
query mode: simple
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 25551
number of failed transactions: 0 (0.000%)
latency average = 6.262 ms
initial connection time = 60.517 ms
tps = 2555.123456 (without initial connection time)
"""

PGBENCH_13 = """\
number of transactions actually processed: 1000
latency average = 4.000 ms
tps = 240.000000 (including connections establishing)
tps = 250.500000 (excluding connections establishing)
"""


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_ignores_input_order() -> None:
    assert percentile([30.0, 10.0, 20.0], 50) == 20.0


@pytest.mark.parametrize("q", [-1, 101])
def test_percentile_refuses_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], q)


def test_percentile_of_nothing_fails() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_latency_summary() -> None:
    latency = Latency.of([10.0] * 94 + [200.0] * 6)
    assert latency is not None
    assert latency.count == 100
    assert latency.p50_ms == 10.0
    assert latency.p95_ms == 200.0
    assert latency.max_ms == 200.0
    assert latency.mean_ms == pytest.approx(21.4)
    assert Latency.of([]) is None


def test_parse_pgbench_15() -> None:
    run = parse_pgbench(PGBENCH_15)
    assert run == PgbenchRun(tps=2555.123456, latency_ms=6.262, transactions=25551, failed=0)


def test_parse_pgbench_takes_tps_without_connections() -> None:
    assert parse_pgbench(PGBENCH_13).tps == 250.5


def test_parse_pgbench_refuses_an_error_output() -> None:
    with pytest.raises(ValueError, match="not a pgbench report"):
        parse_pgbench("pgbench: error: connection to server failed: FATAL:  SSL required\n")


def test_mean_run() -> None:
    runs = [PgbenchRun(100.0, 10.0, 1000, 0), PgbenchRun(300.0, 4.0, 3000, 2)]
    assert mean_run(runs) == PgbenchRun(200.0, 7.0, 4000, 2)
    with pytest.raises(ValueError, match="no pgbench runs"):
        mean_run([])


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            'connection failed: connection to server at "10.77.41.11", port 6432 failed: '
            "FATAL:  no more connections allowed (max_client_conn)",
            "no more connections allowed (max_client_conn)",
        ),
        (
            'connection to server at "db1.pgstack.internal" (10.77.41.11), port 5432 failed: '
            "FATAL:  sorry, too many clients already\n",
            "sorry, too many clients already",
        ),
        (
            'connection failed: connection to server at "10.77.41.11", port 5432 failed: '
            "timeout expired",
            "timeout expired",
        ),
    ],
)
def test_short_error_keeps_the_servers_message_only(message: str, expected: str) -> None:
    assert short_error(message) == expected


def test_scram_verifier_matches_rfc_5802_keys() -> None:
    salt = b"0123456789abcdef"
    verifier = scram_verifier("pencil", salt, iterations=4096)
    mechanism, rest = verifier.split("$", 1)
    params, keys = rest.split("$")
    iterations, salt_b64 = params.split(":")
    stored_b64, server_b64 = keys.split(":")
    assert mechanism == "SCRAM-SHA-256"
    assert iterations == "4096"
    assert base64.b64decode(salt_b64) == salt
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert base64.b64decode(stored_b64) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server_b64) == hmac.new(salted, b"Server Key", "sha256").digest()
    assert "pencil" not in verifier


def test_session_uuid_is_md5_of_the_number() -> None:
    assert str(session_uuid(0)) == "0b1cdc9f-e1f9-29e4-69c5-a54ffe0b2ed5"  # md5('s0')
    assert session_uuid(1) != session_uuid(2)


def test_parse_console() -> None:
    out = "max_client_conn|500|100|yes\ndefault_pool_size|20|20|yes\nnoise\n"
    assert parse_console(out) == {"max_client_conn": "500", "default_pool_size": "20"}


def test_ratio() -> None:
    assert ratio(300.0, 200.0) == 1.5
    assert ratio(None, 200.0) is None
    assert ratio(300.0, 0.0) is None


def test_plan_sizes() -> None:
    quick, full = Plan.for_run(True), Plan.for_run(False)
    assert (quick.jobs, full.jobs) == (100_000, 1_000_000)
    assert full.insert_clients == 50
    assert full.history_clients == 100
    assert full.held_connections == 1000
    assert full.pgbench_clients == 16

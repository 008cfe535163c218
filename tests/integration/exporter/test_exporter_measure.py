"""What an operator wants to know before deploying: scrape time and memory (printed with -s)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from exporter_stack import ExporterProcess


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_scrape_duration_and_memory(exporter: ExporterProcess) -> None:
    exporter.metrics()
    durations = []
    for _ in range(100):
        start = time.monotonic()
        code, _headers, body = exporter.get("/metrics")
        durations.append(time.monotonic() - start)
        assert code == 200
        assert body
    durations.sort()
    p50, p95 = statistics.median(durations), durations[94]
    rss = rss_mib(exporter.popen.pid)
    print(
        f"\n100 scrapes: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms,"
        f" max {durations[-1] * 1000:.1f} ms;"
        f" {len(body)} bytes; resident memory {rss:.1f} MiB"
    )
    assert p95 < 1.0
    assert rss < 100

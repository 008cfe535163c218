"""The monitoring tier on the lab, from mon1: every exporter answers /metrics and /health there,
Prometheus scrapes every target and loaded the rules, and real faults travel the whole way: the
alert fires in Prometheus, Alertmanager sends it to the webhook receiver, and it resolves once the
fault is gone (the lab's short `for` and intervals: inventory/lab/group_vars/monitoring).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import lab_ssh

pytestmark = pytest.mark.e2e

MON = "mon1"
EXPORTER_PORT = 9716
EXPORTER_HOSTS = ["db1", "backup1"]
NOTIFICATIONS = "/var/lib/pgstack-alert-webhook/notifications.jsonl"


def fetch(url: str) -> tuple[int, dict[str, str], str]:
    """GET url on mon1 with Python's urllib: (status, headers, body)."""
    program = (
        "import json, sys, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen(sys.argv[1], timeout=10)\n"
        "except urllib.error.HTTPError as e:\n"
        "    r = e\n"
        "print(json.dumps([r.status, dict(r.headers), r.read().decode()]))\n"
    )
    result = lab_ssh(MON, f"python3 -c {shlex.quote(program)} {shlex.quote(url)}")
    assert result.returncode == 0, result.stderr
    status, headers, body = json.loads(result.stdout)
    return int(status), headers, body


def prometheus(path: str) -> Any:
    status, _, body = fetch(f"http://127.0.0.1:9090{path}")
    assert status == 200, body
    return json.loads(body)["data"]


def wait_for(what: str, check: Any, timeout: float = 180, every: float = 5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


# TLS probes are refreshed every 60 s (docs/exporter.md): a fault another module induced and
# removed (test_backup.py blocks backup1's pgBackRest port) may still show for up to a minute.
PROBE_INTERVAL = 60


@pytest.mark.parametrize("host", EXPORTER_HOSTS)
def test_metrics_answer_from_the_monitoring_host(host: str) -> None:
    def every_target_up() -> list[str] | None:
        status, _, body = fetch(f"http://{host}.pgstack.internal:{EXPORTER_PORT}/metrics")
        assert status == 200
        up = [line for line in body.splitlines() if line.startswith("pgstack_up{")]
        assert up, body[:2000]
        return up if all(line.endswith(" 1.0") for line in up) else None

    wait_for(f"every target of {host}'s exporter up", every_target_up, timeout=2 * PROBE_INTERVAL)


def test_health_answers_from_the_monitoring_host() -> None:
    def healthy() -> tuple[dict[str, str], dict[str, Any]] | None:
        status, headers, body = fetch(f"http://db1.pgstack.internal:{EXPORTER_PORT}/health")
        assert status == 200, body
        health = json.loads(body)
        return (headers, health) if health["status"] == "healthy" else None

    # /health answers from probes refreshed every 5 s (docs/exporter.md): a service another module
    # restarted is back within a probe or two.
    headers, health = wait_for("db1's /health healthy", healthy, timeout=30)
    assert {"postgresql", "pgbouncer", "redis"} <= set(health["services"])
    assert all(s["status"] == "up" for s in health["services"].values()), health
    assert headers.get("Cache-Control") == "no-store"


def test_prometheus_scrapes_every_target_and_loaded_the_rules() -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = prometheus("/api/v1/targets")["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_for("every scrape target up", all_up, timeout=60)
    instances = {t["labels"]["instance"] for t in targets if t["labels"]["job"] == "pgstack"}
    assert set(EXPORTER_HOSTS) <= {i.split(":")[0].split(".")[0] for i in instances}, instances
    groups = prometheus("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"] if rule["type"] == "alerting"]
    assert len(rules) >= 50
    assert all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]


def notifications() -> list[dict[str, Any]]:
    result = lab_ssh(MON, f"cat {NOTIFICATIONS} 2>/dev/null || true")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def notified(alert: str, status: str, since: float) -> dict[str, Any] | None:
    """The first webhook notification for alert in status (firing/resolved) sent after since."""
    for note in notifications():
        for item in note.get("alerts", []):
            if item["labels"].get("alertname") != alert or item["status"] != status:
                continue
            moment = item["startsAt"] if status == "firing" else item["endsAt"]
            stamp = time.mktime(time.strptime(moment[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            if stamp >= since - 60:
                return item
    return None


@pytest.fixture
def stopped_pgbouncer() -> Iterator[float]:
    """PgBouncer stopped on db1 (the fault), started again whatever the test found."""
    began = time.time()
    result = lab_ssh("db1", "systemctl stop pgbouncer")
    assert result.returncode == 0, result.stderr
    try:
        yield began
    finally:
        lab_ssh("db1", "systemctl start pgbouncer")


def test_a_stopped_pgbouncer_fires_its_alert_through_alertmanager_then_resolves(
    stopped_pgbouncer: float,
) -> None:
    fired = wait_for(
        "PgbouncerDown firing at the webhook",
        lambda: notified("PgbouncerDown", "firing", stopped_pgbouncer),
    )
    assert fired["labels"]["severity"] == "critical"
    assert fired["annotations"]["runbook_url"].endswith("PgbouncerDown.md")
    to_notification = time.time() - stopped_pgbouncer
    restarted = time.time()
    assert lab_ssh("db1", "systemctl start pgbouncer").returncode == 0
    wait_for(
        "PgbouncerDown resolved at the webhook",
        lambda: notified("PgbouncerDown", "resolved", restarted),
    )
    print(f"PgbouncerDown: fault to notification {to_notification:.0f} s")

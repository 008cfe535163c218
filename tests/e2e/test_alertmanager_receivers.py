"""Alertmanager's receivers and routes from the inventory, on the lab's mon1.

Each case runs only the prometheus role's configuration on mon1 (playbooks/monitoring.yml with
--limit mon1 --tags prometheus_configure: the input checks, then configure.yml; seconds). Bad input
fails with a message naming the problem and leaves alertmanager.yml and the configuration
Alertmanager runs as they were; an extra receiver with a secret file is live and receives the
alerts its route sends it, and converging the inventory again takes it away.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import (
    AMTOOL,
    MON,
    alertmanager,
    assert_failed_before_any_change,
    failure_messages,
    lab_ssh,
    parse_recap,
    sh,
    wait_for,
)

pytestmark = pytest.mark.e2e

PLAYBOOK = "playbooks/monitoring.yml"
ONLY_CONFIGURE = ("--limit", MON, "--tags", "prometheus_configure")
CONFIG = "/etc/prometheus/alertmanager.yml"
SECRETS = "/etc/prometheus/alertmanager_secrets"
NOTIFICATIONS = "/var/lib/pgstack-alert-webhook/notifications.jsonl"
# The role's default receiver (the lab's inventory keeps it).
WEBHOOK = {
    "name": "webhook",
    "webhook_configs": [{"url": "http://127.0.0.1:9095/", "send_resolved": True}],
}
EXTRA = "e2e-extra"
EXTRA_ALERT = "E2EExtraReceiver"

Playbook = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Running:
    """What Alertmanager runs and what is on disk."""

    original: str
    digest: str


def running() -> Running:
    digest = sh(MON, f"sha256sum {CONFIG}").split()[0]
    return Running(original=alertmanager("/api/v2/status")["config"]["original"], digest=digest)


def converge(
    ansible_playbook: Playbook, tmp_path: Path, variables: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    extra = None
    if variables is not None:
        extra = tmp_path / "alertmanager.yml"
        extra.write_text(yaml.safe_dump(variables), encoding="utf-8")
    return ansible_playbook(*ONLY_CONFIGURE, playbook=PLAYBOOK, extra_vars_file=extra)


def test_the_file_is_readable_by_root_and_alertmanager_only() -> None:
    assert sh(MON, f"stat -c '%U:%G %a' {CONFIG}").strip() == "root:prometheus 640"
    assert sh(MON, f"stat -c '%U:%G %a' {SECRETS}").strip() == "root:prometheus 750"


@pytest.mark.parametrize(
    ("variables", "names"),
    [
        # The role's checks refuse it before anything changes (a route naming no receiver).
        (
            {"prometheus_alertmanager_route": {"routes": [{"receiver": "nobody"}]}},
            ["prometheus_alertmanager_route", "nobody"],
        ),
        # The former {name, url} shape.
        (
            {"prometheus_alertmanager_receivers": [
                {"name": "webhook", "url": "http://127.0.0.1:9095/"}]},
            ["prometheus_alertmanager_receivers", "former {name, url}"],
        ),
        # amtool refuses it before the file replaces the running one (e-mail without a smarthost).
        (
            {"prometheus_alertmanager_receivers": [
                WEBHOOK, {"name": "e2e-mail", "email_configs": [{"to": "dba@pgstack.internal"}]}]},
            ["alertmanager.yml was not replaced", "no global SMTP smarthost set"],
        ),
    ],
    ids=["route-names-no-receiver", "former-shape", "amtool-refuses"],
)  # fmt: skip
def test_bad_receivers_fail_clearly_and_leave_the_running_config(
    ansible_playbook: Playbook, tmp_path: Path, variables: dict[str, Any], names: list[str]
) -> None:
    before = running()
    result = converge(ansible_playbook, tmp_path, variables)
    output = result.stdout + result.stderr
    failure = failure_messages(output) if result.returncode != 0 else None
    assert_failed_before_any_change(failure, parse_recap(result.stdout), output, *names)
    assert running() == before


def test_an_extra_receiver_is_live_then_gone_with_the_inventory(
    ansible_playbook: Playbook, tmp_path: Path
) -> None:
    """An extra webhook receiver whose bearer token is a secret file, and a route sending it
    EXTRA_ALERT: live and notified; converging the inventory again takes both away."""
    token = secrets.token_hex(16)
    variables = {
        "prometheus_alertmanager_secret_files": {"e2e_token": token},
        "prometheus_alertmanager_receivers": [
            WEBHOOK,
            {"name": EXTRA, "webhook_configs": [{
                "url": "http://127.0.0.1:9095/",
                "http_config": {"authorization": {"credentials_file": f"{SECRETS}/e2e_token"}},
            }]},
        ],
        "prometheus_alertmanager_route": {
            "routes": [{"receiver": EXTRA, "matchers": [f'alertname = "{EXTRA_ALERT}"']}],
        },
    }  # fmt: skip
    on = converge(ansible_playbook, tmp_path, variables)
    try:
        assert on.returncode == 0, on.stdout[-3000:]
        assert token not in on.stdout + on.stderr
        # systemctl reload sends SIGHUP and returns: Alertmanager loads the file right after.
        wait_for(f"{EXTRA} in the running config", lambda: EXTRA in running().original or None,
                 timeout=30, every=1)  # fmt: skip
        assert sh(MON, f"stat -c '%U:%G %a' {SECRETS}/e2e_token").strip() == "root:prometheus 640"

        marker = secrets.token_hex(4)
        labels = f"alertname={EXTRA_ALERT} severity=warning instance=e2e marker={marker}"
        sh(MON, f"{AMTOOL} alert add {labels}")

        def delivered() -> dict[str, Any] | None:
            result = lab_ssh(MON, f"cat {NOTIFICATIONS} 2>/dev/null || true")
            for line in filter(str.strip, result.stdout.splitlines()):
                note: dict[str, Any] = json.loads(line)
                if any(a["labels"].get("marker") == marker for a in note.get("alerts", [])):
                    return note
            return None

        note = wait_for(f"{EXTRA_ALERT} at the {EXTRA} receiver", delivered, timeout=60, every=2)
        assert note["receiver"] == EXTRA, note
    finally:
        off = converge(ansible_playbook, tmp_path)
    assert off.returncode == 0, off.stdout[-3000:]
    wait_for(f"{EXTRA} gone from the running config",
             lambda: EXTRA not in running().original or None, timeout=30, every=1)  # fmt: skip
    assert lab_ssh(MON, f"test ! -e {SECRETS}/e2e_token").returncode == 0

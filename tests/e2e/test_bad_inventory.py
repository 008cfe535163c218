"""Malformed inventories stop the postgresql play before anything on the host changes.

Each case is passed as an extra-vars file (extra vars replace inventory values entirely: a list
replaces the whole list), must make ansible-playbook fail, name the offending variable, and leave
every host with changed=0.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import failure_messages, parse_recap

pytestmark = pytest.mark.e2e

GOOD_PASSWORD = "e2e-valid-password-0123456789"
DATABASES = [{"name": "app"}]
MIGRATION = {
    "name": "app_migration",
    "kind": "migration",
    "database": "app",
    "password": GOOD_PASSWORD,
}
APP = {"name": "app", "kind": "app", "database": "app", "password": GOOD_PASSWORD}

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("port-not-a-number", {"postgresql_port": "abc"}, "postgresql_port"),
    ("port-out-of-range", {"postgresql_port": 70000}, "postgresql_port"),
    (
        "user-without-password",
        {"postgresql_users": [MIGRATION, {"name": "app", "kind": "app", "database": "app"}]},
        "postgresql_users",
    ),
    (
        "unknown-user-kind",
        {"postgresql_users": [MIGRATION, {**APP, "kind": "superuser"}]},
        "postgresql_users",
    ),
    (
        "user-database-not-declared",
        {
            "postgresql_databases": DATABASES,
            "postgresql_users": [MIGRATION, {**APP, "database": "nope"}],
        },
        "postgresql_users",
    ),
    (
        "two-migration-users",
        {"postgresql_users": [MIGRATION, {**MIGRATION, "name": "app_migration2"}, APP]},
        "postgresql_users",
    ),
    (
        "short-password",
        {"postgresql_users": [MIGRATION, {**APP, "password": "short"}]},
        "postgresql_users",
    ),
    (
        "hba-network-not-cidr",
        {"postgresql_hba_networks": ["10.0.0.0/8", "not-a-network"]},
        "postgresql_hba_networks",
    ),
    (
        "hba-networks-not-a-list",
        {"postgresql_hba_networks": {"net": "10.0.0.0/8"}},
        "postgresql_hba_networks",
    ),
    ("memory-zero", {"postgresql_memory_mb": 0}, "postgresql_memory_mb"),
    (
        "tls-version-unknown",
        {"postgresql_ssl_min_protocol_version": "SSLv3"},
        "postgresql_ssl_min_protocol_version",
    ),
]


@pytest.mark.parametrize(
    ("extra_vars", "variable"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_inventory_fails_before_any_change(
    ansible_playbook: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
    extra_vars: dict[str, Any],
    variable: str,
) -> None:
    extra_vars_file = tmp_path / "bad.yml"
    extra_vars_file.write_text(yaml.safe_dump(extra_vars), encoding="utf-8")

    result = ansible_playbook(extra_vars_file=extra_vars_file)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-5000:]
    messages = failure_messages(output)
    assert variable in messages, f"{variable} not in the failure:\n{messages}\n{output[-3000:]}"
    recap = parse_recap(result.stdout)
    assert recap, output[-5000:]
    changed = {host: counts["changed"] for host, counts in recap.items() if counts["changed"]}
    assert not changed, f"changed hosts {changed}:\n{output[-5000:]}"
    assert GOOD_PASSWORD not in output

"""The roles' shared host filters (plugins/filter/hosts.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins/filter"))

import hosts


def test_fqdns_follow_the_hosts_order_and_leave_hosts_without_facts_empty() -> None:
    hostvars = {
        "pg2": {"ansible_facts": {"fqdn": "pg2.example.internal"}},
        "pg1": {"ansible_facts": {"fqdn": "pg1.example.internal"}},
        "new": {},
        "unreached": {"ansible_facts": {}},
    }
    assert hosts.fqdns(["pg1", "pg2", "new", "unreached"], hostvars) == [
        "pg1.example.internal",
        "pg2.example.internal",
        "",
        "",
    ]


def test_the_filter_is_registered_under_its_name() -> None:
    assert hosts.FilterModule().filters()["fqdns"] is hosts.fqdns

"""The groups each role is applied to, for the tests: read from the file the playbooks read
(roles/preflight/vars/layout.yml, ``__preflight_role_groups``), never written out again.

- ``role_groups()``: ``{role: [groups]}`` as the file says (``all``: every host).
- ``inventory_groups(hosts_file)``: each group of a YAML inventory with its hosts, and ``all``.
- ``role_hosts(role, groups)``: the hosts a role is applied to, sorted, as the playbooks'
  ``__preflight_role_hosts`` has them (roles/preflight/vars/cluster.yml): none for pgBackRest and
  the drills without a backup host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYOUT = REPO_ROOT / "roles/preflight/vars/layout.yml"


@cache
def role_groups() -> dict[str, list[str]]:
    """{role: [inventory groups]} for every role site.yml applies."""
    layout: dict[str, list[str]] = yaml.safe_load(LAYOUT.read_text(encoding="utf-8"))[
        "__preflight_role_groups"
    ]
    return layout


def inventory_groups(hosts_file: Path) -> dict[str, list[str]]:
    """{group: [hosts]} of a YAML inventory file, in inventory order: every group under ``all``
    (a group holds its children's hosts too) and ``all`` itself (every host)."""
    found: dict[str, list[str]] = {}

    def walk(name: str, group: Mapping[str, Any] | None) -> list[str]:
        hosts = list((group or {}).get("hosts") or {})
        for child, below in ((group or {}).get("children") or {}).items():
            hosts += walk(child, below)
        found[name] = list(dict.fromkeys(found.get(name, []) + hosts))
        return hosts

    walk("all", yaml.safe_load(hosts_file.read_text(encoding="utf-8"))["all"])
    return found


# Roles that pair the database hosts with a backup host: without a backup host, applied to none.
BACKUP_PAIRS = ("pgbackrest", "restore_drill")


def role_hosts(role: str, groups: Mapping[str, Sequence[str]]) -> list[str]:
    """The hosts role is applied to: those of its groups in groups ({group: [hosts]}), sorted;
    none for a role of BACKUP_PAIRS when group backup has no host."""
    if role in BACKUP_PAIRS and not groups.get("backup"):
        return []
    return sorted({host for group in role_groups()[role] for host in groups.get(group, ())})

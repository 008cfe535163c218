"""Jinja filters over inventory hosts, shared by the roles.

``fqdns``: the FQDN each host's gathered facts give, in the hosts' order, and '' for a host whose
facts this run has not gathered. The roles name the database and backup hosts by FQDN: it is a DNS
name of their pki certificates (libpq's verify-full; pgBackRest 2.45 checks DNS names only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any


def fqdns(hosts: Iterable[str], hostvars: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``groups['postgres'] | pgstack.pgstack.fqdns(hostvars)``: each host's ansible_facts.fqdn."""
    found = []
    for host in hosts:
        facts = hostvars[host].get("ansible_facts") or {}
        found.append(str(facts.get("fqdn", "")))
    return found


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"fqdns": fqdns}

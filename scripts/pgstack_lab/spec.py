"""The lab's shape, read from an Ansible YAML inventory (inventory/lab/hosts.yml).

The inventory is the single source of truth: host names, groups and fixed addresses live there,
and the lab tool builds exactly those hosts. Recognised variables:

- ``lab_network`` (all.vars): the private IPv4 /24 only the lab uses; ``.1`` is the gateway.
- ``lab_domain`` (all.vars): DNS suffix written to every host's /etc/hosts.
- ``lab_release`` (all.vars or per host): ``trixie`` (default) or ``bookworm``.
- ``lab_machine_prefix`` (all.vars): put before each host's name to name its machine, so that a
  second lab whose inventory uses the same host names (another release of the same deployment)
  runs beside the first one on other addresses of the network; empty by default.
- ``ansible_host`` (per host): the host's address inside ``lab_network``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pgstack_lab.errors import SpecError

RELEASES = ("bookworm", "trixie")
DEFAULT_RELEASE = "trixie"
_HOSTNAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_PREFIX = re.compile(r"^([a-z][a-z0-9-]{0,7})?$")


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: ipaddress.IPv4Address
    release: str
    # The machine's name on this computer (directory, cgroup, netns): the name, after the prefix.
    machine: str = ""

    def __post_init__(self) -> None:
        if not self.machine:
            object.__setattr__(self, "machine", self.name)

    def fqdn(self, domain: str) -> str:
        return f"{self.name}.{domain}"


@dataclass(frozen=True)
class LabSpec:
    network: ipaddress.IPv4Network
    domain: str
    hosts: tuple[HostSpec, ...]

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 1

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts)
        raise SpecError(f"no host {name!r} in the lab inventory (known: {known})")

    def select(self, names: list[str]) -> tuple[HostSpec, ...]:
        if not names:
            return self.hosts
        return tuple(self.host(name) for name in names)


def _walk_hosts(
    group: Mapping[str, Any], where: str, inherited: Mapping[str, Any]
) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Yield (host name, merged vars, location) for every host below a group."""
    if not isinstance(group, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {type(group).__name__}")
    group_vars = dict(inherited)
    group_vars.update(group.get("vars") or {})
    for name, host_vars in (group.get("hosts") or {}).items():
        merged = dict(group_vars)
        merged.update(host_vars or {})
        yield str(name), merged, f"{where}.hosts.{name}"
    for child_name, child in (group.get("children") or {}).items():
        yield from _walk_hosts(child or {}, f"{where}.children.{child_name}", group_vars)


def _parse_network(top_vars: Mapping[str, Any], source: str) -> ipaddress.IPv4Network:
    raw_network = top_vars.get("lab_network")
    if raw_network is None:
        raise SpecError(f"{source}: all.vars.lab_network is required (a private IPv4 /24)")
    try:
        network = ipaddress.IPv4Network(str(raw_network), strict=True)
    except ValueError as exc:
        raise SpecError(f"{source}: all.vars.lab_network: {exc}") from exc
    if network.prefixlen != 24 or not network.is_private:
        raise SpecError(f"{source}: all.vars.lab_network must be a private /24, got {network}")
    return network


def _parse_host(
    name: str,
    host_vars: Mapping[str, Any],
    where: str,
    network: ipaddress.IPv4Network,
    release_override: str | None,
    *,
    prefix: str = "",
) -> HostSpec:
    if not _HOSTNAME.match(name):
        raise SpecError(f"{where}: host name must be a lower-case DNS label, got {name!r}")
    try:
        address = ipaddress.IPv4Address(str(host_vars.get("ansible_host")))
    except ValueError as exc:
        raise SpecError(f"{where}.ansible_host: {exc}") from exc
    gateway = network.network_address + 1
    if address not in network or address in (
        network.network_address,
        gateway,
        network.broadcast_address,
    ):
        raise SpecError(
            f"{where}.ansible_host: {address} is not a host address in {network} "
            f"other than the gateway {gateway}"
        )
    release = release_override or str(host_vars.get("lab_release", DEFAULT_RELEASE))
    if release not in RELEASES:
        raise SpecError(
            f"{where}.lab_release must be one of {', '.join(RELEASES)}, got {release!r}"
        )
    return HostSpec(name=name, address=address, release=release, machine=prefix + name)


def parse_spec(data: Any, source: str, release_override: str | None = None) -> LabSpec:
    """Validate an inventory document; every problem names its location."""
    if not isinstance(data, Mapping) or "all" not in data:
        raise SpecError(f"{source}: expected a YAML inventory with a top-level 'all' group")
    top = data["all"] or {}
    top_vars = (top.get("vars") or {}) if isinstance(top, Mapping) else {}
    network = _parse_network(top_vars, source)
    domain = str(top_vars.get("lab_domain", "pgstack.internal"))
    if release_override is not None and release_override not in RELEASES:
        raise SpecError(f"--release must be one of {', '.join(RELEASES)}, got {release_override!r}")

    # A host may stand in several groups (db1 in postgres, pgbouncer, redis): as in Ansible,
    # its variables are merged over every place it appears.
    merged: dict[str, tuple[dict[str, Any], str]] = {}
    for name, host_vars, where in _walk_hosts(top, f"{source}: all", {}):
        if name in merged:
            merged[name][0].update(host_vars)
        else:
            merged[name] = (dict(host_vars), where)

    prefix = str(top_vars.get("lab_machine_prefix") or "")
    if not _PREFIX.match(prefix):
        raise SpecError(
            f"{source}: all.vars.lab_machine_prefix must be up to 8 lower-case letters, digits"
            f" or '-', starting with a letter, got {prefix!r}"
        )
    hosts: dict[str, HostSpec] = {}
    used: dict[ipaddress.IPv4Address, str] = {}
    for name, (host_vars, where) in merged.items():
        spec = _parse_host(name, host_vars, where, network, release_override, prefix=prefix)
        if spec.address in used:
            raise SpecError(
                f"{where}.ansible_host: {spec.address} is already used by {used[spec.address]}"
            )
        used[spec.address] = name
        hosts[name] = spec
    if not hosts:
        raise SpecError(f"{source}: the inventory defines no hosts")
    return LabSpec(network=network, domain=domain, hosts=tuple(hosts.values()))


def load_spec(path: Path, release_override: str | None = None) -> LabSpec:
    if path.is_dir():
        path = path / "hosts.yml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the lab inventory {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    return parse_spec(data, str(path), release_override)

"""The lab network: one bridge holding the gateway, a namespace and veth pair per host, NAT out.

Names are ours alone, so stale pieces can be found and removed by name without touching anything
else on the machine:
- bridge ``pgstack-lab0`` with the gateway address (``.1``);
- network namespace ``pgstack-lab-<host>``, inside it ``eth0`` with the host's address;
- host end of the veth pair ``pgsl-<last octet>``, enslaved to the bridge;
- iptables rules carrying the comment ``pgstack-lab``.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from pgstack_lab.spec import HostSpec, LabSpec
from pgstack_lab.system import Runner

log = logging.getLogger(__name__)

BRIDGE = "pgstack-lab0"
NETNS_PREFIX = "pgstack-lab-"
VETH_PREFIX = "pgsl-"
RULE_COMMENT = "pgstack-lab"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def netns_name(host: HostSpec) -> str:
    return NETNS_PREFIX + host.machine


def veth_name(host: HostSpec) -> str:
    return f"{VETH_PREFIX}{int(host.address) & 0xFF}"


def nat_rules(network: ipaddress.IPv4Network) -> list[tuple[str, list[str]]]:
    """(table, rule) pairs the lab adds, in the order they are added."""
    comment = ["-m", "comment", "--comment", RULE_COMMENT]
    return [
        (
            "nat",
            [
                "POSTROUTING",
                "-s",
                str(network),
                "!",
                "-d",
                str(network),
                *comment,
                "-j",
                "MASQUERADE",
            ],
        ),
        ("filter", ["FORWARD", "-i", BRIDGE, *comment, "-j", "ACCEPT"]),
        (
            "filter",
            [
                "FORWARD",
                "-o",
                BRIDGE,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                *comment,
                "-j",
                "ACCEPT",
            ],
        ),
    ]


class Network:
    def __init__(self, runner: Runner, forward_flag: Path = IP_FORWARD) -> None:
        self.runner = runner
        self.forward_flag = forward_flag

    # --- queries ---------------------------------------------------------------------------
    def link_exists(self, name: str) -> bool:
        return self.runner.run(["ip", "link", "show", "dev", name], check=False).returncode == 0

    def namespaces(self) -> list[str]:
        out = self.runner.run(["ip", "netns", "list"]).stdout
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
        return [n for n in names if n.startswith(NETNS_PREFIX)]

    def veths(self) -> list[str]:
        out = self.runner.run(["ip", "-o", "link", "show", "type", "veth"]).stdout
        found = []
        for line in out.splitlines():
            # "12: pgsl-11@if3: <...>": the name ends at '@' or ':'
            name = line.split(":", 2)[1].strip().split("@", 1)[0]
            if name.startswith(VETH_PREFIX):
                found.append(name)
        return found

    def _rule_present(self, table: str, rule: list[str]) -> bool:
        probe = self.runner.run(["iptables", "-w", "-t", table, "-C", *rule], check=False)
        return probe.returncode == 0

    # --- the shared part -------------------------------------------------------------------
    def ensure_gateway(self, spec: LabSpec) -> bool:
        """Create bridge, forwarding and NAT if missing. Returns the previous ip_forward value."""
        if not self.link_exists(BRIDGE):
            log.info("creating bridge %s with gateway %s", BRIDGE, spec.gateway)
            self.runner.run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        cidr = f"{spec.gateway}/{spec.network.prefixlen}"
        addrs = self.runner.run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
        if f" {cidr} " not in addrs:
            self.runner.run(["ip", "addr", "add", cidr, "dev", BRIDGE])
        self.runner.run(["ip", "link", "set", BRIDGE, "up"])
        previous = self.forward_flag.read_text().strip() == "1"
        if not previous:
            self.forward_flag.write_text("1\n")
        for table, rule in nat_rules(spec.network):
            if not self._rule_present(table, rule):
                self.runner.run(["iptables", "-w", "-t", table, "-A", *rule])
        return previous

    def remove_gateway(self, network: ipaddress.IPv4Network, restore_forward: bool | None) -> None:
        """Remove bridge and rules; safe when they are already gone."""
        for table, rule in reversed(nat_rules(network)):
            while self._rule_present(table, rule):
                self.runner.run(["iptables", "-w", "-t", table, "-D", *rule])
        if self.link_exists(BRIDGE):
            self.runner.run(["ip", "link", "del", BRIDGE])
        if restore_forward is False:
            self.forward_flag.write_text("0\n")

    # --- per host --------------------------------------------------------------------------
    def attach(self, host: HostSpec, spec: LabSpec) -> None:
        ns, veth = netns_name(host), veth_name(host)
        self.runner.run(["ip", "netns", "add", ns])
        self.runner.run(
            ["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]
        )
        self.runner.run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
        inside = ["ip", "-n", ns]
        self.runner.run([*inside, "link", "set", "lo", "up"])
        self.runner.run(
            [*inside, "addr", "add", f"{host.address}/{spec.network.prefixlen}", "dev", "eth0"]
        )
        self.runner.run([*inside, "link", "set", "eth0", "up"])
        self.runner.run([*inside, "route", "add", "default", "via", str(spec.gateway)])

    def detach(self, ns: str | None = None, veth: str | None = None) -> None:
        """Remove a namespace and/or veth if present (deleting either end removes the pair)."""
        if veth and self.link_exists(veth):
            self.runner.run(["ip", "link", "del", veth])
        if ns and ns in self.namespaces():
            self.runner.run(["ip", "netns", "del", ns])

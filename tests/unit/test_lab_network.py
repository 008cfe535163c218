"""Network set-up and tear-down against a fake runner: what is run, and that teardown is safe
to repeat. The real thing is exercised by tests/lab."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pgstack_lab.network import BRIDGE, Network, nat_rules, netns_name, veth_name
from pgstack_lab.spec import HostSpec, LabSpec


class FakeRunner:
    """Answers like `ip`/`iptables` for a machine where nothing of the lab exists yet,
    and remembers which rules were added so -C finds them afterwards."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.rules: set[tuple[str, ...]] = set()
        self.links: set[str] = set()

    def run(self, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        rc, out = 0, ""
        if argv[0] == "iptables":
            table, action, rule = argv[3], argv[4], tuple(argv[5:])
            if action == "-C":
                rc = 0 if (table, *rule) in self.rules else 1
            elif action == "-A":
                self.rules.add((table, *rule))
            elif action == "-D":
                self.rules.discard((table, *rule))
        elif argv[:3] == ["ip", "link", "show"]:
            rc = 0 if argv[-1] in self.links else 1
        elif argv[:3] == ["ip", "link", "add"]:
            self.links.add(argv[3])
        elif argv[:3] == ["ip", "link", "del"]:
            self.links.discard(argv[3])
        return subprocess.CompletedProcess(argv, rc, out, "")


SPEC = LabSpec(
    network=ipaddress.IPv4Network("10.77.41.0/24"),
    domain="pgstack.internal",
    hosts=(HostSpec("db1", ipaddress.IPv4Address("10.77.41.11"), "bookworm"),),
)


def test_names_are_ours_and_fit_the_kernel_limit() -> None:
    host = SPEC.hosts[0]
    assert netns_name(host) == "pgstack-lab-db1"
    assert veth_name(host) == "pgsl-11"
    assert len(veth_name(host)) <= 15
    assert len(BRIDGE) <= 15


def test_gateway_is_idempotent_and_teardown_removes_every_rule(tmp_path: Path) -> None:
    flag = tmp_path / "ip_forward"
    flag.write_text("0\n")
    runner = FakeRunner()
    net = Network(runner, forward_flag=flag)

    was_on = net.ensure_gateway(SPEC)
    assert was_on is False
    assert flag.read_text() == "1\n"
    assert len(runner.rules) == len(nat_rules(SPEC.network))
    added = sum(1 for c in runner.calls if c[0] == "iptables" and c[4] == "-A")

    net.ensure_gateway(SPEC)  # a second up adds nothing
    assert sum(1 for c in runner.calls if c[0] == "iptables" and c[4] == "-A") == added

    net.remove_gateway(SPEC.network, restore_forward=was_on)
    assert runner.rules == set()
    assert BRIDGE not in runner.links
    assert flag.read_text() == "0\n"

    calls_before = len(runner.calls)
    net.remove_gateway(SPEC.network, restore_forward=was_on)  # safe to run twice
    assert not any(c[0] == "ip" and c[2] == "del" for c in runner.calls[calls_before:])


def test_nat_only_for_traffic_leaving_the_lab() -> None:
    table, rule = nat_rules(SPEC.network)[0]
    assert table == "nat"
    assert rule[:5] == ["POSTROUTING", "-s", "10.77.41.0/24", "!", "-d"]
    assert "MASQUERADE" in rule


def test_forwarding_left_on_when_it_was_on(tmp_path: Path) -> None:
    flag = tmp_path / "ip_forward"
    flag.write_text("1\n")
    net = Network(FakeRunner(), forward_flag=flag)
    was_on = net.ensure_gateway(SPEC)
    net.remove_gateway(SPEC.network, restore_forward=was_on)
    assert flag.read_text() == "1\n"

"""Every command block of the alert runbooks runs as written on the lab and succeeds.

The blocks are read from docs/runbooks/*.md but the procedures (tests/runbooks.py, the convention
of docs/alerts.md), their placeholders replaced with the lab's values, and each command line run as
root on the host the sentence before its block names, in one ssh call per lab host for all the
blocks it runs; every unit a block names must exist there, and every unit pattern
(`'postgresql@*'`) must match a loaded unit (journalctl and systemctl list-timers answer 0 for any
name, systemctl status for a pattern that matches nothing).
On a healthy lab every Confirm command exits 0 (pipelines with pipefail). Passwords reach the
commands the way the tools read them without a terminal: psql from PGPASSWORD, redis-cli
--askpass from stdin; they are never in argv and must not appear in the output.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import group_hosts, lab_host
from helpers import DATABASE, ROLE_SECRETS, lab_ssh

from runbooks import HOSTS, PLACEHOLDERS, Block, all_blocks

pytestmark = pytest.mark.e2e

BLOCKS = all_blocks()
# Blocks that name the alert's host run once for every host the exporter runs on.
EXPORTER_GROUPS = HOSTS["On the alert's host (its `instance` label):"]
# Blocks that name a node exporter alert's host run once for every managed host.
MANAGED_GROUPS = HOSTS["On the alert's host (its `instance` label, any managed host):"]
# The TLS endpoint every exporter host of the lab serves: pgBackRest's TLS server.
TLS_PORT = 8432
# One command's bound; a Confirm command answers in seconds.
COMMAND_TIMEOUT = 60
PSQL_USER = re.compile(r"\buser=(\w+)")
# Units a command names, or unit patterns in single quotes: journalctl and systemctl answer 0 for a
# unit that does not exist, systemctl status for a pattern that matches nothing.
UNIT = re.compile(
    r"(?:journalctl -u|systemctl (?:status|list-timers)) ('[^'\s]+'|[\w@.-]+)(?=\s|$)"
)
REDIS_USER = re.compile(r"--user\s+(\S+)")


@dataclass(frozen=True)
class Run:
    """One block on one lab host, with the alert's host it stands for."""

    block: Block
    host: str
    instance: str | None

    @property
    def label(self) -> str:
        return (
            self.host if self.instance in (None, self.host) else f"{self.host} for {self.instance}"
        )


@dataclass(frozen=True)
class Outcome:
    command: str
    status: int | None  # None: the script ended before the command did
    output: str


def _hosts(groups: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(host for group in groups for host in group_hosts(group)))


def _fqdn(group: str) -> str:
    return lab_host(group_hosts(group)[0]).fqdn


def lab_values(instance: str | None) -> dict[str, str]:
    """Every placeholder of the convention with its lab value (<host>: the given alert's host)."""
    cluster = group_hosts("postgres")[0]
    values = {
        "<db host FQDN>": _fqdn("postgres"),
        "<pgbouncer host FQDN>": _fqdn("pgbouncer"),
        "<redis host FQDN>": _fqdn("redis"),
        "<backup host FQDN>": _fqdn("backup"),
        "<cluster>": cluster,
        "<database>": DATABASE,
        "<file>": f"pg_dump-{cluster}-{DATABASE}.json",
        "<port>": str(TLS_PORT),
    }
    if instance is not None:
        values["<host>"] = instance
        values["<host FQDN>"] = lab_host(instance).fqdn
    return values


def test_every_placeholder_has_a_lab_value() -> None:
    assert set(lab_values(group_hosts("backup")[0])) == set(PLACEHOLDERS)


def substitute(command: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        command = command.replace(name, value)
    return command


def runs(block: Block) -> list[Run]:
    exporter_hosts = _hosts(EXPORTER_GROUPS)
    if block.groups in (EXPORTER_GROUPS, MANAGED_GROUPS):
        return [Run(block, host, host) for host in _hosts(block.groups)]
    instances: list[str | None] = [None]
    if block.placeholders & {"<host>", "<host FQDN>"}:
        instances = list(exporter_hosts)
    return [Run(block, host, instance) for host in _hosts(block.groups) for instance in instances]


def unit_checks(block: Block) -> list[str]:
    """A command per unit the block names that fails when the unit does not exist on the host, and
    per quoted pattern that fails when no loaded unit matches it."""
    units = dict.fromkeys(name for command in block.commands for name in UNIT.findall(command))
    return [
        f'test -n "$(systemctl list-units --all --plain --no-legend {unit})"'
        if unit.startswith("'")
        else f"systemctl cat {unit} >/dev/null"
        for unit in units
    ]


def credentials(command: str, secret: Callable[[str], str]) -> tuple[str | None, str | None]:
    """(PGPASSWORD, stdin) for a command: psql's role from its conninfo, redis-cli --askpass's
    user from --user."""
    password = stdin = None
    if "psql" in command.split() and (match := PSQL_USER.search(command)):
        password = secret(ROLE_SECRETS[match[1]])
    if "--askpass" in command.split() and (match := REDIS_USER.search(command)):
        stdin = secret(f"redis_{match[1]}")
    return password, stdin


def script(commands: list[tuple[str, str | None, str | None]], marker: str) -> str:
    """A bash script (sent on stdin, so no secret is in argv) running each command in its own
    bash with pipefail, its stdin a password or /dev/null, framed by markers with its status."""
    lines = ["cd /"]
    for number, (command, password, stdin) in enumerate(commands):
        env = ""
        if password is not None:
            lines.append(f"pw={shlex.quote(password)}")
            env = 'PGPASSWORD="$pw" '
        redirect = "</dev/null"
        if stdin is not None:
            lines.append(f"in={shlex.quote(stdin)}")
            redirect = '<<<"$in"'
        lines += [
            f"printf '\\n{marker} begin {number}\\n'",
            f"{env}timeout {COMMAND_TIMEOUT} bash -o pipefail -c {shlex.quote(command)} "
            f"{redirect} 2>&1",
            f"printf '\\n{marker} end {number} %d\\n' \"$?\"",
            "unset pw in",
        ]
    return "\n".join(lines) + "\n"


def parse_outcomes(output: str, commands: list[str], marker: str) -> list[Outcome]:
    found: dict[int, Outcome] = {}
    for part in output.split(f"\n{marker} begin ")[1:]:
        head, _, rest = part.partition("\n")
        number = int(head)
        body, _, tail = rest.partition(f"\n{marker} end {number} ")
        status = int(tail.split()[0]) if tail else None
        found[number] = Outcome(commands[number], status, body)
    return [found.get(n, Outcome(c, None, "")) for n, c in enumerate(commands)]


def run_on_host(
    host: str, items: list[tuple[Run, str]], secret: Callable[[str], str]
) -> list[Outcome]:
    """Run the given (run, command) pairs on one lab host in one ssh call."""
    marker = f"@@pgstack-runbook-{uuid.uuid4().hex}"
    prepared = [(command, *credentials(command, secret)) for _, command in items]
    timeout = 30 + COMMAND_TIMEOUT * len(prepared)
    result = lab_ssh(
        host, "bash -s", stdin=script(prepared, marker), timeout=timeout, errors="replace"
    )
    outcomes = parse_outcomes(result.stdout, [command for _, command in items], marker)
    # A command that did not finish shows what ssh said.
    return [
        o if o.status is not None else Outcome(o.command, None, o.output + result.stderr)
        for o in outcomes
    ]


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, secret: Callable[[str], str], lab_dir: Path
) -> dict[str, list[tuple[Run, Outcome]]]:
    """The outcome of every command of the selected blocks, run once for the module: one ssh call
    per lab host, the hosts side by side."""
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if item.path == Path(__file__) and hasattr(item, "callspec")
    ]
    per_host: dict[str, list[tuple[Run, str]]] = {}
    for block in selected:
        for run in runs(block):
            values = lab_values(run.instance)
            for command in [*block.commands, *unit_checks(block)]:
                per_host.setdefault(run.host, []).append((run, substitute(command, values)))
    with ThreadPoolExecutor(max_workers=len(per_host) or 1) as pool:
        futures = {
            host: pool.submit(run_on_host, host, items, secret) for host, items in per_host.items()
        }
    by_block: dict[str, list[tuple[Run, Outcome]]] = {}
    for host, future in futures.items():
        for (run, _), outcome in zip(per_host[host], future.result(), strict=True):
            by_block.setdefault(run.block.id, []).append((run, outcome))
    return by_block


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.id)
def test_runbook_block_runs_as_written(
    block: Block,
    outcomes: dict[str, list[tuple[Run, Outcome]]],
    secret: Callable[[str], str],
    lab_dir: Path,
) -> None:
    results = outcomes[block.id]
    assert results, f"{block.id}: nothing ran"
    report = []
    for run, outcome in results:
        ending = "did not finish" if outcome.status is None else f"exit {outcome.status}"
        report.append(
            f"--- {run.label}$ {outcome.command}\n{outcome.output.rstrip()}\n--- {ending}"
        )
    text = "\n".join(report)
    hidden = [secret(path.name) for path in (lab_dir / "secrets").iterdir()]
    assert not [value for value in hidden if value in text], f"{block.id}: a password in the output"
    failed = [outcome for _, outcome in results if outcome.status != 0]
    assert not failed, f"docs/runbooks/{block.runbook}.md:{block.line} ({block.host})\n{text}"

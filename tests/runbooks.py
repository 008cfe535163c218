"""The command blocks of the runbooks (docs/runbooks/*.md) and the convention they follow
(docs/alerts.md, "Runbooks"): the sentence before a block names the host it runs on, and the
block's only placeholders are the documented ones (a procedure may add sentences and placeholders of
its own, which it documents itself: OWN_HOSTS, OWN_PLACEHOLDERS).

Shared by tests/static/test_runbooks.py (every block of every runbook follows the convention),
tests/e2e/test_runbooks.py (every block of the alert runbooks runs as written on the lab) and the
e2e modules of the procedures (PROCEDURES: their blocks run in order, section by section).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTROLLER = "On the controller:"
RUNBOOKS = REPO_ROOT / "docs/runbooks"
# Step-by-step procedures that change the system -> the e2e module that runs them as written, in
# order and with their state. They follow the convention like the alert runbooks (checked offline),
# but tests/e2e/test_runbooks.py, which runs every block as a read-only check, leaves them out.
PROCEDURES: dict[str, str] = {
    "migration-rollback.md": "tests/e2e/test_migration_rollback.py",
    "dr-rebuild.md": "tests/e2e/test_dr_rebuild.py",
    "upgrade-to-debian13.md": "tests/e2e/test_upgrade.py",
    "ha-replace-member.md": "tests/e2e/test_ha.py",
    "ha-switchover.md": "tests/e2e/test_ha.py",
    "ha-rolling-restart.md": "tests/e2e/test_ha.py",
    "ha-reinit-replica.md": "tests/e2e/test_ha.py",
}

# The sentence right before a block -> the inventory groups whose hosts run it.
HOSTS: dict[str, tuple[str, ...]] = {
    "On the database host:": ("postgres",),
    "On the PgBouncer host:": ("pgbouncer",),
    "On the Redis host:": ("redis",),
    "On the backup host:": ("backup",),
    "On the monitoring host:": ("monitoring",),
    # The exporter's host that raised the alert: every host the exporter runs on.
    "On the alert's host (its `instance` label):": (
        "postgres",
        "pgbouncer",
        "redis",
        "sentinel",
        "backup",
    ),
    # The host a node exporter alert names: any managed host (every group of the inventory).
    "On the alert's host (its `instance` label, any managed host):": (
        "postgres",
        "pgbouncer",
        "redis",
        "backup",
        "monitoring",
        "app",
    ),
    # The machine that runs Ansible, in the repository's root (procedures only).
    CONTROLLER: (),
}

# Placeholder -> what an operator puts there (the alert's labels name most of them).
PLACEHOLDERS: dict[str, str] = {
    "<host>": "the alert's host, its `instance` label (an inventory host name)",
    "<host FQDN>": "the FQDN of `<host>` (the name its certificates carry)",
    "<port>": "the port of the alert's `address` label (the TLS endpoint on `<host>`)",
    "<db host FQDN>": "the FQDN of the database host (PostgreSQL)",
    "<pgbouncer host FQDN>": "the FQDN of the PgBouncer host",
    "<redis host FQDN>": "the FQDN of the Redis host",
    "<cluster>": "the inventory name of the database host (labels `cluster`, `target`)",
    "<database>": "a database name (label `database`)",
    "<file>": "a status file name (label `file`)",
    "<backup host FQDN>": "the FQDN of the backup host (pgBackRest repository, dumps)",
}
# Placeholders of the procedures only: values the operator chose, not an alert's labels.
PROCEDURE_PLACEHOLDERS: dict[str, str] = {
    "<env>": "the inventory the playbooks run with (`inventory/<env>`)",
    "<label>": "the migration's label: its dump's suffix and its restore point's name",
    "<disaster time>": "when the host was lost, UTC YYYY-MM-DDTHH:MM:SSZ (the RPO counts from it)",
    "<member>": "a member of the Patroni cluster (an inventory host of group postgres)",
}

# Sentences and placeholders of one procedure only, which that procedure defines in its own tables
# (tests/static/test_runbooks.py checks that it does) instead of docs/alerts.md: the upgrade runs
# on two deployments at once, the old hosts and the new ones, which the shared sentences cannot tell
# apart. Procedure -> sentence -> the inventory groups whose hosts run it (in that deployment).
OWN_HOSTS: dict[str, dict[str, tuple[str, ...]]] = {
    "upgrade-to-debian13.md": {
        "On the old database host:": ("postgres",),
        "On the new database host:": ("postgres",),
        "On the new backup host:": ("backup",),
    },
}
# Procedure -> placeholder -> what an operator puts there.
OWN_PLACEHOLDERS: dict[str, dict[str, str]] = {
    "upgrade-to-debian13.md": {
        "<new env>": "the inventory of the new hosts (`inventory/<new env>`)",
        "<old db host>": "the old database host, as `ssh` reaches it from the controller",
        "<new db host>": "the new database host, as `ssh` reaches it from the controller",
        "<migration role>": "the migration role of `<database>` (`kind: migration`), its owner",
    },
}

FENCE = "```"
# Info strings of command blocks the convention would not see: a runbook writes them as ```sh.
SHELL_ALIASES = frozenset({"", "bash", "shell", "console", "shell-session"})
PLACEHOLDER = re.compile(r"<[a-z][A-Za-z ]*>")


class ConventionError(ValueError):
    """A block of a runbook that the convention cannot run unambiguously."""


@dataclass(frozen=True)
class Block:
    runbook: str  # the alert name (file name without .md)
    index: int  # 1-based among the runbook's sh blocks
    line: int  # line number of the opening fence
    host: str  # the sentence that names the host
    commands: tuple[str, ...]  # one per command line, continuation lines joined
    section: str = ""  # the `## ` heading the block is under, without the hashes

    @property
    def id(self) -> str:
        return f"{self.runbook}-{self.index}"

    @property
    def groups(self) -> tuple[str, ...]:
        """The inventory groups whose hosts run the block; () for the controller."""
        if self.host in HOSTS:
            return HOSTS[self.host]
        return OWN_HOSTS[f"{self.runbook}.md"][self.host]

    @property
    def on_controller(self) -> bool:
        return self.host == CONTROLLER

    @property
    def placeholders(self) -> set[str]:
        return {name for command in self.commands for name in PLACEHOLDER.findall(command)}


def runbook_files(*, procedures: bool = False) -> list[Path]:
    """The alert runbooks; with procedures=True the procedures too."""
    return sorted(p for p in RUNBOOKS.glob("*.md") if procedures or p.name not in PROCEDURES)


def _commands(lines: list[str]) -> tuple[str, ...]:
    """Command lines of a block: comments and blank lines dropped, `\\` continuations joined."""
    commands: list[str] = []
    pending = ""
    for raw in lines:
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        commands.append(pending + line)
        pending = ""
    if pending:
        commands.append(pending)
    return tuple(commands)


def parse(path: Path) -> list[Block]:
    """The sh blocks of one runbook; ConventionError names the first one that breaks the rules."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    where = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    known_placeholders = set(PLACEHOLDERS)
    if path.name in PROCEDURES:
        known_placeholders |= set(PROCEDURE_PLACEHOLDERS) | set(OWN_PLACEHOLDERS.get(path.name, {}))
    known_hosts = [*HOSTS, *OWN_HOSTS.get(path.name, {})]
    section = ""
    number = 0
    while number < len(lines):
        opening = lines[number]
        if opening.startswith("## "):
            section = opening[3:].strip()
        if not opening.startswith(FENCE):
            number += 1
            continue
        info = opening[len(FENCE) :].strip()
        end = next((n for n in range(number + 1, len(lines)) if lines[n] == FENCE), None)
        if end is None:
            raise ConventionError(f"{where}:{number + 1}: a code block that is never closed")
        if info in SHELL_ALIASES:
            raise ConventionError(
                f"{where}:{number + 1}: commands go in ```sh blocks, not {opening!r}"
            )
        if info == "sh":
            before = [line for line in lines[:number] if line.strip()]
            sentence = before[-1].strip() if before else ""
            if sentence not in known_hosts:
                known = ", ".join(f'"{s}"' for s in known_hosts)
                raise ConventionError(
                    f"{where}:{number + 1}: the line before the block is {sentence!r}, "
                    f"not one that names its host ({known})"
                )
            if sentence == CONTROLLER and path.name not in PROCEDURES:
                raise ConventionError(
                    f"{where}:{number + 1}: an alert runbook's commands run on a managed host; "
                    f"{CONTROLLER!r} is for the procedures ({', '.join(sorted(PROCEDURES))})"
                )
            commands = _commands(lines[number + 1 : end])
            if not commands:
                raise ConventionError(f"{where}:{number + 1}: a block without a command")
            block = Block(path.stem, len(blocks) + 1, number + 1, sentence, commands, section)
            unknown = sorted(block.placeholders - known_placeholders)
            if unknown:
                raise ConventionError(
                    f"{where}:{number + 1}: unknown placeholders {unknown} "
                    f"(known: {sorted(known_placeholders)})"
                )
            blocks.append(block)
        number = end + 1
    return blocks


def all_blocks() -> list[Block]:
    """The blocks of the alert runbooks."""
    return [block for path in runbook_files() for block in parse(path)]


def sections(path: Path) -> dict[str, list[Block]]:
    """The blocks of a procedure by the heading they are under, in the file's order."""
    grouped: dict[str, list[Block]] = {}
    for block in parse(path):
        grouped.setdefault(block.section, []).append(block)
    return grouped

"""The alert runbooks follow the convention of docs/alerts.md ("Runbooks") that lets
tests/e2e/test_runbooks.py run every command block as written: each block names its host, uses
only the documented placeholders, and names only metrics the exporter emits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbooks import (
    HOSTS,
    PLACEHOLDERS,
    REPO_ROOT,
    ConventionError,
    all_blocks,
    parse,
    runbook_files,
)

ALERTS_DOC = REPO_ROOT / "docs/alerts.md"
CATALOGUE = REPO_ROOT / "docs/metrics.md"
METRIC = re.compile(r"\bpgstack_[a-z0-9_]+\b")
PREFIX = re.compile(r"\b(pgstack_[a-z0-9_]*)\.\*")


@pytest.mark.parametrize("path", runbook_files(), ids=lambda path: path.stem)
def test_runbook_blocks_follow_the_convention(path: Path) -> None:
    blocks = parse(path)
    assert blocks, f"{path.name}: no ```sh block to confirm the alert with"


def test_the_convention_is_documented_as_the_code_reads_it() -> None:
    """docs/alerts.md lists exactly the host sentences and placeholders the tests know."""
    text = ALERTS_DOC.read_text().split("\n## Runbooks\n", 1)[1].split("\n## ", 1)[0]
    sentences = set(re.findall(r"^\| (On the .+?:) \|", text, re.MULTILINE))
    placeholders = set(re.findall(r"^\| `(<[^`]+>)` \|", text, re.MULTILINE))
    assert sentences == set(HOSTS)
    assert placeholders == set(PLACEHOLDERS)


def test_runbook_queries_name_only_catalogued_metrics() -> None:
    """The Prometheus queries of the runbooks name metrics the exporter emits; a regex selector
    such as pgstack_drill_rto.* matches at least one."""
    known = set(re.findall(r"^\| `(pgstack_[a-z0-9_]+)`", CATALOGUE.read_text(), re.MULTILINE))
    unknown = []
    for block in all_blocks():
        for command in block.commands:
            if not command.startswith("promtool query"):
                continue
            for prefix in PREFIX.findall(command):
                if not any(name.startswith(prefix) for name in known):
                    unknown.append(f"{block.id}: {prefix}.*")
            for name in METRIC.findall(PREFIX.sub("", command)):
                if name not in known:
                    unknown.append(f"{block.id}: {name}")
    assert unknown == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("## Confirm\n\n```sh\nsystemctl status pgbouncer\n```\n", "names its host"),
        ("On the database host\n\n```sh\nsystemctl status pgbouncer\n```\n", "names its host"),
        ("On the database host:\n\n```sh\ncat /var/lib/<thing>.json\n```\n", "<thing>"),
        ("On the database host:\n\n```bash\nsystemctl status pgbouncer\n```\n", "```sh blocks"),
        ("On the database host:\n\n```sh\n# only a comment\n```\n", "without a command"),
        ("On the database host:\n\n```sh\nsystemctl status pgbouncer\n", "never closed"),
    ],
    ids=["no-host", "host-without-colon", "unknown-placeholder", "bash", "empty", "unclosed"],
)
def test_a_block_outside_the_convention_is_refused(tmp_path: Path, text: str, message: str) -> None:
    runbook = tmp_path / "SomeAlert.md"
    runbook.write_text(f"# SomeAlert\n\n{text}")
    with pytest.raises(ConventionError, match=re.escape(message)):
        parse(runbook)


def test_continuation_lines_are_one_command(tmp_path: Path) -> None:
    runbook = tmp_path / "SomeAlert.md"
    runbook.write_text(
        "# SomeAlert\n\nOn the backup host:\n\n```sh\n# a comment\nls -l \\\n  /var/lib/pgstack\n"
        "df -h </dev/null\n```\n"
    )
    [block] = parse(runbook)
    assert block.id == "SomeAlert-1"
    assert block.groups == ("backup",)
    assert block.commands == ("ls -l   /var/lib/pgstack", "df -h </dev/null")
    assert block.placeholders == set()

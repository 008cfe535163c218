"""The runbooks follow the convention of docs/alerts.md ("Runbooks") that lets the e2e tests run
every command block as written (tests/e2e/test_runbooks.py the alert runbooks', the module named in
PROCEDURES a procedure's): each block names its host, uses only the documented placeholders, and
names only metrics the exporter emits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbooks import (
    HOSTS,
    OWN_HOSTS,
    OWN_PLACEHOLDERS,
    PLACEHOLDERS,
    PROCEDURE_PLACEHOLDERS,
    PROCEDURES,
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


@pytest.mark.parametrize("path", runbook_files(procedures=True), ids=lambda path: path.stem)
def test_runbook_blocks_follow_the_convention(path: Path) -> None:
    blocks = parse(path)
    assert blocks, f"{path.name}: no ```sh block to confirm the alert with"


@pytest.mark.parametrize("name", sorted(PROCEDURES))
def test_every_procedure_has_the_module_that_runs_it(name: str) -> None:
    assert (REPO_ROOT / "docs/runbooks" / name).is_file()
    module = REPO_ROOT / PROCEDURES[name]
    assert module.is_file(), f"{name}: {PROCEDURES[name]} does not exist"
    assert f"docs/runbooks/{name}" in module.read_text(), f"{module} does not read {name}"


def test_the_convention_is_documented_as_the_code_reads_it() -> None:
    """docs/alerts.md lists exactly the host sentences and placeholders the tests know."""
    text = ALERTS_DOC.read_text().split("\n## Runbooks\n", 1)[1].split("\n## ", 1)[0]
    sentences = set(re.findall(r"^\| (On the .+?:) \|", text, re.MULTILINE))
    placeholders = set(re.findall(r"^\| `(<[^`]+>)` \|", text, re.MULTILINE))
    assert sentences == set(HOSTS)
    assert placeholders == set(PLACEHOLDERS) | set(PROCEDURE_PLACEHOLDERS)


@pytest.mark.parametrize("name", sorted(OWN_HOSTS.keys() | OWN_PLACEHOLDERS.keys()))
def test_a_procedure_documents_its_own_sentences_and_placeholders(name: str) -> None:
    """A procedure's own sentences and placeholders are in its own tables, as docs/alerts.md lists
    the shared ones, and none of them is a shared one under another meaning."""
    assert name in PROCEDURES
    text = (REPO_ROOT / "docs/runbooks" / name).read_text()
    sentences = set(re.findall(r"^\| (On the .+?:) \|", text, re.MULTILINE))
    placeholders = set(re.findall(r"^\| `(<[^`]+>)` \|", text, re.MULTILINE))
    own_hosts, own_placeholders = OWN_HOSTS.get(name, {}), OWN_PLACEHOLDERS.get(name, {})
    assert set(own_hosts) <= sentences
    assert set(own_placeholders) <= placeholders
    assert sentences <= set(HOSTS) | set(own_hosts)
    assert placeholders <= set(PLACEHOLDERS) | set(PROCEDURE_PLACEHOLDERS) | set(own_placeholders)
    assert not set(own_hosts) & set(HOSTS)
    assert not set(own_placeholders) & (set(PLACEHOLDERS) | set(PROCEDURE_PLACEHOLDERS))


def test_a_procedures_own_sentences_and_placeholders_are_its_alone(tmp_path: Path) -> None:
    """Another runbook with an upgrade sentence or placeholder is refused."""
    name = "upgrade-to-debian13.md"
    [sentence, *_] = OWN_HOSTS[name]
    [placeholder, *_] = OWN_PLACEHOLDERS[name]
    other = tmp_path / sorted(set(PROCEDURES) - {name})[0]
    other.write_text(f"# A procedure\n\n{sentence}\n\n```sh\nsystemctl status pgbouncer\n```\n")
    with pytest.raises(ConventionError, match="names its host"):
        parse(other)
    other.write_text(f"# A procedure\n\nOn the controller:\n\n```sh\nssh {placeholder} true\n```\n")
    with pytest.raises(ConventionError, match=re.escape(placeholder)):
        parse(other)
    upgrade = tmp_path / name
    upgrade.write_text(f"# The upgrade\n\n{sentence}\n\n```sh\nssh {placeholder} true\n```\n")
    [block] = parse(upgrade)
    assert block.groups == OWN_HOSTS[name][sentence]
    assert block.placeholders == {placeholder}


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
        ("On the controller:\n\n```sh\nls playbooks\n```\n", "is for the procedures"),
        ("On the backup host:\n\n```sh\nls /var/backups/<label>\n```\n", "<label>"),
    ],
    ids=[
        "no-host",
        "host-without-colon",
        "unknown-placeholder",
        "bash",
        "empty",
        "unclosed",
        "controller",
        "procedure-placeholder",
    ],
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


def test_a_procedure_has_the_controller_and_its_own_placeholders(tmp_path: Path) -> None:
    """A procedure's blocks may run on the controller and name <env> and <label>; each block
    knows the section it is under."""
    name = sorted(PROCEDURES)[0]
    runbook = tmp_path / name
    runbook.write_text(
        "# A procedure\n\n## 1. Before\n\nOn the controller:\n\n```sh\n"
        "ls inventory/<env>\n```\n\n## 2. After\n\nOn the backup host:\n\n```sh\n"
        "ls /var/backups/<label>\n```\n"
    )
    first, second = parse(runbook)
    assert (first.section, first.on_controller, first.groups) == ("1. Before", True, ())
    assert (second.section, second.on_controller, second.groups) == ("2. After", False, ("backup",))
    assert second.placeholders == {"<label>"}

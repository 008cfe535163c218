"""One restore-point label rule on both sides: pre_migration.yml (the preflight role's
restore_point_label test) and pgstack-backup dump --label (pgstack_backup.cli.LABEL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pgstack_backup.cli import LABEL, main
from pgstack_backup.errors import ExitCode
from preflight_plugin import load

restore_point_label = load().restore_point_label

# (label, accepted). pg_create_restore_point() refuses 64 bytes or more (MAXFNAMELEN - 1 = 63).
CASES: list[tuple[str, bool]] = [
    ("before-0042", True),
    ("a", True),
    ("0", True),
    ("release_2.4-rc1", True),
    ("x" * 60, True),
    ("x" * 63, True),
    ("x" * 64, False),
    ("", False),
    ("Bad Label", False),
    ("Upper", False),
    ("-leading-dash", False),
    (".hidden", False),
    ("_underscore", False),
    ("a/b", False),
    ("a b", False),
    ("label\n", False),
    ("tab\tlabel", False),
    ("été", False),
]
IDS = [repr(label) if len(label) < 20 else f"{len(label)}-chars" for label, _ in CASES]


@pytest.mark.parametrize(("label", "accepted"), CASES, ids=IDS)
def test_the_playbook_rule(label: str, accepted: bool) -> None:
    assert restore_point_label(label) is accepted


@pytest.mark.parametrize(("label", "accepted"), CASES, ids=IDS)
def test_the_runner_rule(label: str, accepted: bool) -> None:
    assert (LABEL.fullmatch(label) is not None) is accepted


def test_the_label_is_checked_as_a_string() -> None:
    assert restore_point_label(42) is False


@pytest.mark.parametrize("label", [label for label, accepted in CASES if not accepted], ids=repr)
def test_the_runner_refuses_a_bad_label_as_usage_error(tmp_path: Path, label: str) -> None:
    config = tmp_path / "pg_dump.yml"
    connection = {
        "host": "db1.pgstack.internal",
        "user": "pgstack_backup",
        "passfile": str(tmp_path / "pgpass"),
        "sslrootcert": str(tmp_path / "ca.crt"),
    }
    settings = {
        "version": 1,
        "cluster": "db1",
        "connection": connection,
        "bin_dir": str(tmp_path / "bin"),  # never reached: the label is refused first
        "destination": str(tmp_path / "dumps"),
        "status_dir": str(tmp_path / "status"),
        "databases": ["app"],
    }
    config.write_text(yaml.safe_dump(settings))
    assert main(["--config.file", str(config), "dump", f"--label={label}"]) == ExitCode.USAGE

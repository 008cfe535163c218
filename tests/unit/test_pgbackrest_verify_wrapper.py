"""roles/pgbackrest's pgstack-pgbackrest-verify, run by /bin/sh against a stand-in pgbackrest.

The stand-in prints the reports pgBackRest's verify and info commands print (their text formats
are the same in the two releases pgstack supports) and records its arguments, so each case shows
what the wrapper asked pgBackRest for and what it made of the answer: verify can exit 0 while its
report says ``status: error``, and ``--newest`` must verify the newest backup with ``--set``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WRAPPER = REPO_ROOT / "roles/pgbackrest/files/usr/local/sbin/pgstack-pgbackrest-verify"

FULL = "20261122-010002F"
DIFF = f"{FULL}_20261123-010003D"

INFO = f"""stanza: main
    status: ok
    cipher: aes-256-cbc

    db (current)
        wal archive min/max (17): 000000010000000000000003/00000001000000000000000A

        full backup: {FULL}
            timestamp start/stop: 2026-11-22 01:00:02+00 / 2026-11-22 01:00:09+00
            wal start/stop: 000000010000000000000003 / 000000010000000000000003
            database size: 22.1MB, database backup size: 22.1MB
            repo1: backup size: 2.9MB

        diff backup: {DIFF}
            timestamp start/stop: 2026-11-23 01:00:03+00 / 2026-11-23 01:00:05+00
            wal start/stop: 000000010000000000000008 / 000000010000000000000008
            database size: 22.1MB, database backup size: 8.3KB
            repo1: backup size: 1.1KB
            backup reference total: 1 full
"""

INFO_EMPTY = """stanza: main
    status: error (no valid backups)
    cipher: aes-256-cbc

    db (current)
        wal archive min/max (17): none present
"""


def report(status: str = "ok", backups: dict[str, str] | None = None) -> str:
    lines = [
        "stanza: main",
        f"status: {status}",
        "  archiveId: 17-1, total WAL checked: 8, total valid WAL: 8",
        "    missing: 0, checksum invalid: 0, size invalid: 0, other: 0",
    ]
    for label, state in (backups or {FULL: "valid", DIFF: "valid"}).items():
        lines += [
            f"  backup: {label}, status: {state}, total files checked: 990, total valid files: 990",
            "    missing: 0, checksum invalid: 0, size invalid: 0, other: 0",
        ]
    return "\n".join(lines) + "\n"


FAKE = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_LOG"
case " $* " in
    *" info "*) printf '%s' "$FAKE_INFO"; exit "${FAKE_INFO_RC:-0}" ;;
    *" verify "*) printf '%s' "$FAKE_VERIFY"; exit "${FAKE_VERIFY_RC:-0}" ;;
esac
exit 99
"""


class Wrapper:
    def __init__(self, tmp: Path) -> None:
        fake = tmp / "pgbackrest"
        fake.write_text(FAKE, encoding="utf-8")
        fake.chmod(0o755)
        script = tmp / "pgstack-pgbackrest-verify"
        source = WRAPPER.read_text(encoding="utf-8")
        assert source.count("/usr/bin/pgbackrest") == 2
        script.write_text(source.replace("/usr/bin/pgbackrest", str(fake)), encoding="utf-8")
        self.script = script
        self.log = tmp / "calls"

    def run(
        self, *args: str, info: str = INFO, verify: str = "", verify_rc: int = 0
    ) -> subprocess.CompletedProcess[str]:
        self.log.write_text("", encoding="utf-8")
        env = {
            **os.environ,
            "FAKE_LOG": str(self.log),
            "FAKE_INFO": info,
            "FAKE_VERIFY": verify,
            "FAKE_VERIFY_RC": str(verify_rc),
        }
        return subprocess.run(
            ["/bin/sh", str(self.script), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=30,
        )

    def calls(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def wrapper(tmp_path: Path) -> Wrapper:
    return Wrapper(tmp_path)


def test_the_whole_repository_is_verified_without_set(wrapper: Wrapper) -> None:
    result = wrapper.run("main", verify=report())
    assert result.returncode == 0, result.stderr
    assert wrapper.calls() == ["--stanza=main --repo=1 --output=text --verbose verify"]
    assert "status: ok" in result.stdout


def test_a_report_of_an_error_fails_although_verify_exited_0(wrapper: Wrapper) -> None:
    result = wrapper.run("main", verify=report(status="error"))
    assert result.returncode == 1
    assert "pgstack-pgbackrest-verify: " in result.stderr
    assert "exited" not in result.stderr


def test_an_invalid_backup_fails(wrapper: Wrapper) -> None:
    result = wrapper.run("main", verify=report(backups={FULL: "valid", DIFF: "invalid"}))
    assert result.returncode == 1
    assert "invalid backup" in result.stderr


def test_a_failing_verify_passes_its_exit_status_on(wrapper: Wrapper) -> None:
    result = wrapper.run("main", verify="ERROR: [029]: stanza mismatch\n", verify_rc=29)
    assert result.returncode == 29
    assert "pgbackrest verify exited 29" in result.stderr


def test_newest_verifies_the_newest_backup_with_set(wrapper: Wrapper) -> None:
    result = wrapper.run("--newest", "main", verify=report(backups={DIFF: "valid"}))
    assert result.returncode == 0, result.stderr
    assert wrapper.calls() == [
        "--stanza=main --repo=1 --output=text info",
        f"--stanza=main --repo=1 --set={DIFF} --output=text --verbose verify",
    ]
    assert f"verifying backup {DIFF} of stanza main" in result.stdout


def test_newest_fails_when_that_backup_is_invalid(wrapper: Wrapper) -> None:
    result = wrapper.run("--newest", "main", verify=report(backups={DIFF: "invalid"}))
    assert result.returncode == 1


def test_newest_fails_when_the_report_does_not_show_that_backup_valid(wrapper: Wrapper) -> None:
    """A report without the backup (e.g. "backup set ... is not valid", status: error)."""
    missing = f"stanza: main\nstatus: error\n  backup set {DIFF} is not valid\n"
    result = wrapper.run("--newest", "main", verify=missing)
    assert result.returncode == 1
    only_full = wrapper.run("--newest", "main", verify=report(backups={FULL: "valid"}))
    assert only_full.returncode == 1
    assert f"does not show backup {DIFF} valid" in only_full.stderr


def test_newest_where_set_is_ignored_still_checks_that_backup(wrapper: Wrapper) -> None:
    """A release that ignores --set verifies everything: the newest backup is among them."""
    result = wrapper.run("--newest", "main", verify=report())
    assert result.returncode == 0, result.stderr


def test_newest_without_a_backup_fails_before_verify(wrapper: Wrapper) -> None:
    result = wrapper.run("--newest", "main", info=INFO_EMPTY, verify=report())
    assert result.returncode == 1
    assert "has no backup in repo1 to verify" in result.stderr
    assert wrapper.calls() == ["--stanza=main --repo=1 --output=text info"]


def test_extra_arguments_are_a_usage_error(wrapper: Wrapper) -> None:
    result = wrapper.run("main", "other")
    assert result.returncode == 2
    assert "usage: pgstack-pgbackrest-verify [--newest] STANZA" in result.stderr
    assert wrapper.calls() == []

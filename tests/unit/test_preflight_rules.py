"""The input rules the roles share (plugins/test/preflight.py), case by case.

They see values as the inventory wrote them, so a value the argument spec would coerce
("1_000", " 5", 5.0, True for an int) is refused here.
"""

from __future__ import annotations

from typing import Any

import pytest

from preflight_plugin import load

rules = load()


@pytest.mark.parametrize(
    ("value", "low", "high", "expected"),
    [
        (5, 1, None, True),
        ("5", 1, None, True),
        (0, 0, None, True),
        (0, 1, None, False),
        (-1, 0, None, False),
        ("-1", 0, None, False),
        (9, 0, 9, True),
        (10, 0, 9, False),
        ("1_000", 1, None, False),
        (" 5", 1, None, False),
        ("5\n", 1, None, False),
        ("many", 1, None, False),
        ("", 0, None, False),
        (5.0, 1, None, False),
        (True, 0, None, False),
        (None, 0, None, False),
        ("٣", 0, None, False),  # a digit, but not an ASCII one
    ],
)
def test_between(value: Any, low: int, high: int | None, expected: bool) -> None:
    assert rules.between(value, low, high) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, True), (65535, True), ("6432", True), (0, False), (65536, False), (70000, False),
     ("abc", False), ("", False)],
)  # fmt: skip
def test_port(value: Any, expected: bool) -> None:
    assert rules.port(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("app", True), ("_x", True), ("app_migration2", True), ("a" * 63, True), ("a" * 64, False),
     ("App", False), ("App-DB", False), ("2app", False), ("app\n", False), ("", False), (5, False)],
)  # fmt: skip
def test_sql_identifier(value: Any, expected: bool) -> None:
    assert rules.sql_identifier(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("CHANGE_ME", True), ("changeme", True), ("change-me-please", True), ("my-Placeholder", True),
     ("example-password-123", True), ("xxxxxxxx", True), ("XXXX", True),
     ("e2e-valid-password-0123456789", False), ("x1xxxxxxxxxxxxxxxxx", False)],
)  # fmt: skip
def test_placeholder(value: str, expected: bool) -> None:
    assert rules.placeholder(value) is expected


@pytest.mark.parametrize(
    ("value", "min_length", "expected"),
    [
        ("e2e-valid-password-0123456789", 16, True),
        ("0123456789abcdef", 16, True),
        ("0123456789abcde", 16, False),
        ("short", 16, False),
        ("", 16, False),
        ("CHANGE_ME_0123456789", 16, False),
        ("xxxxxxxxxxxxxxxxxxxx", 16, False),
        ("two-lines-0123456\nsecond", 16, False),
        ("carriage-return-0123\r", 16, False),
        ("0123456789abcdef0123456789abcdef", 32, True),
        ("0123456789abcdef", 32, False),
        (12345678901234567890, 16, False),
    ],
)
def test_secret(value: Any, min_length: int, expected: bool) -> None:
    assert rules.secret(value, min_length) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("*-*-* 03:00:00", True), ("Mon..Sat *-*-* 01:00:00", True), ("daily", True),
     ("Sun 25:00", True),  # one line of calendar characters; systemd-analyze refuses it
     ("daily\nExecStart=/bin/sh", False), ("weekly;reboot", False), ("", False), (3, False)],
)  # fmt: skip
def test_calendar_line(value: Any, expected: bool) -> None:
    assert rules.calendar_line(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("prometheus", True), ("grafana_ro", True), ("ops.team-1", True),
     ("prom:etheus", False), ("two words", False), ("", False), (None, False), (7, False)],
)  # fmt: skip
def test_web_user(value: Any, expected: bool) -> None:
    assert rules.web_user(value) is expected


def test_every_rule_is_registered() -> None:
    registered = rules.TestModule().tests()
    assert set(registered) == {
        "between", "port", "sql_identifier", "placeholder", "secret", "restore_point_label",
        "calendar_line", "web_user", "sentinel_master_name", "installed",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("packages", "facts", "expected"),
    [
        (["pgbouncer", "acl"], {"packages": {"pgbouncer": [{}], "acl": [{}]}}, True),
        (["pgbouncer", "acl"], {"packages": {"pgbouncer": [{}]}}, False),
        ("pgbouncer", {"packages": {"pgbouncer": [{}]}}, True),
        ([], {"packages": {}}, True),
        # No package facts (a role applied without validate.yml): not known, so apt runs.
        (["pgbouncer"], {}, False),
        ([], {"distribution": "Debian"}, False),
    ],
)
def test_installed_needs_every_package_in_the_facts(
    packages: object, facts: object, expected: bool
) -> None:
    assert rules.installed(packages, facts) is expected

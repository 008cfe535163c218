"""Jinja tests for the input rules several pgstack roles share; each rule is defined here once.

A test sees the value as the inventory wrote it. The role's argument spec has checked its type by
then, but the spec does not change the variable: tasks and templates render the uncoerced value
(``"1_000"`` passes ``type: int``), so these tests never coerce.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# A plain lower-case SQL identifier (NAMEDATALEN - 1 = 63 bytes), so SQL never needs quoting.
SQL_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# What a secret copied from an example or left unset looks like.
PLACEHOLDER = re.compile(r"change.?me|placeholder|example|^x+$", re.IGNORECASE)
# A restore point name (pg_create_restore_point takes at most MAXFNAMELEN - 1 = 63 bytes) that
# also ends a dump directory's name. scripts/pgstack_backup/cli.py holds the same rule (LABEL);
# tests/unit/test_restore_point_label.py checks both against the same cases.
RESTORE_POINT_LABEL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
# systemd OnCalendar expressions use these characters only (and never a line break).
CALENDAR_LINE = re.compile(r"[A-Za-z0-9 :*.,/~+-]+")
# A user of the monitoring plane's basic auth: a plain name (never a ':', which ends the user).
WEB_USER = re.compile(r"[A-Za-z0-9_.-]+")
# The name Redis Sentinel knows the replicated set by (the redis role's sentinel.conf, the
# exporter's configuration). exporters/pgstack_exporter/config.py holds the same rule
# (MASTER_NAME_RE); tests/unit/test_sentinel_master_name.py checks both against the same cases.
SENTINEL_MASTER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def between(value: Any, low: int, high: int | None = None) -> bool:
    """A whole number as written (an int or a string of digits), low to high (None: no bound)."""
    if isinstance(value, bool):
        return False
    written_as_digits = isinstance(value, str) and value.isascii() and value.isdigit()
    if not (isinstance(value, int) or written_as_digits):
        return False
    number = int(value)
    return number >= low and (high is None or number <= high)


def port(value: Any) -> bool:
    """A TCP port as written: a whole number from 1 to 65535."""
    return between(value, 1, 65535)


def sql_identifier(value: Any) -> bool:
    return isinstance(value, str) and SQL_IDENTIFIER.fullmatch(value) is not None


def placeholder(value: Any) -> bool:
    """The value looks like a placeholder (CHANGE_ME, example, xxxx), not like a real secret."""
    return PLACEHOLDER.search(str(value)) is not None


def secret(value: Any, min_length: int = 16) -> bool:
    """A usable secret: a string of min_length characters or more on one line, not a placeholder."""
    return (
        isinstance(value, str)
        and len(value) >= min_length
        and "\n" not in value
        and "\r" not in value
        and not placeholder(value)
    )


def restore_point_label(value: Any) -> bool:
    return isinstance(value, str) and RESTORE_POINT_LABEL.fullmatch(value) is not None


def calendar_line(value: Any) -> bool:
    """One line of the characters OnCalendar uses (systemd-analyze calendar decides the rest)."""
    return isinstance(value, str) and CALENDAR_LINE.fullmatch(value) is not None


def web_user(value: Any) -> bool:
    """A basic auth user name of the monitoring plane: letters, digits, _ . - (no ':')."""
    return isinstance(value, str) and WEB_USER.fullmatch(value) is not None


def sentinel_master_name(value: Any) -> bool:
    """A Sentinel master name: letters, digits, . _ - (no space, which would end it in a line of
    sentinel.conf), 64 at most."""
    return isinstance(value, str) and SENTINEL_MASTER_NAME.fullmatch(value) is not None


def installed(packages: Any, facts: Any) -> bool:
    """Every package named is installed, by the host's package facts (``ansible_facts``, filled by
    ``package_facts`` in playbooks/validate.yml). Without package facts: False, so apt decides."""
    known = facts.get("packages") if isinstance(facts, Mapping) else None
    if not isinstance(known, Mapping):
        return False
    names = [packages] if isinstance(packages, str) else list(packages)
    return all(name in known for name in names)


class TestModule:
    """pgstack's shared input rules."""

    def tests(self) -> dict[str, Callable[..., bool]]:
        return {
            "between": between,
            "port": port,
            "sql_identifier": sql_identifier,
            "placeholder": placeholder,
            "secret": secret,
            "restore_point_label": restore_point_label,
            "calendar_line": calendar_line,
            "web_user": web_user,
            "sentinel_master_name": sentinel_master_name,
            "installed": installed,
        }

"""One Sentinel master name rule on both sides: the roles (the preflight plugin's
sentinel_master_name test, for redis_sentinel_master_name and exporter_sentinel_master_name) and
pgstack-exporter's configuration (a sentinel target's master_name)."""

from __future__ import annotations

import pytest

from pgstack_exporter.config import ConfigError, parse
from preflight_plugin import load

sentinel_master_name = load().sentinel_master_name

# (name, accepted)
CASES: list[tuple[str, bool]] = [
    ("pgstack", True),
    ("mymaster", True),
    ("Cache-1.main_set", True),
    ("x" * 64, True),
    ("x" * 65, False),
    ("", False),
    ("my master", False),
    ("name\n", False),
    ("a/b", False),
    ("été", False),
]
IDS = [repr(name) if len(name) < 20 else f"{len(name)}-chars" for name, _ in CASES]


@pytest.mark.parametrize(("name", "accepted"), CASES, ids=IDS)
def test_the_roles_and_the_exporter_agree(name: str, accepted: bool) -> None:
    assert sentinel_master_name(name) is accepted
    config = {"version": 1, "sentinel": [{"name": "pg1", "host": "h", "username": "monitoring",
                                          "master_name": name}]}  # fmt: skip
    if accepted:
        assert parse(config).sentinel[0].master_name == name
        return
    with pytest.raises(ConfigError) as refused:
        parse(config)
    assert [p.split(":", 1)[0] for p in refused.value.problems] == ["sentinel[0].master_name"]


def test_a_name_that_is_not_a_string_is_refused() -> None:
    assert sentinel_master_name(5) is False
    assert sentinel_master_name(None) is False

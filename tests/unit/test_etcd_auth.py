"""The pure parts of the etcd_auth module (plugins/modules/etcd_auth.py): the key range a prefix
grants, permissions as etcd's gateway returns them, and what a role must be granted and revoked.
tests/integration/etcd runs the module against a real etcd."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight_plugin import load_file

etcd_auth = load_file(
    Path(__file__).resolve().parents[2] / "plugins/modules/etcd_auth.py", "pgstack_etcd_auth"
)
Permission = etcd_auth.Permission


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        (b"/service/", b"/service0"),
        (b"a", b"b"),
        (b"a\xff", b"b"),
        (b"a\xfe\xff\xff", b"a\xff"),
        (b"\xff\xff", b"\x00"),  # no key follows every key under it: from prefix on
    ],
)
def test_the_range_end_of_a_prefix_is_etcdctls(prefix: bytes, end: bytes) -> None:
    assert etcd_auth.prefix_range_end(prefix) == end


def test_a_user_wants_its_permission_on_its_prefix() -> None:
    user = {"name": "patroni", "password": "x", "prefix": "/service/", "permission": "read"}
    assert etcd_auth.wanted_permission(user) == Permission("READ", b"/service/", b"/service0")


def test_the_gateway_leaves_out_read_and_an_empty_range_end() -> None:
    """READ is the enum's 0 and an empty range_end is the field's default: both are omitted."""
    assert etcd_auth.permission_from_etcd({"key": "L3BnLw==", "range_end": "L3BnMA=="}) == (
        Permission("READ", b"/pg/", b"/pg0")
    )
    assert etcd_auth.permission_from_etcd({"permType": "WRITE", "key": "YQ=="}) == (
        Permission("WRITE", b"a", b"")
    )


WANTED = Permission("READWRITE", b"/service/", b"/service0")


@pytest.mark.parametrize(
    ("held", "grant", "revoke"),
    [
        ([WANTED], False, []),
        ([], True, []),
        # Another type on the same range: the grant replaces it, nothing to revoke.
        ([WANTED._replace(kind="READ")], True, []),
        # Another range: granted beside it, then revoked.
        (
            [Permission("READWRITE", b"/pg/", b"/pg0")],
            True,
            [Permission("READWRITE", b"/pg/", b"/pg0")],
        ),
        # The same key as a single key (no range_end) is another range.
        ([WANTED, WANTED._replace(range_end=b"")], False, [WANTED._replace(range_end=b"")]),
    ],
    ids=["held", "none", "other-type", "other-range", "single-key"],
)
def test_a_role_ends_with_the_wanted_permission_alone(
    held: list[object], grant: bool, revoke: list[object]
) -> None:
    assert etcd_auth.permission_changes(held, WANTED) == (grant, revoke)


def test_a_permission_reads_as_its_type_and_range() -> None:
    assert str(WANTED) == "readwrite on [/service/, /service0)"
    assert str(Permission("READ", b"a\xff", b"b")) == r"read on [a\xff, b)"


@pytest.mark.parametrize(
    ("users", "problem"),
    [
        ([{"name": "root", "prefix": "/"}], "users: root is etcd's own user"),
        (
            [{"name": "a", "prefix": "/a/"}, {"name": "a", "prefix": "/b/"}],
            "users: a is listed twice",
        ),
        ([{"name": "a", "prefix": ""}], "users: a has an empty prefix"),
    ],
    ids=["root", "twice", "empty-prefix"],
)
def test_users_the_spec_cannot_refuse_are_refused(
    users: list[dict[str, str]], problem: str
) -> None:
    assert etcd_auth.users_problem(users).startswith(problem)


def test_distinct_users_with_prefixes_pass() -> None:
    users = [{"name": "a", "prefix": "/a/"}, {"name": "b", "prefix": "/a/"}]
    assert etcd_auth.users_problem(users) is None

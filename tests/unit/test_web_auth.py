"""The web configuration's hashes (plugins/filter/web_auth.py): kept while they match, else new."""

from __future__ import annotations

import sys
from pathlib import Path

import bcrypt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins/filter"))
import web_auth

PASSWORD = "a-lab-password-0123456789"


def test_a_new_hash_checks_against_its_password() -> None:
    hashed = web_auth.bcrypt_hash(PASSWORD)
    assert hashed.startswith("$2b$10$")
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    assert not bcrypt.checkpw(b"another-password", hashed.encode())


def test_a_hash_that_matches_is_kept_so_a_second_converge_changes_nothing() -> None:
    first = web_auth.bcrypt_hash(PASSWORD)
    assert web_auth.bcrypt_hash(PASSWORD, first) == first


def test_apaches_2y_spelling_is_kept_when_it_matches() -> None:
    spelled_2y = (
        bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$")
    )
    assert web_auth.bcrypt_hash(PASSWORD, spelled_2y) == spelled_2y


@pytest.mark.parametrize(
    "current",
    [None, "", "not a hash", "$2b$10$short", "$1$md5crypt$xyz", 42],
    ids=["none", "empty", "text", "malformed", "md5crypt", "number"],
)
def test_anything_but_a_matching_hash_is_replaced(current: object) -> None:
    hashed = web_auth.bcrypt_hash(PASSWORD, current)
    assert hashed != current
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())


def test_a_changed_password_gets_a_new_hash() -> None:
    old = web_auth.bcrypt_hash(PASSWORD)
    new = web_auth.bcrypt_hash("the-next-password-0123456789", old)
    assert new != old
    assert bcrypt.checkpw(b"the-next-password-0123456789", new.encode())


@pytest.mark.parametrize("password", ["", None, 12345])
def test_an_empty_or_non_string_password_is_refused(password: object) -> None:
    with pytest.raises(web_auth.WebAuthError, match="empty or not a string"):
        web_auth.bcrypt_hash(password)


def test_the_filter_is_registered_under_its_name() -> None:
    assert web_auth.FilterModule().filters()["bcrypt_hash"] is web_auth.bcrypt_hash

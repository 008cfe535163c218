"""Jinja filters for the monitoring plane's web configuration (roles/pki/tasks/web_config.yml).

The servers of the monitoring plane (Prometheus, Alertmanager, the node exporter and
pgstack-exporter) check basic auth passwords against bcrypt hashes. A bcrypt hash carries a random
salt, so hashing the same password again gives another string: a converge that rehashed every
password would rewrite the file every time. ``bcrypt_hash`` keeps the hash the host already has
when it still matches the password, and makes a new one only when the password changed or the user
is new.

Needs the ``bcrypt`` Python package where Ansible runs (the controller).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The cost factor of new hashes: 2^10 rounds, what Prometheus' documentation uses in its example.
# The servers cache a successful check, so a scrape does not pay it each time.
ROUNDS = 10
PREFIXES = ("$2a$", "$2b$", "$2y$")


class WebAuthError(ValueError):
    pass


def _bcrypt() -> Any:
    try:
        import bcrypt  # noqa: PLC0415 (only the web configuration needs it)
    except ImportError as error:
        raise WebAuthError(
            "bcrypt_hash needs the bcrypt Python package where Ansible runs "
            "(pip install bcrypt in the controller's environment)"
        ) from error
    return bcrypt


def matches(password: str, hashed: str) -> bool:
    """Whether hashed is a bcrypt hash of password ($2y$, Apache's spelling, counts as $2b$)."""
    if not isinstance(hashed, str) or not hashed.startswith(PREFIXES):
        return False
    candidate = hashed.replace("$2y$", "$2b$", 1).encode()
    try:
        return bool(_bcrypt().checkpw(password.encode(), candidate))
    except ValueError:  # a malformed hash
        return False


def bcrypt_hash(password: Any, current: Any = None) -> str:
    """current when it is a bcrypt hash of password, else a new hash of it with a fresh salt."""
    if not isinstance(password, str) or password == "":
        raise WebAuthError("bcrypt_hash: the password is empty or not a string")
    if isinstance(current, str) and matches(password, current):
        return current
    bcrypt = _bcrypt()
    return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(ROUNDS)).decode())


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"bcrypt_hash": bcrypt_hash}

"""What differs per Debian release, for the tests: read from the roles' one place for it
(roles/preflight/vars/Debian-<major>.yml, ``__preflight_release``), never written out again.

- ``facts(codename)``: the versions of a release (``postgresql``, ``pgbouncer``, ...) by codename.
- ``local_postgresql_bin()``: the server binaries installed on this machine, for the integration
  tests that start PostgreSQL as local processes (whichever major the machine's release ships).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
RELEASE_VARS = REPO_ROOT / "roles/preflight/vars"


@cache
def all_facts() -> dict[str, dict[str, Any]]:
    """{codename: {postgresql: "17", pgbouncer: "1.24", ...}} for every supported release."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(RELEASE_VARS.glob("Debian-*.yml")):
        release = yaml.safe_load(path.read_text(encoding="utf-8"))["__preflight_release"]
        out[release["codename"]] = {str(k): str(v) for k, v in release.items()}
    return out


def facts(codename: str) -> dict[str, str]:
    try:
        return all_facts()[codename]
    except KeyError:
        raise ValueError(
            f"no release variables for Debian {codename!r} in {RELEASE_VARS}"
        ) from None


def local_postgresql_bin() -> Path:
    """/usr/lib/postgresql/<major>/bin of the one PostgreSQL server installed here."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if len(found) != 1:
        raise RuntimeError(
            "needs exactly one PostgreSQL server package on this machine (make host-deps installs"
            f" it), found {[str(p.parent) for p in found]}"
        )
    return found[0].parent

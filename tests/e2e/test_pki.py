"""The internal CA from the outside: a converge never regenerates it, and a host certificate is
re-issued exactly when its names change or its expiry comes within the renewal window, after
which PostgreSQL serves the new certificate without a restart."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import (
    PORT,
    DbHost,
    installed_certificate_serial,
    lab_ssh,
    parse_recap,
    served_certificate_serial,
)

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
Playbook = Callable[..., subprocess.CompletedProcess[str]]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pki_run(ansible_playbook: Playbook, *extra: str) -> dict[str, int]:
    proc = ansible_playbook("--tags", "pki", "--limit", "db1", *extra)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return parse_recap(proc.stdout)["db1"]


def test_converge_never_regenerates_the_ca(ansible_playbook: Playbook, lab_dir: Path) -> None:
    before = {name: digest(lab_dir / "pki" / name) for name in ("ca.crt", "ca.key")}
    assert pki_run(ansible_playbook)["changed"] == 0
    after = {name: digest(lab_dir / "pki" / name) for name in ("ca.crt", "ca.key")}
    assert after == before


def days_left(host: DbHost) -> int:
    """Whole days until the installed server certificate expires."""
    result = lab_ssh(host.name, "openssl x509 -noout -enddate -in /etc/pgstack/tls/server.crt")
    assert result.returncode == 0, result.stderr
    not_after = datetime.strptime(result.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    return (not_after.replace(tzinfo=UTC) - datetime.now(UTC)).days


def test_certificate_renewed_inside_the_window_and_served(
    ansible_playbook: Playbook, db_host: DbHost
) -> None:
    old = installed_certificate_serial(db_host.name)
    assert served_certificate_serial(db_host.address, PORT, starttls="postgres") == old
    # A window longer than the certificate's remaining life (whatever an earlier run left):
    # it must be re-issued...
    left = days_left(db_host)
    window = ["-e", f"pki_server_cert_valid_days={left + 40}",
              "-e", f"pki_renew_before_days={left + 10}"]  # fmt: skip
    assert pki_run(ansible_playbook, *window)["changed"] > 0
    new = installed_certificate_serial(db_host.name)
    assert new != old
    # PostgreSQL reloaded it
    assert served_certificate_serial(db_host.address, PORT, starttls="postgres") == new
    # ...once: the new certificate lives 30 days past the window.
    assert pki_run(ansible_playbook, *window)["changed"] == 0


def test_certificate_reissued_when_names_change(
    ansible_playbook: Playbook, db_host: DbHost
) -> None:
    extra = ["-e", '{"pki_server_extra_sans": ["DNS:db.pgstack.example"]}']
    assert pki_run(ansible_playbook, *extra)["changed"] > 0
    names = lab_ssh(
        db_host.name, "openssl x509 -in /etc/pgstack/tls/server.crt -noout -ext subjectAltName"
    ).stdout
    assert "DNS:db.pgstack.example" in names
    assert pki_run(ansible_playbook, *extra)["changed"] == 0
    # back to the inventory's names
    assert pki_run(ansible_playbook)["changed"] > 0
    assert pki_run(ansible_playbook)["changed"] == 0

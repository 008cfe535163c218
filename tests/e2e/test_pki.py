"""Certificates from the outside: a converge never regenerates the CA; a host certificate is
re-issued exactly when its expiry comes within the renewal window or its names change; and once
playbooks/pki.yml has renewed it, the next site converge makes every TLS endpoint serve the new
certificate (seen in a handshake), without restarting PostgreSQL or Redis.

One module fixture renews and converges once; each test checks one property of what it recorded.
The lab ends converged, serving a certificate valid for the inventory's names.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import lab_host
from helpers import (
    PGBOUNCER_PORT,
    PORT,
    assert_failed_before_any_change,
    failure_messages,
    installed_certificate_serial,
    lab_ssh,
    parse_recap,
    served_certificate_serial,
)

pytestmark = pytest.mark.e2e

Playbook = Callable[..., subprocess.CompletedProcess[str]]

# Every TLS endpoint of the lab: (host, port, starttls).
ENDPOINTS = [
    ("db1", PORT, "postgres"),  # PostgreSQL
    ("db1", PGBOUNCER_PORT, "postgres"),  # PgBouncer
    ("db1", 6379, None),  # Redis
    ("db1", 8432, None),  # pgBackRest TLS server on the database host
    ("backup1", 8432, None),  # pgBackRest TLS server on the repository host
    # The monitoring plane's servers, which reread the certificate on new connections.
    ("db1", 9716, None),  # pgstack-exporter
    ("backup1", 9716, None),
    ("db1", 9100, None),  # node exporter
    ("backup1", 9100, None),
]
ENDPOINT_IDS = [f"{host}:{port}" for host, port, _ in ENDPOINTS]
RENEWED_HOSTS = sorted({host for host, _, _ in ENDPOINTS})
EXTRA_SAN = "DNS:db.pgstack.example"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def days_left(host: str) -> int:
    """Whole days until the installed server certificate of a lab host expires."""
    result = lab_ssh(host, "openssl x509 -noout -enddate -in /etc/pgstack/tls/server.crt")
    assert result.returncode == 0, result.stderr
    not_after = datetime.strptime(result.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    return (not_after.replace(tzinfo=UTC) - datetime.now(UTC)).days


def served(endpoint: tuple[str, int, str | None]) -> str:
    host, port, starttls = endpoint
    return served_certificate_serial(lab_host(host).address, port, starttls=starttls)


def sans(host: str) -> str:
    result = lab_ssh(
        host, "openssl x509 -in /etc/pgstack/tls/server.crt -noout -ext subjectAltName"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# Services that take a renewed certificate without a restart, and the host each runs on.
RELOADED_UNITS = [
    ("db1", "redis-server.service"),
    ("db1", "pgstack-exporter.service"),
    ("backup1", "pgstack-exporter.service"),
    ("db1", "prometheus-node-exporter.service"),
    ("backup1", "prometheus-node-exporter.service"),
]


def service_starts() -> dict[str, str]:
    """When PostgreSQL's postmaster and each of RELOADED_UNITS started: they change only on a
    restart."""
    postgres = lab_ssh(
        "db1", "sudo -u postgres psql -XAtc 'SELECT pg_postmaster_start_time()' postgres"
    )
    assert postgres.returncode == 0, postgres.stderr
    starts = {"postgresql": postgres.stdout.strip()}
    for host, unit in RELOADED_UNITS:
        result = lab_ssh(host, f"systemctl show -p ExecMainStartTimestamp {unit}")
        assert result.returncode == 0, result.stderr
        starts[f"{host} {unit}"] = result.stdout.strip()
    return starts


@dataclass
class Renewal:
    ca_before: dict[str, str]
    ca_after: dict[str, str]
    installed_before: dict[str, str]
    installed_after_window: dict[str, str]
    installed_after: dict[str, str]
    served_before: dict[str, str]
    served_after: dict[str, str]
    window_runs: list[dict[str, dict[str, int]]]
    names_runs: list[dict[str, int]]
    sans_with_extra: str
    sans_after: str
    starts_before: dict[str, str]
    starts_after: dict[str, str]


@pytest.fixture(scope="module")
def renewal(ansible_playbook: Playbook, lab_dir: Path) -> Renewal:
    def pki(*args: str) -> dict[str, dict[str, int]]:
        result = ansible_playbook(*args, playbook="playbooks/pki.yml")
        assert result.returncode == 0, result.stdout[-3000:]
        return parse_recap(result.stdout)

    ca_files = ("ca.crt", "ca.key")
    ca_before = {name: digest(lab_dir / "pki" / name) for name in ca_files}
    installed_before = {host: installed_certificate_serial(host) for host in RENEWED_HOSTS}
    served_before = {name: served(e) for name, e in zip(ENDPOINT_IDS, ENDPOINTS, strict=True)}
    starts_before = service_starts()

    # A window longer than every certificate's remaining life (whatever an earlier run left): they
    # must be re-issued once, and the new ones live 30 days past the window.
    left = max(days_left(host) for host in RENEWED_HOSTS)
    window = ["-e", f"pki_server_cert_valid_days={left + 40}",
              "-e", f"pki_renew_before_days={left + 10}"]  # fmt: skip
    limit = ["--limit", ",".join(RENEWED_HOSTS)]
    window_runs = [pki(*limit, *window), pki(*limit, *window)]
    installed_after_window = {host: installed_certificate_serial(host) for host in RENEWED_HOSTS}

    # A new name re-issues db1's certificate; the same names again change nothing; back to the
    # inventory's names re-issues it once more.
    extra = ["--limit", "db1", "-e", f'{{"pki_server_extra_sans": ["{EXTRA_SAN}"]}}']
    names_runs = [pki(*extra)["db1"], pki(*extra)["db1"]]
    sans_with_extra = sans("db1")
    names_runs.append(pki("--limit", "db1")["db1"])
    sans_after = sans("db1")

    # Every tier picks up what pki.yml renewed: site.yml on the hosts whose certificates it renewed
    # (app1 and mon1 serve none of these endpoints).
    site = ansible_playbook(*limit, playbook="playbooks/site.yml")
    assert site.returncode == 0, site.stdout[-3000:]

    return Renewal(
        ca_before=ca_before,
        ca_after={name: digest(lab_dir / "pki" / name) for name in ca_files},
        installed_before=installed_before,
        installed_after_window=installed_after_window,
        installed_after={host: installed_certificate_serial(host) for host in RENEWED_HOSTS},
        served_before=served_before,
        served_after={name: served(e) for name, e in zip(ENDPOINT_IDS, ENDPOINTS, strict=True)},
        window_runs=window_runs,
        names_runs=names_runs,
        sans_with_extra=sans_with_extra,
        sans_after=sans_after,
        starts_before=starts_before,
        starts_after=service_starts(),
    )


def test_converges_never_regenerate_the_ca(renewal: Renewal) -> None:
    assert renewal.ca_after == renewal.ca_before


def test_certificates_renewed_once_inside_the_window(renewal: Renewal) -> None:
    first, second = renewal.window_runs
    assert all(first[host]["changed"] > 0 for host in RENEWED_HOSTS), first
    assert all(second[host]["changed"] == 0 for host in RENEWED_HOSTS), second
    for host in RENEWED_HOSTS:
        assert renewal.installed_after_window[host] != renewal.installed_before[host]


def test_certificate_reissued_when_names_change(renewal: Renewal) -> None:
    added, again, back = renewal.names_runs
    assert added["changed"] > 0
    assert EXTRA_SAN in renewal.sans_with_extra
    assert again["changed"] == 0
    assert back["changed"] > 0
    assert EXTRA_SAN not in renewal.sans_after


@pytest.mark.parametrize("endpoint", ENDPOINT_IDS)
def test_every_endpoint_serves_the_renewed_certificate(renewal: Renewal, endpoint: str) -> None:
    host = endpoint.split(":", maxsplit=1)[0]
    assert renewal.served_after[endpoint] == renewal.installed_after[host]
    assert renewal.served_after[endpoint] != renewal.served_before[endpoint]


def test_postgresql_redis_and_the_exporters_pick_it_up_without_a_restart(renewal: Renewal) -> None:
    assert renewal.starts_after == renewal.starts_before


def test_a_missing_ca_directory_stops_pki_before_a_second_ca(
    ansible_playbook: Playbook, tmp_path: Path
) -> None:
    """pki.yml pointed at a CA directory that does not exist (a lost or moved pki_ca_dir) while
    the hosts trust the lab's CA: it stops naming the directory and the hosts, creates no CA and
    changes no host."""
    missing = tmp_path / "pki"
    hosts = ["db1", "backup1"]
    result = ansible_playbook(
        "--limit", ",".join(hosts), "-e", f"pki_ca_dir={missing}", playbook="playbooks/pki.yml"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert_failed_before_any_change(
        failure_messages(output),
        parse_recap(result.stdout),
        output,
        f"{missing} on the controller holds no CA certificate",
        "db1, backup1 already trust a CA (/etc/pgstack/tls/ca.crt)",
    )
    assert not missing.exists()

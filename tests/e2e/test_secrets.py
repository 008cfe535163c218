"""No generated lab secret (the files of `.lab/secrets`: passwords, the pgBackRest cipher
passphrase, the CA passphrase) where someone without it could read it: in any service's journal,
in a world-readable file on any lab host, in the exporters' `/metrics`, or in what Prometheus and
Alertmanager show of their configuration. test_site.py searches the output of a converge at `-vvv`
and of `--check --diff`.

The secrets go to each host through stdin into a file only root reads, and only their names come
back into a failure message, never their values.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from helpers import LAB_INVENTORY, OPERATOR_USER, SCRAPE_USER, fetch, lab_ssh

from layout import inventory_groups, role_hosts

pytestmark = pytest.mark.e2e

HOSTS = role_hosts("pki", inventory_groups(LAB_INVENTORY / "hosts.yml"))
EXPORTER_HOSTS = role_hosts("exporter", inventory_groups(LAB_INVENTORY / "hosts.yml"))

# Where a host keeps configuration, state, logs and home directories. Left out: the package
# trees, PostgreSQL's data directories, the backup repository and dumps (data, not configuration),
# Prometheus' database and the journal's own files (read through journalctl).
SEARCHED = "/etc /var /run /tmp /root /home /srv /opt"
PRUNED = (
    "/var/lib/postgresql/[0-9]* /var/lib/pgbackrest /var/backups/pgstack /var/cache /var/lib/apt"
    " /var/lib/dpkg /var/lib/prometheus /var/log/journal /run/log/journal"
)
# Prints, after a marker line each: the secrets found in the journal, the world-readable files
# holding one, and every file holding one with its mode and owner. The patterns file is the one
# file skipped (it holds them all).
SEARCH = f"""
set -uf  # no globbing: the pruned paths are find patterns
patterns=$(mktemp /run/pgstack-e2e-secrets.XXXXXX)
trap 'rm -f "$patterns"' EXIT
cat >"$patterns"
prune() {{ for p in {PRUNED}; do printf -- '-path\\0%s\\0-o\\0' "$p"; done; }}
files() {{
    # every regular file under SEARCHED outside PRUNED, NUL-separated, with find's extra tests
    mapfile -d '' skip < <(prune)
    find {SEARCHED} -xdev \\( "${{skip[@]}}" -path "$patterns" \\) -prune \\
        -o -type f -size -20M "$@" -print0 2>/dev/null
}}
echo '== journal'
journalctl --no-pager -q -o cat | grep -F -o -f "$patterns" | sort -u
echo '== world-readable'
files -perm -o=r | xargs -0 -r grep -F -l -f "$patterns" 2>/dev/null
echo '== holders'
files | xargs -0 -r grep -F -l -f "$patterns" 2>/dev/null | xargs -r -d '\\n' stat -c '%a %U:%G %n'
"""


@pytest.fixture(scope="module")
def secrets(lab_dir: Path) -> dict[str, str]:
    """{name: value} of every generated lab secret."""
    found = {path.name: path.read_text().strip() for path in (lab_dir / "secrets").iterdir()}
    assert found, "the lab has no generated secrets"
    assert all(len(value) >= 16 for value in found.values()), "a lab secret shorter than 16"
    return found


def named(text: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets that appear in text."""
    return sorted(name for name, value in secrets.items() if value in text)


def sections(output: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith("== "):
            current = line[3:]
            found[current] = []
        elif line.strip():
            found[current].append(line)
    return found


@pytest.fixture(scope="module")
def searched(secrets: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """{host: {journal, world-readable, holders}} from one search per host."""
    patterns = "".join(f"{value}\n" for value in secrets.values())
    found = {}
    for host in HOSTS:
        result = lab_ssh(host, f"bash -c {shlex.quote(SEARCH)}", stdin=patterns, timeout=300)
        assert result.returncode == 0, f"{host}: {result.stderr[-2000:]}"
        found[host] = sections(result.stdout)
        assert set(found[host]) == {"journal", "world-readable", "holders"}, result.stdout[-2000:]
    return found


@pytest.mark.parametrize("host", HOSTS)
def test_no_secret_in_any_journal(
    searched: dict[str, dict[str, list[str]]], secrets: dict[str, str], host: str
) -> None:
    assert named("\n".join(searched[host]["journal"]), secrets) == []


@pytest.mark.parametrize("host", HOSTS)
def test_no_world_readable_file_holds_a_secret(
    searched: dict[str, dict[str, list[str]]], host: str
) -> None:
    assert searched[host]["world-readable"] == []


@pytest.mark.parametrize("host", HOSTS)
def test_the_files_that_hold_secrets_are_closed_to_others(
    searched: dict[str, dict[str, list[str]]], host: str
) -> None:
    """Credential files (env files, passfiles, pgBackRest's secrets.conf...): no bit for others."""
    holders = [line.split(" ", 2) for line in searched[host]["holders"]]
    assert all(int(mode, 8) & 0o007 == 0 for mode, _, _ in holders), holders
    print(f"{host}: " + ", ".join(f"{path} ({mode} {owner})" for mode, owner, path in holders))


@pytest.mark.parametrize("host", EXPORTER_HOSTS)
def test_no_secret_in_the_exporter_output(secrets: dict[str, str], host: str) -> None:
    for path in ("/metrics", "/health"):
        status, _, body = fetch(f"https://{host}.pgstack.internal:9716{path}", user=SCRAPE_USER)
        assert status == 200, body[:500]
        assert named(body, secrets) == [], path


@pytest.mark.parametrize(
    ("url", "user"),
    [
        ("http://127.0.0.1:9090/api/v1/status/config", None),
        ("https://127.0.0.1:9093/api/v2/status", OPERATOR_USER),
    ],
    ids=["prometheus", "alertmanager"],
)
def test_no_secret_in_the_monitoring_configuration_it_serves(
    secrets: dict[str, str], url: str, user: str | None
) -> None:
    status, _, body = fetch(url, user=user)
    assert status == 200, body[:500]
    assert named(body, secrets) == []

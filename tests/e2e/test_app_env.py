"""The application handoff: playbooks/app_env.yml renders /etc/pgstack/app.env on app1, and the two
URLs in it work as written, with psql and psycopg run on app1 itself as the application's user.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from helpers import lab_ssh

pytestmark = pytest.mark.e2e

PLAYBOOK = "playbooks/app_env.yml"
APP_HOST = "app1"
ENV_FILE = "/etc/pgstack/app.env"
# Clients the test runs on app1 (not part of the role: an application brings its own driver).
CLIENT_PACKAGES = "postgresql-client python3-psycopg"

PlaybookRunner = Callable[..., "subprocess.CompletedProcess[str]"]
Secret = Callable[[str], str]


@pytest.fixture(scope="module")
def converged(ansible_playbook: PlaybookRunner) -> subprocess.CompletedProcess[str]:
    result = ansible_playbook(playbook=PLAYBOOK)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result


@pytest.fixture(scope="module")
def env(converged: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The env file as the application reads it (shell quoting rules)."""
    result = lab_ssh(APP_HOST, f"cat {ENV_FILE}")
    assert result.returncode == 0, result.stderr
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            name, _, value = words[0].partition("=")
            values[name] = value
    return values


@pytest.fixture(scope="module")
def clients_on_app_host() -> None:
    result = lab_ssh(
        APP_HOST,
        f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q {CLIENT_PACKAGES} >/dev/null",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr


def as_app_user(command: str) -> subprocess.CompletedProcess[str]:
    """Run a command on app1 as the application's OS user with the env file loaded."""
    script = f"set -a; . {ENV_FILE}; set +a; {command}"
    return lab_ssh(APP_HOST, f"sudo -u app sh -c {shlex.quote(script)}")


def test_env_file_is_private_to_the_app_user(converged: subprocess.CompletedProcess[str]) -> None:
    result = lab_ssh(APP_HOST, f"stat -c '%a %U %G' {ENV_FILE}")
    assert result.stdout.split() == ["600", "app", "app"]


def test_playbook_output_shows_no_secret(
    converged: subprocess.CompletedProcess[str], secret: Secret
) -> None:
    output = converged.stdout + converged.stderr
    for name in ("postgresql_app", "postgresql_app_migration"):
        assert secret(name) not in output
    assert "DATABASE_URL" not in output


def test_urls_name_pgbouncer_and_postgresql_with_verify_full(
    env: dict[str, str], secret: Secret
) -> None:
    runtime, direct = urlsplit(env["DATABASE_URL"]), urlsplit(env["DIRECT_DATABASE_URL"])
    assert (runtime.username, runtime.hostname, runtime.port, runtime.path) == (
        "app",
        "db1.pgstack.internal",
        6432,
        "/app",
    )
    assert unquote(runtime.password or "") == secret("postgresql_app")
    assert (direct.username, direct.port) == ("app_migration", 5432)
    assert unquote(direct.password or "") == secret("postgresql_app_migration")
    for url in (runtime, direct):
        query = parse_qs(url.query)
        assert query == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/pgstack/tls/ca.crt"]}
    assert "REDIS_URL" not in env  # reserved for the Redis tier


@pytest.mark.usefixtures("clients_on_app_host")
@pytest.mark.parametrize(
    ("variable", "port", "user"),
    [("DATABASE_URL", "6432", "app"), ("DIRECT_DATABASE_URL", "5432", "app_migration")],
)
def test_url_works_as_written_with_psql(
    converged: subprocess.CompletedProcess[str], variable: str, port: str, user: str
) -> None:
    result = as_app_user(
        f'psql -XAt "${variable}" -c "SELECT current_user, inet_server_port(), '  # noqa: S608
        f'(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"'
    )
    assert result.returncode == 0, result.stderr
    # Through PgBouncer, inet_server_port is PostgreSQL's: the server side runs on 5432 over TLS.
    assert result.stdout.strip() == f"{user}|5432|t", (port, result.stdout)


@pytest.mark.usefixtures("clients_on_app_host")
@pytest.mark.parametrize(
    ("variable", "port", "user"),
    [("DATABASE_URL", 6432, "app"), ("DIRECT_DATABASE_URL", 5432, "app_migration")],
)
def test_url_works_as_written_with_psycopg(
    converged: subprocess.CompletedProcess[str], variable: str, port: int, user: str
) -> None:
    program = (
        "import os, psycopg\n"
        f"with psycopg.connect(os.environ['{variable}']) as conn:\n"
        "    print(conn.info.port, conn.execute('SELECT current_user').fetchone()[0])\n"
    )
    result = as_app_user(f"python3 -c {shlex.quote(program)}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(port), user]

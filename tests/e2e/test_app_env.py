"""The application handoff, from app1: site.yml renders one env file per application, each URL in
it works as written with the real clients run on app1 as the application's user (psql and psycopg
for both database URLs, redis-cli and redis-py for REDIS_URL), plaintext and a foreign CA are
refused, and the two lab applications cannot read each other's data.

Mutual TLS (client certificates in the env file) is tested with the Redis tier's mutual TLS
converge in test_redis.py; idempotence and secrets in the output in test_site.py.
"""

from __future__ import annotations

import shlex
import subprocess
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from helpers import APP_HOST, as_app, env_file, lab_ssh

pytestmark = [pytest.mark.e2e, pytest.mark.release]

# The lab's applications (inventory/lab/group_vars/app/main.yml), each with its env file, OS user,
# database and roles named after it.
APPS = {
    "app": {"redis_db": "0", "key": "session:", "info": True},
    "billing": {"redis_db": "1", "key": "billing:", "info": False},
}

Secret = Callable[[str], str]


def python_as_app(app: str, program: str) -> subprocess.CompletedProcess[str]:
    return as_app(app, f"python3 -c {shlex.quote(program)}")


@pytest.fixture(scope="module", params=sorted(APPS))
def app(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def read_env(app: str) -> dict[str, str]:
    """The env file as the application reads it (shell quoting rules)."""
    result = lab_ssh(APP_HOST, f"cat {env_file(app)}")
    assert result.returncode == 0, result.stderr
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            name, _, value = words[0].partition("=")
            values[name] = value
    return values


def test_env_file_is_private_to_its_application_user(app: str) -> None:
    result = lab_ssh(APP_HOST, f"stat -c '%a %U %G' {env_file(app)}")
    assert result.stdout.split() == ["600", app, app]


def test_env_file_holds_every_url_with_its_own_credentials(app: str, secret: Secret) -> None:
    env = read_env(app)
    assert sorted(env) == [
        "DATABASE_URL",
        "DIRECT_DATABASE_URL",
        "REDIS_CA_FILE",
        "REDIS_URL",
    ]  # no client certificate while Redis does not ask for one
    runtime, direct = urlsplit(env["DATABASE_URL"]), urlsplit(env["DIRECT_DATABASE_URL"])
    host = "db1.pgstack.internal"
    assert (runtime.scheme, runtime.username, runtime.hostname, runtime.port, runtime.path) == (
        "postgresql", app, host, 6432, f"/{app}"
    )  # fmt: skip
    assert (direct.username, direct.hostname, direct.port, direct.path) == (
        f"{app}_migration", host, 5432, f"/{app}"
    )  # fmt: skip
    assert unquote(runtime.password or "") == secret(f"postgresql_{app}")
    assert unquote(direct.password or "") == secret(f"postgresql_{app}_migration")
    for url in (runtime, direct):
        query = parse_qs(url.query)
        assert query == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/pgstack/tls/ca.crt"]}
    redis_url = urlsplit(env["REDIS_URL"])
    assert (redis_url.scheme, redis_url.username, redis_url.hostname, redis_url.port) == (
        "rediss", app, host, 6379
    )  # fmt: skip
    assert redis_url.path == f"/{APPS[app]['redis_db']}"
    assert unquote(redis_url.password or "") == secret(f"redis_{app}")
    assert env["REDIS_CA_FILE"] == "/etc/pgstack/tls/ca.crt"


@pytest.mark.usefixtures("clients_on_app_host")
@pytest.mark.parametrize(
    ("variable", "migration"), [("DATABASE_URL", ""), ("DIRECT_DATABASE_URL", "_migration")]
)
def test_database_url_works_as_written_with_psql(app: str, variable: str, migration: str) -> None:
    result = as_app(
        app,
        f'psql -XAt "${variable}" -c "SELECT current_user, current_database(), inet_server_port(), '
        f'(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"',
    )
    assert result.returncode == 0, result.stderr
    # Through PgBouncer, inet_server_port is PostgreSQL's: the server side runs on 5432 over TLS.
    assert result.stdout.strip() == f"{app}{migration}|{app}|5432|t"


@pytest.mark.usefixtures("clients_on_app_host")
@pytest.mark.parametrize(
    ("variable", "port"), [("DATABASE_URL", 6432), ("DIRECT_DATABASE_URL", 5432)]
)
def test_database_url_works_as_written_with_psycopg(app: str, variable: str, port: int) -> None:
    result = python_as_app(
        app,
        "import os, psycopg\n"
        f"with psycopg.connect(os.environ['{variable}']) as conn:\n"
        "    print(conn.info.port, conn.execute('SELECT current_database()').fetchone()[0])\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(port), app]


@pytest.mark.usefixtures("clients_on_app_host")
def test_redis_url_works_as_written_with_redis_cli(app: str) -> None:
    key = f"{APPS[app]['key']}e2e-{uuid.uuid4().hex[:8]}"
    result = as_app(
        app,
        f'redis-cli --no-auth-warning -u "$REDIS_URL" --cacert "$REDIS_CA_FILE" SET {key} v EX 60'
        f' && redis-cli --no-auth-warning -u "$REDIS_URL" --cacert "$REDIS_CA_FILE" GET {key}',
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["OK", "v"], result.stdout + result.stderr


@pytest.mark.usefixtures("clients_on_app_host")
def test_redis_url_works_as_written_with_redis_py(app: str) -> None:
    result = python_as_app(
        app,
        "import os, redis\n"
        "r = redis.Redis.from_url(os.environ['REDIS_URL'], ssl_cert_reqs='required',\n"
        "    ssl_ca_certs=os.environ['REDIS_CA_FILE'], ssl_check_hostname=True)\n"
        f"key = '{APPS[app]['key']}e2e-' + os.urandom(4).hex()\n"
        "r.set(key, 'v', ex=60)\n"
        "print(r.get(key).decode(), r.connection_pool.connection_kwargs['db'])\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["v", APPS[app]["redis_db"]]


@pytest.mark.usefixtures("clients_on_app_host")
@pytest.mark.parametrize("variable", ["DATABASE_URL", "DIRECT_DATABASE_URL"])
def test_plaintext_and_a_foreign_ca_are_refused_by_the_databases(variable: str) -> None:
    make_ca = (
        "d=$(mktemp -d) && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        " -days 1 -subj /CN=foreign -keyout $d/k -out $d/ca.crt 2>/dev/null"
    )
    plaintext = as_app(
        "app", f'psql -XAt "$(echo "${variable}" | sed s/verify-full/disable/)" -c "SELECT 1"'
    )
    assert plaintext.returncode != 0
    assert "SSL" in plaintext.stderr or "no encryption" in plaintext.stderr, plaintext.stderr
    foreign = as_app(
        "app",
        f"{make_ca} && psql -XAt"
        f' "$(echo "${variable}" | sed "s|sslrootcert=[^&]*|sslrootcert=$d/ca.crt|")"'
        ' -c "SELECT 1"; rc=$?; rm -r "$d"; exit $rc',
    )
    assert foreign.returncode != 0
    assert "certificate verify failed" in foreign.stderr, foreign.stderr


@pytest.mark.usefixtures("clients_on_app_host")
def test_plaintext_and_a_foreign_ca_are_refused_by_redis() -> None:
    plaintext = python_as_app(
        "app",
        "import os, redis\n"
        "url = os.environ['REDIS_URL'].replace('rediss://', 'redis://')\n"
        "redis.Redis.from_url(url, socket_timeout=5).ping()\n",
    )
    assert plaintext.returncode != 0
    assert "ConnectionError" in plaintext.stderr or "Connection" in plaintext.stderr
    foreign = python_as_app(
        "app",
        "import os, redis\n"
        "r = redis.Redis.from_url(os.environ['REDIS_URL'], ssl_cert_reqs='required',\n"
        "    ssl_ca_certs='/etc/ssl/certs/ca-certificates.crt', socket_timeout=5)\n"
        "r.ping()\n",
    )
    assert foreign.returncode != 0
    assert "certificate verify failed" in foreign.stderr, foreign.stderr


@pytest.fixture
def app_table() -> Iterator[str]:
    """A table with one row in app's database, made by app's migration role."""
    name = f"e2e_private_{uuid.uuid4().hex[:8]}"
    made = as_app(
        "app",
        f'psql -XAt "$DIRECT_DATABASE_URL" -v ON_ERROR_STOP=1 -c "CREATE TABLE {name} (s text)"'
        f" -c \"INSERT INTO {name} VALUES ('app only')\"",
    )
    assert made.returncode == 0, made.stderr
    yield name
    as_app("app", f'psql -XAt "$DIRECT_DATABASE_URL" -c "DROP TABLE {name}"')


@pytest.mark.usefixtures("clients_on_app_host")
@pytest.mark.parametrize("variable", ["DATABASE_URL", "DIRECT_DATABASE_URL"])
def test_another_applications_roles_cannot_read_its_tables(app_table: str, variable: str) -> None:
    # billing's own credentials, pointed at app's database.
    result = as_app(
        "billing",
        f'psql -XAt "$(echo "${variable}" | sed "s|/billing?|/app?|")"'
        f' -c "SELECT * FROM {app_table}"',
    )
    assert result.returncode != 0
    assert "app only" not in result.stdout
    assert "permission denied" in result.stderr, result.stderr


@pytest.mark.usefixtures("clients_on_app_host")
def test_another_applications_redis_user_cannot_read_its_keys() -> None:
    key = f"session:e2e-{uuid.uuid4().hex[:8]}"
    cli = 'redis-cli --no-auth-warning -u "$REDIS_URL" --cacert "$REDIS_CA_FILE"'
    written = as_app("app", f"{cli} SET {key} secret EX 60")
    assert written.stdout.strip() == "OK", written.stderr
    read = as_app("billing", f"{cli} -n 0 GET {key}")
    assert "NOPERM" in read.stdout + read.stderr
    assert "secret" not in read.stdout


@pytest.mark.usefixtures("clients_on_app_host")
@pytest.mark.parametrize("app_name", sorted(APPS))
def test_info_for_the_ready_check_only_where_granted(app_name: str) -> None:
    """ioredis runs INFO on connect: app is granted it (+info), billing is not."""
    result = as_app(
        app_name,
        'redis-cli --no-auth-warning -u "$REDIS_URL" --cacert "$REDIS_CA_FILE" INFO server',
    )
    if APPS[app_name]["info"]:
        assert "redis_version:" in result.stdout, result.stdout + result.stderr
    else:
        assert "NOPERM" in result.stdout + result.stderr

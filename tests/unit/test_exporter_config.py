"""The exporter's configuration: frozen dataclasses, unknown keys refused, located problems."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pgstack_exporter.config import ConfigError, PostgresTarget, load, parse, read_secret

VALID = """
version: 1
postgresql:
  - name: db1
    host: db1.example.internal
    user: pgstack_monitoring
    password_file: /etc/pgstack/exporter/postgresql.password
    sslrootcert: /etc/pgstack/tls/ca.crt
pgbouncer:
  - name: db1
    host: db1.example.internal
    user: pgstack_monitoring
    password_file: /etc/pgstack/exporter/postgresql.password
redis:
  - name: db1
    host: db1.example.internal
    username: monitoring
    password_file: /etc/pgstack/exporter/redis.password
    ca_file: /etc/pgstack/tls/ca.crt
status_files:
  directory: /var/lib/pgstack/status
pgbackrest:
  interval_seconds: 120
tls:
  probes:
    - {name: pgbackrest/backup1, host: backup1.example.internal, port: 8432}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exporter.yml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    return [p.split(": ", 1)[1] for p in caught.value.problems]


def test_a_valid_file_loads_into_frozen_dataclasses(tmp_path: Path) -> None:
    config = load(write(tmp_path, VALID))
    pg = config.postgresql[0]
    assert isinstance(pg, PostgresTarget)
    assert (pg.port, pg.sslmode, pg.timeout_seconds) == (5432, "verify-full", 3.0)
    assert config.pgbouncer[0].port == 6432
    assert config.redis[0].tls is True
    assert config.pgbackrest is not None
    assert config.pgbackrest.interval_seconds == 120.0
    assert config.tls.probes[0].protocol == "tls"
    with pytest.raises(dataclasses.FrozenInstanceError):
        pg.port = 1  # type: ignore[misc]


def test_every_problem_is_listed_with_its_location(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
version: 1
postgresql:
  - name: db1
    host: h
    user: u
    port: 70000
    pasword_file: /x
  - name: db1
    host: h
    user: u
  - name: db2
    host: h
redis:
  - {name: r, host: h, username: m, cert_file: /c}
tls: {interval_seconds: 1}
extra: true
""",
    )
    assert any(p.startswith("postgresql[0].pasword_file: unknown key") for p in found), found
    assert "postgresql[2].user: is required" in found
    assert any(p.startswith("extra: unknown key") for p in found), found
    assert "postgresql[0].port: must be between 1 and 65535, got 70000" in found
    assert "postgresql[1].name: 'db1' is used twice in postgresql" in found
    assert "redis[0].cert_file: cert_file and key_file go together (mutual TLS)" in found
    assert "tls.interval_seconds: must be between 10 and 86400, got 1" in found


def test_types_and_choices_are_checked(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
version: 2
postgresql:
  - {name: db1, host: h, user: u, port: "5432", sslmode: prefer, password_file: relative/path,
     archiver: "yes"}
""",
    )
    assert "version: must be 1, got 2" in found
    assert "postgresql[0].port: must be an integer, got '5432'" in found
    assert any(
        p.startswith("postgresql[0].sslmode: must be one of disable, require") for p in found
    )
    assert "postgresql[0].password_file: must be an absolute path, got 'relative/path'" in found
    assert "postgresql[0].archiver: must be true or false, got 'yes'" in found


def test_query_timeouts_must_fit_the_target_timeout(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
version: 1
postgresql:
  - {name: db1, host: h, user: u, timeout_seconds: 2, statement_timeout_ms: 5000}
""",
    )
    assert found == ["postgresql[0].statement_timeout_ms: must be between 1 and 2000, got 5000"]


def test_target_timeouts_stay_well_under_prometheus_scrape_timeout(tmp_path: Path) -> None:
    found = problems(
        tmp_path, "version: 1\nredis: [{name: r, host: h, username: m, timeout_seconds: 9}]\n"
    )
    assert found == ["redis[0].timeout_seconds: must be between 0.5 and 8, got 9"]


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, "version: 1\npostgresql: [\n"))
    assert caught.value.problems[0].startswith(f"{tmp_path / 'exporter.yml'}:3:")


def test_a_missing_file_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "absent.yml")
    assert caught.value.problems == [
        f"{tmp_path / 'absent.yml'}: cannot be read: No such file or directory"
    ]


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(["version", 1])
    assert caught.value.problems == ["(top level): must be a mapping"]


def test_a_secret_is_read_from_its_file_without_the_newline(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cr:et\\value\n")
    assert read_secret(secret) == "s3cr:et\\value"
    assert read_secret(None) is None

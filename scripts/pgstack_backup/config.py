"""The runner's configuration: YAML into frozen dataclasses, unknown keys rejected.

Every problem names its location (``file: key.subkey``). Secrets are never in this file: the
password comes from a libpq passfile named here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pgstack_backup.errors import ConfigError

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CLUSTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Connection:
    host: str
    port: int
    user: str
    passfile: Path
    sslmode: str
    sslrootcert: Path
    connect_timeout: int
    # "read-write" with several hosts (a cluster's members): libpq keeps the one that takes writes.
    target_session_attrs: str = "any"

    def conninfo(self, dbname: str) -> str:
        """A libpq connection string without a password (it comes from the passfile)."""
        from psycopg.conninfo import make_conninfo  # noqa: PLC0415 - only on the host

        return make_conninfo(
            "",
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=self.user,
            passfile=str(self.passfile),
            sslmode=self.sslmode,
            sslrootcert=str(self.sslrootcert),
            connect_timeout=self.connect_timeout,
            target_session_attrs=self.target_session_attrs,
            application_name="pgstack-backup",
        )


@dataclass(frozen=True)
class Retention:
    max_age_days: float
    min_count: int


@dataclass(frozen=True)
class Config:
    cluster: str
    connection: Connection
    bin_dir: Path
    destination: Path
    status_dir: Path
    compress_level: int
    databases: tuple[str, ...]
    retention: Retention


def _mapping(value: Any, where: str, keys: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    missing = sorted(required - set(value))
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}: expected an integer between {low} and {high}, got {value!r}")
    return value


def _path(value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(f"{where}: expected an absolute path, got {value!r}")
    return Path(value)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def parse_config(data: Any, source: str) -> Config:
    top = _mapping(
        data,
        source,
        {"version", "cluster", "connection", "bin_dir", "destination", "status_dir",
         "compress_level", "databases", "retention"},
        {"version", "cluster", "connection", "bin_dir", "destination", "status_dir", "databases"},
    )  # fmt: skip
    if top["version"] != 1:
        raise ConfigError(f"{source}: version: only version 1 is known, got {top['version']!r}")
    cluster = _str(top["cluster"], f"{source}: cluster")
    if not CLUSTER.match(cluster):
        raise ConfigError(f"{source}: cluster: not a host-like name: {cluster!r}")

    where = f"{source}: connection"
    conn = _mapping(
        top["connection"],
        where,
        {"host", "port", "user", "passfile", "sslmode", "sslrootcert", "connect_timeout",
         "target_session_attrs"},
        {"host", "user", "passfile", "sslrootcert"},
    )  # fmt: skip
    sslmode = conn.get("sslmode", "verify-full")
    if sslmode not in ("verify-full", "verify-ca", "require"):
        raise ConfigError(f"{where}.sslmode: must be verify-full, verify-ca or require")
    target_session_attrs = conn.get("target_session_attrs", "any")
    if target_session_attrs not in ("any", "read-write"):
        raise ConfigError(f"{where}.target_session_attrs: must be any or read-write")
    connection = Connection(
        host=_str(conn["host"], f"{where}.host"),
        port=_int(conn.get("port", 5432), f"{where}.port", 1, 65535),
        user=_str(conn["user"], f"{where}.user"),
        passfile=_path(conn["passfile"], f"{where}.passfile"),
        sslmode=sslmode,
        sslrootcert=_path(conn["sslrootcert"], f"{where}.sslrootcert"),
        connect_timeout=_int(conn.get("connect_timeout", 10), f"{where}.connect_timeout", 1, 600),
        target_session_attrs=target_session_attrs,
    )

    databases = top["databases"]
    if not isinstance(databases, list) or not databases:
        raise ConfigError(f"{source}: databases: expected a non-empty list of database names")
    for index, name in enumerate(databases):
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            raise ConfigError(
                f"{source}: databases[{index}]: not a lower-case identifier: {name!r}"
            )
    if len(set(databases)) != len(databases):
        raise ConfigError(f"{source}: databases: names must be unique")

    where = f"{source}: retention"
    ret = _mapping(top.get("retention", {}), where, {"max_age_days", "min_count"}, set())
    max_age = ret.get("max_age_days", 7)
    if isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age < 0:
        raise ConfigError(f"{where}.max_age_days: expected a number of days >= 0, got {max_age!r}")
    retention = Retention(
        max_age_days=float(max_age),
        min_count=_int(ret.get("min_count", 3), f"{where}.min_count", 1, 10000),
    )

    return Config(
        cluster=cluster,
        connection=connection,
        bin_dir=_path(top["bin_dir"], f"{source}: bin_dir"),
        destination=_path(top["destination"], f"{source}: destination"),
        status_dir=_path(top["status_dir"], f"{source}: status_dir"),
        compress_level=_int(top.get("compress_level", 1), f"{source}: compress_level", 0, 9),
        databases=tuple(databases),
        retention=retention,
    )


def load_config(path: Path) -> Config:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(data, str(path))

"""The configuration file (YAML, format version 1) read into frozen dataclasses.

Unknown keys are rejected and every problem is reported with its location
(``postgresql[0].port: ...``). Secrets are never in this file: only paths of files holding them.
The format is documented in docs/exporter.md.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

FORMAT_VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$")
# The name a Sentinel knows its master by: the rule of plugins/test/preflight.py's
# sentinel_master_name, which the roles check redis_sentinel_master_name and
# exporter_sentinel_master_name with (tests/unit/test_sentinel_master_name.py: the same cases).
MASTER_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Every target's answer must arrive well inside Prometheus' default 10 s scrape timeout.
MAX_TARGET_TIMEOUT = 8.0

SslMode = Literal["disable", "require", "verify-ca", "verify-full"]


@dataclasses.dataclass(frozen=True)
class PostgresTarget:
    name: str
    host: str  # a host name, an address, or a socket directory (starting with "/")
    user: str
    password_file: Path | None = None
    port: int = 5432
    dbname: str = "postgres"
    sslmode: SslMode = "verify-full"
    sslrootcert: Path | None = None
    timeout_seconds: float = 3.0
    statement_timeout_ms: int = 1500
    lock_timeout_ms: int = 500
    database_size_interval_seconds: float = 300.0
    archiver: bool = True
    filesystem: bool = True
    tls_probe: bool = True


@dataclasses.dataclass(frozen=True)
class PgBouncerTarget:
    name: str
    host: str
    user: str
    password_file: Path | None = None
    port: int = 6432
    sslmode: SslMode = "verify-full"
    sslrootcert: Path | None = None
    timeout_seconds: float = 3.0
    tls_probe: bool = True


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    name: str
    host: str
    username: str
    password_file: Path | None = None
    port: int = 6379
    tls: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    timeout_seconds: float = 2.0
    tls_probe: bool = True


@dataclasses.dataclass(frozen=True)
class SentinelTarget(RedisTarget):
    """A Redis Sentinel, reached as a Redis is (TLS, an ACL user), and the master it watches."""

    master_name: str = dataclasses.field(kw_only=True)
    port: int = 26379


@dataclasses.dataclass(frozen=True)
class TlsProbe:
    name: str
    host: str
    port: int
    protocol: Literal["tls", "postgres"] = "tls"
    ca_file: Path | None = None
    server_name: str | None = None


@dataclasses.dataclass(frozen=True)
class TlsSettings:
    # A certificate changes rarely: each endpoint is probed at most this often.
    interval_seconds: float = 60.0
    timeout_seconds: float = 3.0
    probes: tuple[TlsProbe, ...] = ()


@dataclasses.dataclass(frozen=True)
class StatusFiles:
    directory: Path = Path("/var/lib/pgstack/status")
    dumps: bool = True
    drills: bool = True


@dataclasses.dataclass(frozen=True)
class PgBackRest:
    command: str = "/usr/bin/pgbackrest"
    config_file: Path | None = None
    interval_seconds: float = 300.0
    timeout_seconds: float = 60.0


@dataclasses.dataclass(frozen=True)
class HealthSettings:
    interval_seconds: float = 5.0


@dataclasses.dataclass(frozen=True)
class Config:
    version: int
    postgresql: tuple[PostgresTarget, ...] = ()
    pgbouncer: tuple[PgBouncerTarget, ...] = ()
    redis: tuple[RedisTarget, ...] = ()
    sentinel: tuple[SentinelTarget, ...] = ()
    status_files: StatusFiles | None = None
    pgbackrest: PgBackRest | None = None
    tls: TlsSettings = TlsSettings()
    health: HealthSettings = HealthSettings()


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


T = TypeVar("T")


def _type_name(kind: Any) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        Path: "a path",
    }
    return names.get(kind, getattr(kind, "__name__", str(kind)))


class _Reader:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where or '(top level)'}: {message}")

    def value(self, kind: Any, data: Any, where: str) -> Any:  # noqa: PLR0911 (one per type)
        origin = get_origin(kind)
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(kind) if a is not type(None)]
            if data is None:
                return None
            return self.value(args[0], data, where)
        if origin is Literal:
            if data not in get_args(kind):
                choices = ", ".join(str(c) for c in get_args(kind))
                self.problem(where, f"must be one of {choices}, got {data!r}")
            return data
        if origin is tuple:
            if not isinstance(data, list):
                self.problem(where, "must be a list")
                return ()
            item_kind = get_args(kind)[0]
            return tuple(
                self.value(item_kind, item, f"{where}[{n}]") for n, item in enumerate(data)
            )
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            return self.record(kind, data, where)
        return self.scalar(kind, data, where)

    def scalar(self, kind: Any, data: Any, where: str) -> Any:
        ok = {
            bool: isinstance(data, bool),
            int: isinstance(data, int) and not isinstance(data, bool),
            float: isinstance(data, int | float) and not isinstance(data, bool),
            str: isinstance(data, str) and data != "",
            Path: isinstance(data, str) and data.startswith("/"),
        }[kind]
        if not ok:
            expected = "an absolute path" if kind is Path else _type_name(kind)
            self.problem(where, f"must be {expected}, got {data!r}")
            return None
        if kind is Path:
            return Path(data)
        return float(data) if kind is float else data

    def record(self, kind: type[T], data: Any, where: str) -> T | None:
        if not isinstance(data, dict):
            self.problem(where, "must be a mapping")
            return None
        hints = typing.get_type_hints(kind)
        fields = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
        prefix = f"{where}." if where else ""
        for key in data:
            if key not in fields:
                self.problem(f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(fields))})")
        values: dict[str, Any] = {}
        for name, field in fields.items():
            if name in data:
                values[name] = self.value(hints[name], data[name], f"{prefix}{name}")
            elif (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                self.problem(f"{prefix}{name}", "is required")
        try:
            return kind(**values)
        except TypeError:  # a required field missing: already reported
            return None


def _check_range(reader: _Reader, where: str, value: object, low: float, high: float) -> None:
    if isinstance(value, int | float) and not low <= value <= high:
        reader.problem(where, f"must be between {low:g} and {high:g}, got {value:g}")


def _matches(pattern: re.Pattern[str], value: str | None) -> bool:
    """Whether the whole of ``value`` matches (a "$" alone would let a trailing newline through);
    a value that is not a string was reported as such already."""
    return not isinstance(value, str) or pattern.fullmatch(value) is not None


def _check_targets(reader: _Reader, config: Config) -> None:
    for section in ("postgresql", "pgbouncer", "redis", "sentinel"):
        seen: set[str] = set()
        for n, target in enumerate(getattr(config, section)):
            if target is None:
                continue
            where = f"{section}[{n}]"
            if not _matches(NAME_RE, target.name):
                reader.problem(
                    f"{where}.name", f"must match {NAME_RE.pattern}, got {target.name!r}"
                )
            if target.name in seen:
                reader.problem(f"{where}.name", f"{target.name!r} is used twice in {section}")
            seen.add(target.name)
            _check_range(reader, f"{where}.port", target.port, 1, 65535)
            _check_range(
                reader, f"{where}.timeout_seconds", target.timeout_seconds, 0.5, MAX_TARGET_TIMEOUT
            )
            if isinstance(target, PostgresTarget):
                budget = (target.timeout_seconds or MAX_TARGET_TIMEOUT) * 1000
                for field in ("statement_timeout_ms", "lock_timeout_ms"):
                    _check_range(reader, f"{where}.{field}", getattr(target, field), 1, budget)
                _check_range(
                    reader,
                    f"{where}.database_size_interval_seconds",
                    target.database_size_interval_seconds,
                    10,
                    86400,
                )
            if isinstance(target, RedisTarget) and (target.cert_file is None) != (
                target.key_file is None
            ):
                reader.problem(
                    f"{where}.cert_file", "cert_file and key_file go together (mutual TLS)"
                )
            if isinstance(target, RedisTarget) and not target.tls and target.cert_file is not None:
                reader.problem(f"{where}.cert_file", "a client certificate needs tls: true")
            if isinstance(target, SentinelTarget) and not _matches(
                MASTER_NAME_RE, target.master_name
            ):
                reader.problem(
                    f"{where}.master_name",
                    f"must match {MASTER_NAME_RE.pattern}, got {target.master_name!r}",
                )


def _check(reader: _Reader, config: Config) -> None:
    if config.version != FORMAT_VERSION:
        reader.problem("version", f"must be {FORMAT_VERSION}, got {config.version!r}")
    _check_targets(reader, config)
    tls = config.tls
    _check_range(reader, "tls.interval_seconds", tls.interval_seconds, 10, 86400)
    _check_range(reader, "tls.timeout_seconds", tls.timeout_seconds, 0.5, MAX_TARGET_TIMEOUT)
    names = set()
    for n, probe in enumerate(tls.probes):
        if probe is None:
            continue
        _check_range(reader, f"tls.probes[{n}].port", probe.port, 1, 65535)
        if not _matches(NAME_RE, probe.name) or probe.name in names:
            reader.problem(f"tls.probes[{n}].name", f"must be unique and match {NAME_RE.pattern}")
        names.add(probe.name)
    if config.pgbackrest is not None:
        _check_range(
            reader, "pgbackrest.interval_seconds", config.pgbackrest.interval_seconds, 30, 3600
        )
        _check_range(
            reader, "pgbackrest.timeout_seconds", config.pgbackrest.timeout_seconds, 5, 600
        )
    _check_range(reader, "health.interval_seconds", config.health.interval_seconds, 1, 60)


def parse(data: Any) -> Config:
    """The configuration in ``data`` (parsed YAML); raises ConfigError listing every problem."""
    reader = _Reader()
    if not isinstance(data, dict):
        raise ConfigError(["(top level): must be a mapping"])
    config = reader.record(Config, data, "")
    if config is not None:
        _check(reader, config)
    if reader.problems or config is None:
        raise ConfigError(reader.problems)
    return config


def load_yaml(path: Path, parse_data: Callable[[Any], T]) -> T:
    """The YAML file at ``path`` through ``parse_data``; raises ConfigError, every problem
    prefixed with the path (and the line and column of a YAML error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8"
        raise ConfigError([f"{path}: cannot be read: {reason}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(
            [f"{where}: not valid YAML: {getattr(error, 'problem', error)}"]
        ) from None
    try:
        return parse_data(data)
    except ConfigError as error:
        raise ConfigError([f"{path}: {problem}" for problem in error.problems]) from None


def load(path: Path) -> Config:
    return load_yaml(path, parse)


def read_secret(path: Path | None) -> str | None:
    """The secret in ``path`` (one line; a trailing newline is not part of it)."""
    if path is None:
        return None
    return path.read_text(encoding="utf-8").rstrip("\r\n")

"""The web configuration file (``--web.config.file``): TLS and basic authentication of the server.

The format is the one Prometheus, Alertmanager and node_exporter read with ``--web.config.file``
(Prometheus' exporter-toolkit), as far as pgstack-exporter implements it: a key it does not
implement is refused, never ignored. The file and the files it names are read again when one of
them changes (``WebConfigFile.current()``); a version that does not load leaves the last good one
in force. The format is documented in docs/exporter.md.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import logging
import re
import ssl
import threading
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pgstack_exporter.config import ConfigError, load_yaml

log = logging.getLogger(__name__)

REALM = "pgstack-exporter"
# Answered without credentials: load balancers probe it, and it holds no secret (docs/exporter.md).
UNAUTHENTICATED_PATHS = frozenset({"/health"})
# A client that connects and says nothing holds its own thread only this long.
HANDSHAKE_TIMEOUT = 10.0

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Python's ssl module checks every client certificate it asks for against client_ca_file, so it
# cannot ask for one and then accept any: RequestClientCert (asked for, never checked) does not
# ask, which serves every client as the toolkit does, since nothing here reads an unchecked
# certificate; RequireAnyClientCert (required, never checked) is refused by parse().
VERIFY_MODES: dict[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
CLIENT_AUTH_TYPES = (*VERIFY_MODES, "RequireAnyClientCert")
CHECKED_CLIENT_AUTH = ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
# The response headers a file may set, and their values where the choice is closed: the list
# Prometheus' own servers accept, so that one file means the same to all of them.
HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
# Keys of the toolkit's format that pgstack-exporter does not implement.
NOT_SUPPORTED = frozenset(
    {
        "rate_limit",
        "tls_server_config.cert",
        "tls_server_config.key",
        "tls_server_config.client_ca",
        "tls_server_config.cipher_suites",
        "tls_server_config.curve_preferences",
        "tls_server_config.prefer_server_cipher_suites",
        "tls_server_config.client_allowed_sans",
        "http_server_config.http2",
    }
)
BCRYPT_RE = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# bcrypt reads this many bytes of a password: bcrypt 5 refuses a longer one and older versions cut
# it, so it is refused here whatever the version.
BCRYPT_MAX_PASSWORD = 72


@dataclasses.dataclass(frozen=True)
class TlsServerConfig:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        named = (self.cert_file, self.key_file, self.client_ca_file)
        return tuple(path for path in named if path is not None)


@dataclasses.dataclass(frozen=True)
class WebConfig:
    tls_server_config: TlsServerConfig | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # http_server_config's
    basic_auth_users: Mapping[str, str] = dataclasses.field(default_factory=dict)  # user: hash

    @property
    def files(self) -> tuple[Path, ...]:
        return self.tls_server_config.files if self.tls_server_config else ()


def _check_keys(
    problems: list[str], data: dict[Any, Any], where: str, known: Collection[str]
) -> None:
    for key in data:
        path = f"{where}.{key}" if where else str(key)
        if path in NOT_SUPPORTED:
            problems.append(f"{path}: not supported by pgstack-exporter")
        elif key not in known:
            problems.append(f"{path}: unknown key (known: {', '.join(known)})")


def _string(problems: list[str], data: dict[Any, Any], where: str, key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.append(f"{where}.{key}: must be a non-empty string, got {value!r}")
        return None
    return value


def _choice(
    problems: list[str], data: dict[Any, Any], where: str, key: str, choices: Collection[str]
) -> str | None:
    value = _string(problems, data, where, key)
    if value is not None and value not in choices:
        problems.append(f"{where}.{key}: must be one of {', '.join(choices)}, got {value!r}")
        return None
    return value


def _tls(problems: list[str], data: Any, directory: Path) -> TlsServerConfig | None:
    where = "tls_server_config"
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    before = len(problems)
    _check_keys(problems, data, where, [f.name for f in dataclasses.fields(TlsServerConfig)])
    # Relative paths are taken from the file's directory, as the toolkit takes them.
    paths: dict[str, Path | None] = {}
    for name in ("cert_file", "key_file", "client_ca_file"):
        value = _string(problems, data, where, name)
        paths[name] = None if value is None else directory / value
        if name != "client_ca_file" and data.get(name) is None:
            problems.append(f"{where}.{name}: is required")
    auth = _choice(problems, data, where, "client_auth_type", CLIENT_AUTH_TYPES) or "NoClientCert"
    low = _choice(problems, data, where, "min_version", TLS_VERSIONS) or "TLS12"
    high = _choice(problems, data, where, "max_version", TLS_VERSIONS)
    if auth == "RequireAnyClientCert":
        problems.append(
            f"{where}.client_auth_type: RequireAnyClientCert is not supported by pgstack-exporter"
            " (Python's ssl module checks every certificate it asks for):"
            " use RequireAndVerifyClientCert with client_ca_file"
        )
    if auth in CHECKED_CLIENT_AUTH and data.get("client_ca_file") is None:
        problems.append(f"{where}.client_ca_file: is required with client_auth_type {auth}")
    if auth == "NoClientCert" and data.get("client_ca_file") is not None:
        problems.append(
            f"{where}.client_ca_file: client_auth_type NoClientCert asks for no certificate"
            f" (the types that check one: {', '.join(CHECKED_CLIENT_AUTH)})"
        )
    if high is not None and TLS_VERSIONS[high] < TLS_VERSIONS[low]:
        problems.append(f"{where}.max_version: {high} is below min_version {low}")
    cert_file, key_file = paths["cert_file"], paths["key_file"]
    if len(problems) > before or cert_file is None or key_file is None:
        return None
    return TlsServerConfig(cert_file, key_file, auth, paths["client_ca_file"], low, high)


def _headers(problems: list[str], data: Any) -> dict[str, str]:
    where = "http_server_config"
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(f"{where}: must be a mapping")
        return {}
    _check_keys(problems, data, where, ("headers",))
    headers = data.get("headers")
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        problems.append(f"{where}.headers: must be a mapping of header name to value")
        return {}
    good = {}
    for name, value in headers.items():
        at = f"{where}.headers.{name}"
        if name not in HEADERS:
            problems.append(f"{at}: cannot be set (settable: {', '.join(HEADERS)})")
        elif not isinstance(value, str) or not value or any(c in value for c in "\r\n\0"):
            problems.append(f"{at}: must be a non-empty string on one line, got {value!r}")
        elif HEADERS[name] and value not in HEADERS[name]:
            problems.append(f"{at}: must be one of {', '.join(HEADERS[name])}, got {value!r}")
        else:
            good[name] = value
    return good


def _users(problems: list[str], data: Any) -> dict[str, str]:
    where = "basic_auth_users"
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(f"{where}: must be a mapping of user name to bcrypt hash")
        return {}
    users = {}
    for user, hashed in data.items():
        at = f"{where}.{user}"
        if not isinstance(user, str) or not user or ":" in user:
            problems.append(f"{at}: a user name is a non-empty string without ':'")
        elif not isinstance(hashed, str) or not BCRYPT_RE.fullmatch(hashed):
            # The value is not repeated: it may be a password put where its hash belongs.
            problems.append(f"{at}: not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04..31)")
        else:
            users[user] = hashed
    return users


def parse(data: Any, directory: Path) -> WebConfig:
    """The configuration in ``data`` (parsed YAML), relative paths taken from ``directory``;
    raises ConfigError listing every problem. An empty file asks for nothing (plain HTTP)."""
    if data is None:
        return WebConfig()
    if not isinstance(data, dict):
        raise ConfigError(["(top level): must be a mapping"])
    problems: list[str] = []
    _check_keys(problems, data, "", ("tls_server_config", "http_server_config", "basic_auth_users"))
    tls = _tls(problems, data.get("tls_server_config"), directory)
    headers = _headers(problems, data.get("http_server_config"))
    users = _users(problems, data.get("basic_auth_users"))
    if problems:
        raise ConfigError(problems)
    return WebConfig(tls, headers, users)


def load(path: Path) -> WebConfig:
    """The file at ``path``; raises ConfigError, every problem prefixed with the path."""
    return load_yaml(path, lambda data: parse(data, path.parent))


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> bytes:
    # Called by OpenSSL for an encrypted key only; without it OpenSSL would prompt on the terminal.
    raise _EncryptedKey


def _ssl_reason(error: ssl.SSLError) -> str:
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    return re.sub(r"\s*\(_ssl\.c:\d+\)$", "", text)


def ssl_context(tls: TlsServerConfig) -> ssl.SSLContext:
    """The server side of TLS as ``tls`` asks; raises ConfigError when a file does not load."""
    where = "tls_server_config"
    problems = []
    for key, what in (("cert_file", "CERTIFICATE"), ("key_file", "PRIVATE KEY")):
        path = getattr(tls, key)
        try:
            pem = path.read_bytes()
        except OSError as error:
            problems.append(f"{where}.{key}: cannot read {path}: {error.strerror}")
            continue
        if f"{what}-----".encode() not in pem:
            problems.append(f"{where}.{key}: {path} holds no PEM {what.lower()}")
    if problems:
        raise ConfigError(problems)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    if context.minimum_version < ssl.TLSVersion.TLSv1_2:
        # TLS 1.0 and 1.1 have only the SHA-1 suites Python leaves out, and OpenSSL 3 speaks
        # them at security level 0 only: asked for, they are what the file asks for.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if tls.max_version is not None:
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_passphrase)
    except _EncryptedKey:
        raise ConfigError(
            [f"{where}.key_file: {tls.key_file} is encrypted (a passphrase cannot be given)"]
        ) from None
    except ssl.SSLError as error:
        raise ConfigError(
            [
                f"{where}.key_file: {tls.key_file} does not load with cert_file {tls.cert_file}:"
                f" {_ssl_reason(error)}"
            ]
        ) from None
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except OSError as error:  # ssl.SSLError included
            reason = _ssl_reason(error) if isinstance(error, ssl.SSLError) else error.strerror
            raise ConfigError(
                [f"{where}.client_ca_file: cannot load {tls.client_ca_file}: {reason}"]
            ) from None
    context.verify_mode = VERIFY_MODES[tls.client_auth_type]
    return context


class Verdict(NamedTuple):
    allowed: bool
    user: str | None  # the user name the request presented (for the debug log), or None


@dataclasses.dataclass(frozen=True)
class UserTable:
    hashes: Mapping[str, str]  # user: bcrypt hash
    decoy: str  # a hash an unknown user's password is checked against, as costly as the others
    checkpw: Callable[[bytes, bytes], bool]


_decoys: dict[int, str] = {}


def user_table(users: Mapping[str, str]) -> UserTable:
    """``users`` with bcrypt, imported here: only a file with users needs python3-bcrypt."""
    try:
        import bcrypt  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            ["basic_auth_users: needs the Python package bcrypt (Debian: python3-bcrypt)"]
        ) from None
    cost = max(int(hashed[4:6]) for hashed in users.values())
    if cost not in _decoys:
        _decoys[cost] = bcrypt.hashpw(b"not a password", bcrypt.gensalt(cost)).decode()
    return UserTable(dict(users), _decoys[cost], bcrypt.checkpw)


def basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    """The user and password of an ``Authorization: Basic ...`` header; None without them."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


class Verifier:
    """Checks passwords with bcrypt and remembers the ones that verified, across reloads.

    A password that verified is remembered as its SHA-256 under (user, hash), so a scrape every
    few seconds costs one bcrypt, not one each; a changed hash or another password is checked
    again. A wrong password is never remembered, and an unknown user's password is checked
    against a decoy hash of the same cost, so the time of an answer does not tell which users
    exist. One bcrypt runs at a time: a flood of wrong passwords takes one CPU, not all.
    """

    def __init__(self) -> None:
        self._verified: dict[tuple[str, str], bytes] = {}
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        self.bcrypt_runs = 0

    def verify(self, users: UserTable, user: str, password: bytes) -> bool:
        hashed = users.hashes.get(user)
        digest = hashlib.sha256(password).digest()
        if hashed is not None:
            with self._cache_lock:
                known = self._verified.get((user, hashed))
            if known is not None and hmac.compare_digest(known, digest):
                return True
        usable = len(password) <= BCRYPT_MAX_PASSWORD and b"\0" not in password
        with self._bcrypt_lock:
            self.bcrypt_runs += 1
            try:
                matches = users.checkpw(
                    password if usable else b"", (hashed or users.decoy).encode()
                )
            except ValueError:
                matches = False
        if not (matches and usable and hashed is not None):
            return False
        with self._cache_lock:
            self._verified[(user, hashed)] = digest
        return True

    def keep_only(self, users: Mapping[str, str]) -> None:
        """Forgets what verified for a user or hash no longer in the file."""
        with self._cache_lock:
            self._verified = {
                key: digest for key, digest in self._verified.items() if users.get(key[0]) == key[1]
            }


@dataclasses.dataclass(frozen=True)
class WebState:
    """What the server applies, from one good reading of the files."""

    config: WebConfig
    ssl_context: ssl.SSLContext | None
    users: UserTable | None  # None: no authentication
    verifier: Verifier

    @property
    def headers(self) -> Mapping[str, str]:
        return self.config.headers

    def authorize(self, path: str, authorization: str | None) -> Verdict:
        """Whether a request for ``path`` with this ``Authorization`` header is answered."""
        if self.users is None or path in UNAUTHENTICATED_PATHS:
            return Verdict(allowed=True, user=None)
        credentials = basic_credentials(authorization)
        if credentials is None:
            return Verdict(allowed=False, user=None)
        user, password = credentials
        return Verdict(self.verifier.verify(self.users, user, password), user)

    def describe(self) -> str:
        tls = self.config.tls_server_config
        parts = [
            f"TLS {tls.min_version}..{tls.max_version or 'TLS13'}, {tls.client_auth_type}"
            if tls
            else "plain HTTP",
            f"basic authentication for {len(self.users.hashes)} user(s)"
            if self.users
            else "no authentication",
        ]
        return ", ".join(parts)


def build(config: WebConfig, verifier: Verifier) -> WebState:
    """Loads what ``config`` names; raises ConfigError."""
    problems = []
    context = users = None
    if config.tls_server_config is not None:
        try:
            context = ssl_context(config.tls_server_config)
        except ConfigError as error:
            problems += error.problems
    if config.basic_auth_users:
        try:
            users = user_table(config.basic_auth_users)
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    return WebState(config, context, users, verifier)


FileStat = tuple[int, int, int] | None


def _stat(path: Path) -> FileStat:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


@dataclasses.dataclass(frozen=True)
class Reading:
    watched: tuple[Path, ...]  # the file and the files it names
    seen: tuple[FileStat, ...]  # their stat before they were read
    state: WebState | None
    problems: tuple[str, ...]


def read(path: Path, verifier: Verifier) -> Reading:
    """The file at ``path`` and what it names, each stat'ed before it is read."""
    first = _stat(path)
    try:
        config = load(path)
    except ConfigError as error:
        return Reading((path,), (first,), None, tuple(error.problems))
    seen = (first, *(_stat(named) for named in config.files))
    try:
        state = build(config, verifier)
    except ConfigError as error:
        problems = tuple(f"{path}: {problem}" for problem in error.problems)
        return Reading((path, *config.files), seen, None, problems)
    return Reading((path, *config.files), seen, state, ())


class WebConfigFile:
    """The file of ``--web.config.file``: what ``current()`` returns follows its changes.

    Each call stats the file and the certificate, key and CA files it names (modification time,
    size, inode) and reads them all again when one differs. A reading that fails is logged once
    and the last good state stays in force; so does one that would switch TLS on or off (only
    a restart does that): the server never falls back to plain HTTP or to no authentication.
    """

    def __init__(self, path: Path) -> None:
        """Reads the file; raises ConfigError."""
        self.path = path
        self._verifier = Verifier()
        self._lock = threading.Lock()
        reading = read(path, self._verifier)
        if reading.state is None:
            raise ConfigError(list(reading.problems))
        self._state = reading.state
        self._watched, self._seen = reading.watched, reading.seen

    def current(self) -> WebState:
        with self._lock:
            seen = tuple(_stat(path) for path in self._watched)
            if seen != self._seen:
                try:
                    self._reload()
                except Exception:
                    self._seen = seen  # once per change, like any other failure
                    log.exception("%s: not reloaded, the last good configuration stays", self.path)
            return self._state

    def _reload(self) -> None:
        reading = read(self.path, self._verifier)
        self._watched, self._seen = reading.watched, reading.seen
        problems = list(reading.problems)
        state = reading.state
        if state is not None and (state.ssl_context is None) != (self._state.ssl_context is None):
            problems.append(
                f"{self.path}: tls_server_config: TLS is switched on or off by a restart only"
            )
        if state is None or problems:
            log.error(
                "web configuration not reloaded, the last good one stays: %s", "; ".join(problems)
            )
            return
        self._state = state
        self._verifier.keep_only(state.config.basic_auth_users)
        log.info("web configuration %s reloaded: %s", self.path, state.describe())

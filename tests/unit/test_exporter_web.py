"""The web configuration file (--web.config.file): parsing, TLS settings, basic authentication and
reloading, with real certificates (openssl) and real bcrypt hashes."""

from __future__ import annotations

import base64
import logging
import ssl
import subprocess
from pathlib import Path

import pytest
from test_exporter_support import ThrowawayCa, basic, bcrypt_hash, replace

from pgstack_exporter.cli import ExitCode, main
from pgstack_exporter.config import ConfigError
from pgstack_exporter.web import Verdict, Verifier, WebConfig, WebConfigFile, load, user_table


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCa:
    ca = ThrowawayCa.make(tmp_path_factory.mktemp("pki"))
    ca.issue("server", 1)
    ca.issue("client", 2, client=True)
    return ca


def tls_file(tmp_path: Path, pki: ThrowawayCa, extra: str = "") -> Path:
    directory = pki.cert.parent
    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_config:\n"
        f"  cert_file: {directory / 'server.crt'}\n"
        f"  key_file: {directory / 'server.key'}\n" + extra
    )
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        WebConfigFile(path)
    assert all(problem.startswith(f"{path}: ") for problem in raised.value.problems)
    return [problem.removeprefix(f"{path}: ") for problem in raised.value.problems]


def test_an_empty_file_asks_for_nothing(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("")
    state = WebConfigFile(path).current()
    assert state.config == WebConfig()
    assert state.ssl_context is None
    assert state.users is None
    assert state.authorize("/metrics", None) == Verdict(allowed=True, user=None)


def test_defaults_of_tls(tmp_path: Path, pki: ThrowawayCa) -> None:
    state = WebConfigFile(tls_file(tmp_path, pki)).current()
    tls = state.config.tls_server_config
    assert tls is not None
    assert (tls.client_auth_type, tls.client_ca_file, tls.min_version, tls.max_version) == (
        "NoClientCert",
        None,
        "TLS12",
        None,
    )
    context = state.ssl_context
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    assert context.verify_mode == ssl.CERT_NONE
    assert state.users is None
    assert state.headers == {}


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("TLS10", ssl.TLSVersion.TLSv1),
        ("TLS11", ssl.TLSVersion.TLSv1_1),
        ("TLS12", ssl.TLSVersion.TLSv1_2),
        ("TLS13", ssl.TLSVersion.TLSv1_3),
    ],
)
def test_tls_version_names(
    tmp_path: Path, pki: ThrowawayCa, name: str, version: ssl.TLSVersion
) -> None:
    path = tls_file(tmp_path, pki, f"  min_version: {name}\n  max_version: {name}\n")
    context = WebConfigFile(path).current().ssl_context
    assert context is not None
    assert (context.minimum_version, context.maximum_version) == (version, version)


@pytest.mark.parametrize(
    ("auth", "mode"),
    [
        ("NoClientCert", ssl.CERT_NONE),
        ("RequestClientCert", ssl.CERT_NONE),
        ("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL),
        ("RequireAndVerifyClientCert", ssl.CERT_REQUIRED),
    ],
)
def test_client_auth_types(tmp_path: Path, pki: ThrowawayCa, auth: str, mode: int) -> None:
    ca = f"  client_ca_file: {pki.cert}\n" if auth != "NoClientCert" else ""
    path = tls_file(tmp_path, pki, f"  client_auth_type: {auth}\n{ca}")
    context = WebConfigFile(path).current().ssl_context
    assert context is not None
    assert context.verify_mode == mode


def test_relative_paths_are_taken_from_the_files_directory(pki: ThrowawayCa) -> None:
    path = pki.cert.parent / "web.yml"
    path.write_text("tls_server_config: {cert_file: server.crt, key_file: server.key}\n")
    tls = load(path).tls_server_config
    assert tls is not None
    assert tls.cert_file == pki.cert.parent / "server.crt"
    assert WebConfigFile(path).current().ssl_context is not None


TLS = "tls_server_config:\n  cert_file: /c.crt\n  key_file: /c.key\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]\n", "(top level): must be a mapping"),
        (
            "tls_sever_config: {}\n",
            "tls_sever_config: unknown key (known: tls_server_config, http_server_config,"
            " basic_auth_users)",
        ),
        ("rate_limit: {burst: 1}\n", "rate_limit: not supported by pgstack-exporter"),
        (
            TLS + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            "tls_server_config.cipher_suites: not supported by pgstack-exporter",
        ),
        (
            TLS + "  client_allowed_sans: [a]\n",
            "tls_server_config.client_allowed_sans: not supported by pgstack-exporter",
        ),
        ("http_server_config: {http2: false}\n", "http_server_config.http2: not supported by"),
        ("tls_server_config: [a]\n", "tls_server_config: must be a mapping"),
        ("tls_server_config: {key_file: /k}\n", "tls_server_config.cert_file: is required"),
        ("tls_server_config: {cert_file: /c}\n", "tls_server_config.key_file: is required"),
        (
            "tls_server_config: {cert_file: 3, key_file: /k}\n",
            "tls_server_config.cert_file: must be a non-empty string, got 3",
        ),
        (
            TLS + "  min_version: TLS14\n",
            "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got 'TLS14'",
        ),
        (
            TLS + "  max_version: TLS11\n",
            "tls_server_config.max_version: TLS11 is below min_version TLS12",
        ),
        (TLS + "  client_auth_type: Sometimes\n", "tls_server_config.client_auth_type: must be"),
        (
            TLS + "  client_auth_type: RequireAnyClientCert\n",
            "tls_server_config.client_auth_type: RequireAnyClientCert is not supported by"
            " pgstack-exporter",
        ),
        (
            TLS + "  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config.client_ca_file: is required with client_auth_type"
            " RequireAndVerifyClientCert",
        ),
        (
            TLS + "  client_ca_file: /ca.crt\n",
            "tls_server_config.client_ca_file: client_auth_type NoClientCert asks for no",
        ),
        ("http_server_config: {headers: [a]}\n", "http_server_config.headers: must be a mapping"),
        (
            "http_server_config: {headers: {X-Powered-By: me}}\n",
            "http_server_config.headers.X-Powered-By: cannot be set (settable:",
        ),
        (
            "http_server_config: {headers: {X-Frame-Options: allow}}\n",
            "http_server_config.headers.X-Frame-Options: must be one of deny, sameorigin,"
            " got 'allow'",
        ),
        (
            'http_server_config: {headers: {Content-Security-Policy: "a\\r\\nSet-Cookie: x"}}\n',
            "http_server_config.headers.Content-Security-Policy: must be a non-empty string on"
            " one line",
        ),
        ("basic_auth_users: [prometheus]\n", "basic_auth_users: must be a mapping of user"),
        (
            "basic_auth_users: {prometheus: hunter2}\n",
            "basic_auth_users.prometheus: not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04..31)",
        ),
        (
            "basic_auth_users: {prometheus: '$1$abcdefgh$abcdefghijklmnopqrstuv'}\n",
            "basic_auth_users.prometheus: not a bcrypt hash",
        ),
        (
            'basic_auth_users: {prometheus: "$2y$10$' + "a" * 53 + '\\n"}\n',
            "basic_auth_users.prometheus: not a bcrypt hash",
        ),
        (
            "basic_auth_users: {'a:b': x}\n",
            "basic_auth_users.a:b: a user name is a non-empty string without ':'",
        ),
    ],
)
def test_each_problem_is_named_with_its_key(tmp_path: Path, text: str, problem: str) -> None:
    found = problems_of(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith(problem), found


def test_every_problem_is_listed_and_a_password_is_not_repeated(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        "tls_server_config: {cert_file: /c, min_version: TLS9}\n"
        "basic_auth_users: {prometheus: hunter2}\nextra: 1\n",
    )
    assert len(found) == 4, found
    assert not any("hunter2" in problem for problem in found)


def test_not_yaml_and_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    with pytest.raises(ConfigError, match="cannot be read: No such file or directory"):
        WebConfigFile(path)
    path.write_text("tls_server_config: {cert_file: [\n")
    with pytest.raises(ConfigError) as raised:
        WebConfigFile(path)
    assert raised.value.problems[0].startswith(f"{path}:2:1: not valid YAML")


def test_files_that_do_not_load(tmp_path: Path, pki: ThrowawayCa) -> None:
    directory = pki.cert.parent
    crt, key = directory / "server.crt", directory / "server.key"
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "ec", "-in", key, "-aes256", "-passout", "pass:x", "-out", encrypted],
        check=True,
        capture_output=True,
    )
    missing = tmp_path / "missing.crt"
    cases = {
        f"cert_file: {missing}\n  key_file: {key}": (
            f"tls_server_config.cert_file: cannot read {missing}: No such file or directory"
        ),
        f"cert_file: {key}\n  key_file: {key}": (
            f"tls_server_config.cert_file: {key} holds no PEM certificate"
        ),
        f"cert_file: {crt}\n  key_file: {crt}": (
            f"tls_server_config.key_file: {crt} holds no PEM private key"
        ),
        f"cert_file: {pki.cert}\n  key_file: {key}": (
            f"tls_server_config.key_file: {key} does not load with cert_file {pki.cert}:"
            " [X509: KEY_VALUES_MISMATCH] key values mismatch"
        ),
        f"cert_file: {crt}\n  key_file: {encrypted}": (
            f"tls_server_config.key_file: {encrypted} is encrypted"
        ),
        (
            f"cert_file: {crt}\n  key_file: {key}\n"
            f"  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {key}"
        ): f"tls_server_config.client_ca_file: cannot load {key}: [X509: NO_CERTIFICATE",
    }
    for body, problem in cases.items():
        found = problems_of(tmp_path, f"tls_server_config:\n  {body}\n")
        assert len(found) == 1, found
        assert found[0].startswith(problem), found


def test_check_config_checks_the_web_file(
    tmp_path: Path, pki: ThrowawayCa, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("version: 1\n")
    web = tls_file(tmp_path, pki)
    argv = ["--config.file", str(config), "--web.config.file", str(web), "--check-config"]
    assert main(argv) == ExitCode.OK
    assert capsys.readouterr().out == f"{config}: valid\n{web}: valid\n"
    web.write_text("tls_server_config: {cert_file: /nowhere.crt, key_file: /nowhere.key}\n")
    assert main(argv) == ExitCode.VERIFICATION_FAILED
    assert capsys.readouterr().err.splitlines() == [
        f"{web}: tls_server_config.cert_file: cannot read /nowhere.crt: No such file or directory",
        f"{web}: tls_server_config.key_file: cannot read /nowhere.key: No such file or directory",
        f"{web}: 2 problem(s)",
    ]
    # Serving: the same check comes first, and nothing listens.
    assert main([*argv[:-1], "--web.listen-address=127.0.0.1:0"]) == ExitCode.VERIFICATION_FAILED


def users_file(tmp_path: Path, users: dict[str, str]) -> WebConfigFile:
    path = tmp_path / "web.yml"
    path.write_text(
        "basic_auth_users:\n" + "".join(f"  {user}: '{h}'\n" for user, h in users.items())
    )
    return WebConfigFile(path)


def test_basic_authentication(tmp_path: Path) -> None:
    state = users_file(
        tmp_path, {"prometheus": bcrypt_hash("s3cret"), "grafana": bcrypt_hash("other", "$2a$")}
    ).current()
    assert state.authorize("/metrics", basic("prometheus", "s3cret")) == (True, "prometheus")
    assert state.authorize("/metrics", basic("grafana", "other")) == (True, "grafana")
    assert state.authorize("/metrics", basic("prometheus", "other")) == (False, "prometheus")
    assert state.authorize("/metrics", basic("nobody", "s3cret")) == (False, "nobody")
    assert state.authorize("/metrics", None) == (False, None)
    assert state.authorize("/", None) == (False, None)
    assert state.authorize("/no-such-page", None) == (False, None)
    assert state.authorize("/health/", None) == (False, None)
    for header in ("Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"no colon").decode()):
        assert state.authorize("/metrics", header) == (False, None)
    assert state.authorize("/health", None) == (True, None)
    assert state.authorize("/health", basic("nobody", "x")) == (True, None)


def test_a_verified_password_is_remembered_and_a_wrong_one_is_not() -> None:
    verifier = Verifier()
    good = bcrypt_hash("s3cret")
    table = user_table({"prometheus": good})
    assert verifier.verify(table, "prometheus", b"s3cret")
    assert verifier.bcrypt_runs == 1
    for _ in range(3):
        assert verifier.verify(table, "prometheus", b"s3cret")
    assert verifier.bcrypt_runs == 1
    for _ in range(2):
        assert not verifier.verify(table, "prometheus", b"s3cret!")
    assert verifier.bcrypt_runs == 3
    # An unknown user costs one bcrypt each time too, against a decoy of the users' cost.
    assert not verifier.verify(table, "nobody", b"s3cret")
    assert verifier.bcrypt_runs == 4
    assert table.decoy[4:7] == good[4:7] == "04$"
    # A new hash for the user (a changed file) is checked again, and the old password no more.
    renewed = user_table({"prometheus": bcrypt_hash("n3w")})
    verifier.keep_only(renewed.hashes)
    assert not verifier.verify(renewed, "prometheus", b"s3cret")
    assert verifier.verify(renewed, "prometheus", b"n3w")
    assert verifier.bcrypt_runs == 6


def test_a_password_longer_than_bcrypt_reads_is_refused() -> None:
    password = "p" * 72
    table = user_table({"prometheus": bcrypt_hash(password)})
    verifier = Verifier()
    assert verifier.verify(table, "prometheus", password.encode())
    # bcrypt before 5 compares the first 72 bytes only: the same answer on every version.
    assert not Verifier().verify(table, "prometheus", (password + "extra").encode())
    assert not Verifier().verify(table, "prometheus", b"p\0p")


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    web = users_file(tmp_path, {"prometheus": bcrypt_hash("s3cret")})
    first = web.current()
    assert web.current() is first  # nothing changed: nothing read
    assert not first.authorize("/metrics", basic("grafana", "g")).allowed
    replace(
        web.path,
        f"basic_auth_users:\n  prometheus: '{bcrypt_hash('s3cret')}'\n"
        f"  grafana: '{bcrypt_hash('g')}'\n",
    )
    second = web.current()
    assert second is not first
    assert second.authorize("/metrics", basic("grafana", "g")).allowed
    assert second.authorize("/metrics", basic("prometheus", "s3cret")).allowed


def test_a_broken_file_keeps_the_last_good_configuration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web = users_file(tmp_path, {"prometheus": bcrypt_hash("s3cret")})
    good = web.current()
    caplog.set_level(logging.INFO, logger="pgstack_exporter.web")
    for broken in ("basic_auth_users: {prometheus: [\n", "basic_auth_users: {prometheus: x}\n"):
        caplog.clear()
        replace(web.path, broken)
        for _ in range(3):
            assert web.current() is good
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1, "logged once per change"
        assert "not reloaded, the last good one stays" in errors[0].getMessage()
        assert good.authorize("/metrics", None) == (False, None)
    replace(web.path, "basic_auth_users: {}\n")
    assert web.current().users is None  # a deliberate change applies, even one to no users


def test_a_renewed_certificate_is_read_and_a_bad_one_is_not(
    tmp_path: Path, pki: ThrowawayCa, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "tls"
    directory.mkdir()
    crt, key = directory / "server.crt", directory / "server.key"
    crt.write_bytes((pki.cert.parent / "server.crt").read_bytes())
    key.write_bytes((pki.cert.parent / "server.key").read_bytes())
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config: {{cert_file: {crt}, key_file: {key}}}\n")
    web = WebConfigFile(path)
    first = web.current()
    renewed, _ = pki.issue("renewed", 3, key=pki.cert.parent / "server.key")
    replace(crt, renewed.read_text())
    second = web.current()
    assert second is not first
    assert second.ssl_context is not first.ssl_context
    # A key that does not go with the certificate: the last good pair stays.
    caplog.set_level(logging.ERROR, logger="pgstack_exporter.web")
    replace(key, (pki.cert.parent / "client.key").read_text())
    assert web.current() is second
    assert "KEY_VALUES_MISMATCH" in caplog.text
    # TLS is never switched off by a reload.
    caplog.clear()
    replace(key, (pki.cert.parent / "server.key").read_text())
    third = web.current()
    assert third is not second
    replace(path, "")
    assert web.current() is third
    assert "TLS is switched on or off by a restart only" in caplog.text

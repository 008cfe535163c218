"""pgstack-exporter's command line, called as main([...])."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pgstack_exporter.cli import ExitCode, main, parser
from pgstack_exporter.exporter import COLLECTORS


def test_check_config_accepts_a_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text("version: 1\nredis:\n  - {name: db1, host: h, username: monitoring}\n")
    assert main(["--config.file", str(path), "--check-config"]) == ExitCode.OK
    assert capsys.readouterr().out == f"{path}: valid\n"


def test_check_config_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text(
        "version: 1\nredis:\n  - {name: db1, port: 0, username: m, passsword_file: /x}\n"
    )
    assert main(["--config.file", str(path), "--check-config"]) == ExitCode.VERIFICATION_FAILED
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{path}: redis[0].passsword_file: unknown key")
    assert f"{path}: redis[0].host: is required" in err
    assert err[-1] == f"{path}: 2 problem(s)"


def test_a_missing_file_fails_check_config(tmp_path: Path) -> None:
    assert main(["--config.file", str(tmp_path / "no.yml"), "--check-config"]) == 1


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["--no-such-flag"]) == ExitCode.USAGE
    path = tmp_path / "exporter.yml"
    path.write_text("version: 1\n")
    assert main(["--config.file", str(path), "--web.listen-address", "nonsense"]) == ExitCode.USAGE


def test_collector_flags_in_prometheus_style() -> None:
    args = parser().parse_args(["--no-collector.redis", "--collector.tls", "--log.level", "debug"])
    assert args.collector_redis is False
    assert args.collector_tls is True
    assert all(getattr(parser().parse_args([]), f"collector_{name}") for name in COLLECTORS)


def test_an_address_in_use_is_a_precondition_failure(tmp_path: Path) -> None:

    path = tmp_path / "exporter.yml"
    path.write_text("version: 1\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert (
            main(["--config.file", str(path), f"--web.listen-address=127.0.0.1:{port}"])
            == ExitCode.PRECONDITION
        )

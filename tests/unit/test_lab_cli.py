"""The lab tool's command line: usage errors exit 2 before anything runs; the summary a new user
sees after `make lab` names every endpoint and env file of the lab inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgstack_lab.cli import main
from pgstack_lab.summary import render

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_INVENTORY = REPO_ROOT / "inventory/lab/hosts.yml"


def test_down_with_all_and_host_names_is_a_usage_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code = main(["-i", str(LAB_INVENTORY), "--root", str(tmp_path), "down", "--all", "db1"])
    assert code == 2
    assert "either --all or host names" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_summary_names_every_endpoint_and_env_file_of_the_lab() -> None:
    text = render(LAB_INVENTORY)
    for endpoint in (
        "db1.pgstack.internal:5432",
        "db1.pgstack.internal:6432",
        "db1.pgstack.internal:6379",
        "backup1.pgstack.internal:8432",
    ):
        assert endpoint in text
    assert "app1:/etc/pgstack/app.env" in text
    assert "app1:/etc/pgstack/billing.env" in text
    assert "make app-shell APP=app" in text

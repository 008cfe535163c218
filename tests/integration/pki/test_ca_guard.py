"""The internal CA is never created again beside hosts that trust one: the pki role's CA step
(tasks/ca.yml, included as playbooks/pki.yml runs it) in a real ``ansible-playbook`` on this
machine, over two inventory hosts that are both this machine (``ansible_connection: local``),
each with a TLS directory of its own in a temporary directory.

With no CA in ``pki_ca_dir`` and a CA certificate on one host, the run stops naming that host and
the directory, and creates nothing (not even the directory); with no CA anywhere, it creates one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from localhost_play import run_plays

PASSPHRASE = "pgstack-test-ca-passphrase-0123456789"


def run_ca_step(tmp_path: Path, trusting: tuple[str, ...]) -> tuple[int, dict[str, Any]]:
    """The CA step over hosts one and two (those in trusting hold a CA certificate already);
    its return code and the message each host ended with (a failure's, or none)."""
    inventory: dict[str, Any] = {"all": {"hosts": {}}}
    for name in ("one", "two"):
        tls_dir = tmp_path / name
        tls_dir.mkdir()
        if name in trusting:
            (tls_dir / "ca.crt").write_text("a CA certificate from an earlier CA\n")
        inventory["all"]["hosts"][name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "pki_tls_dir": str(tls_dir),
        }
    hosts_file = tmp_path / "hosts.json"
    hosts_file.write_text(json.dumps(inventory), encoding="utf-8")
    play = {
        "name": "pki CA step",
        "hosts": "all",
        "gather_facts": False,
        "vars": {
            "pki_ca_dir": str(tmp_path / "ca"),
            "pki_ca_passphrase": PASSPHRASE,
            "pki_ca_common_name": "pgstack test CA",
        },
        "tasks": [
            {
                "name": "The CA step of the pki role",
                "ansible.builtin.include_role": {"name": "pki", "tasks_from": "ca"},
            }
        ],
    }
    result = run_plays([play], tmp_path / "ca.yml", inventory=hosts_file)
    report = json.loads(result.stdout)
    messages = {}
    for task in report["plays"][0]["tasks"]:
        for host, outcome in task["hosts"].items():
            if outcome.get("failed"):
                messages[host] = outcome.get("msg", "")
    return result.returncode, messages


def test_hosts_that_trust_a_ca_stop_a_new_one(tmp_path: Path) -> None:
    returncode, messages = run_ca_step(tmp_path, trusting=("two",))
    assert returncode != 0
    assert sorted(messages) == ["one", "two"]
    for message in messages.values():
        assert f"{tmp_path / 'ca'} on the controller holds no CA certificate" in message
        assert "but two already trust a CA (" in message
        assert "Restore ca.crt and ca.key" in message
    assert not (tmp_path / "ca").exists()


def test_with_no_ca_anywhere_one_is_created(tmp_path: Path) -> None:
    returncode, messages = run_ca_step(tmp_path, trusting=())
    assert (returncode, messages) == (0, {})
    assert (tmp_path / "ca" / "ca.crt").is_file()
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600

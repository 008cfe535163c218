"""roles/prometheus's alertmanager.yml for several inventories, checked by the real amtool.

One ansible-playbook run on the controller holds every case as a block: the role's input checks
(its `assert` entry point: argument spec and tasks/assert.yml), then its alertmanager.yml template
rendered into a temporary directory, with a rescue that records the refusal. The tests then run
Debian's `amtool check-config` (package prometheus-alertmanager, what the role's `validate:` runs on
the monitoring host) on every rendered file. A case is refused either by the role's checks or by
amtool, and the refusal names the problem.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from localhost_play import case_messages, case_task, run_plays

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = REPO_ROOT / "roles/prometheus/templates/etc/prometheus/alertmanager.yml.j2"
RENDERED = "pgstack-test: rendered"
SECRETS = "/etc/prometheus/alertmanager_secrets"
# Stands for a secret: it must appear in no output of the run.
FAKE_SECRET = "pgstack-test-secret-value-0123456789"
# The inline-vault case: its password and the value it encrypts.
VAULT_PASSWORD = "pgstack-test-vault-password"
VAULTED_URL = "https://hooks.slack.com/services/T000/B000/pgstack-test-vaulted"

WEBHOOK = {
    "name": "webhook",
    "webhook_configs": [{"url": "http://127.0.0.1:9095/", "send_resolved": True}],
}
EMAIL = {"name": "team-email", "email_configs": [{"to": "dba@example.com", "send_resolved": True}]}
SLACK = {
    "name": "team-slack",
    "slack_configs": [
        {"api_url_file": f"{SECRETS}/slack_api_url", "channel": "#db-alerts", "send_resolved": True}
    ],
}
PAGERDUTY = {
    "name": "oncall",
    "pagerduty_configs": [
        {"routing_key_file": f"{SECRETS}/pagerduty_routing_key", "send_resolved": True}
    ],
}
FULL: dict[str, Any] = {
    "prometheus_alertmanager_global": {
        "smtp_smarthost": "mail.example.com:587",
        "smtp_from": "alertmanager@example.com",
        "smtp_auth_username": "alertmanager",
        "smtp_auth_password_file": f"{SECRETS}/smtp_password",
        "resolve_timeout": "5m",
    },
    "prometheus_alertmanager_templates": ["/etc/prometheus/alertmanager_templates/*.tmpl"],
    "prometheus_alertmanager_receivers": [EMAIL, PAGERDUTY, SLACK, WEBHOOK],
    "prometheus_alertmanager_route": {
        "group_by": ["alertname", "target"],
        "routes": [
            {"receiver": "oncall", "matchers": ['severity = "critical"'], "continue": True},
            {
                "receiver": "team-slack",
                "matchers": ['severity = "warning"'],
                "routes": [{"receiver": "webhook", "matchers": ['alertname =~ "Pgbouncer.*"']}],
            },
        ],
    },
    "prometheus_alertmanager_inhibit_rules": [
        {
            "source_matchers": ['alertname = "PostgresqlDown"'],
            "target_matchers": ['alertname =~ "Pgbouncer.*"'],
            "equal": ["target"],
        }
    ],
    "prometheus_alertmanager_secret_files": {
        "smtp_password": FAKE_SECRET,
        "slack_api_url": FAKE_SECRET,
        "pagerduty_routing_key": FAKE_SECRET,
    },
}

# name: the case's variables (block variables: they replace the role's defaults).
CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "full": FULL,
    "inline-vault": {
        "prometheus_alertmanager_receivers": [
            WEBHOOK,
            {
                "name": "team-slack",
                "slack_configs": [{"api_url": "{{ vault_slack_api_url }}", "channel": "#db"}],
            },
        ],
    },
    # Refused by the role's checks (before any host changes)
    "former-shape": {
        "prometheus_alertmanager_receivers": [
            {"name": "oncall", "url": "https://alerts.example.com/hooks/pgstack"}
        ],
    },
    "receiver-without-name": {
        "prometheus_alertmanager_receivers": [{"webhook_configs": [{"url": "http://x/"}]}],
    },
    "route-names-an-undefined-receiver": {
        "prometheus_alertmanager_route": {
            "routes": [{"receiver": "nobody", "matchers": ['severity = "critical"']}],
        },
    },
    "receivers-not-a-list": {"prometheus_alertmanager_receivers": {"name": "webhook"}},
    "relative-template-path": {"prometheus_alertmanager_templates": ["templates/*.tmpl"]},
    "secret-file-outside-the-directory": {
        "prometheus_alertmanager_secret_files": {"../shadow": FAKE_SECRET},
    },
    "secret-file-placeholder": {
        "prometheus_alertmanager_secret_files": {"pagerduty_routing_key": "CHANGE_ME"},
    },
    # Accepted by the role's checks, refused by amtool (the authority on Alertmanager's fields)
    "email-without-smarthost": {"prometheus_alertmanager_receivers": [EMAIL]},
    "misspelt-field": {
        "prometheus_alertmanager_receivers": [
            {"name": "team-slack", "slack_configs": [{"api_url_fil": "/x", "channel": "#db"}]}
        ],
    },
    "duplicate-receiver": {"prometheus_alertmanager_receivers": [WEBHOOK, WEBHOOK]},
    "inhibit-rule-bad-matcher": {
        "prometheus_alertmanager_inhibit_rules": [{"source_matchers": ["severity critical"]}],
    },
}


RECEIVERS = "prometheus_alertmanager_receivers"
SECRET_FILES = "prometheus_alertmanager_secret_files"


def amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        pytest.fail("needs Debian's amtool (package prometheus-alertmanager; make test-deps)")
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    """The rendered files' directory, each case's outcome (RENDERED or the refusal), the output."""
    tmp = tmp_path_factory.mktemp("alertmanager")
    out = tmp / "rendered"
    out.mkdir()
    password = tmp / "vault-password"
    password.write_text(VAULT_PASSWORD, encoding="utf-8")
    ansible_bin = Path(sys.executable).parent
    vaulted = subprocess.run(
        [str(ansible_bin / "ansible-vault"), "encrypt_string", "--vault-password-file",
         str(password), "--name", "vault_slack_api_url", VAULTED_URL],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    vault_vars = tmp / "vault.yml"
    vault_vars.write_text(vaulted, encoding="utf-8")

    tasks = []
    for name, variables in CASES.items():
        tasks.append(case_task(name, variables, [
                {"name": f"Validate ({name})",
                 "ansible.builtin.import_role": {"name": "prometheus", "tasks_from": "assert"}},
                {"name": f"Render ({name})",
                 "ansible.builtin.template": {"src": str(TEMPLATE), "dest": f"{out}/{name}.yml",
                                              "mode": "0600"}},
        ], RENDERED))  # fmt: skip
    playbook = tmp / "cases.yml"
    play = {
        "name": "alertmanager.yml cases",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": True,
        "gather_subset": ["!all", "min"],
        "vars_files": [str(vault_vars)],
        # The role's other checks want a scrape target (no inventory groups here) and the
        # monitoring plane's passwords.
        "vars": {
            "prometheus_exporter_targets": [{"name": "localhost", "address": "127.0.0.1"}],
            "prometheus_scrape_password": secrets.token_urlsafe(24),
            "prometheus_operator_password": secrets.token_urlsafe(24),
        },
        "tasks": tasks,
    }
    result = run_plays(
        [play],
        playbook,
        args=("--vault-password-file", str(password)),
        # Modules on the controller run on this interpreter (not whatever python3 is first).
        env={"ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    found = {case: message for case, (message,) in case_messages(result.stdout).items()}
    assert sorted(found) == sorted(CASES)
    return out, found, output


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [amtool(), "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def rendered(run: tuple[Path, dict[str, str], str], case: str) -> dict[str, Any]:
    """The case's file, after amtool accepted it."""
    out, outcomes, _ = run
    assert outcomes[case] == RENDERED, outcomes[case]
    checked = check_config(out / f"{case}.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    document: dict[str, Any] = yaml.safe_load((out / f"{case}.yml").read_text())
    return document


def test_the_default_routes_everything_to_the_webhook_and_inhibits_warnings(
    run: tuple[Path, dict[str, str], str],
) -> None:
    config = rendered(run, "default")
    assert set(config) == {"route", "receivers", "inhibit_rules"}
    assert config["route"] == {
        "receiver": "webhook",
        "group_by": ["alertname", "job", "instance"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
    }
    assert config["receivers"] == [WEBHOOK]
    (rule,) = config["inhibit_rules"]
    assert rule["source_matchers"] == ['severity = "critical"']
    assert rule["target_matchers"] == ['severity = "warning"']
    assert {"alertname", "instance", "target"} <= set(rule["equal"])


def test_email_slack_pagerduty_and_webhook_are_written_as_given(
    run: tuple[Path, dict[str, str], str],
) -> None:
    config = rendered(run, "full")
    assert config["global"] == FULL["prometheus_alertmanager_global"]
    assert config["templates"] == FULL["prometheus_alertmanager_templates"]
    assert config["receivers"] == FULL["prometheus_alertmanager_receivers"]
    assert config["inhibit_rules"] == FULL["prometheus_alertmanager_inhibit_rules"]
    # The route is merged over the default one: the first receiver and the waits stay.
    assert config["route"] == {
        "receiver": "team-email",
        "group_by": ["alertname", "target"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": FULL["prometheus_alertmanager_route"]["routes"],
    }


def test_an_inline_vault_value_is_written_in_clear_not_as_ciphertext(
    run: tuple[Path, dict[str, str], str],
) -> None:
    config = rendered(run, "inline-vault")
    assert config["receivers"][1]["slack_configs"][0]["api_url"] == VAULTED_URL
    out, _, _ = run
    assert "$ANSIBLE_VAULT" not in (out / "inline-vault.yml").read_text()


def test_no_secret_shows_in_the_output(run: tuple[Path, dict[str, str], str]) -> None:
    _, _, output = run
    assert FAKE_SECRET not in output
    assert VAULTED_URL not in output


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("former-shape", [RECEIVERS, "former {name, url}", "url: oncall"]),
        ("receiver-without-name", [RECEIVERS, "Without a name: 1"]),
        ("route-names-an-undefined-receiver", ["prometheus_alertmanager_route", "nobody"]),
        ("receivers-not-a-list", [RECEIVERS]),
        ("relative-template-path", ["prometheus_alertmanager_templates", "templates/*.tmpl"]),
        ("secret-file-outside-the-directory", [SECRET_FILES, "../shadow"]),
        ("secret-file-placeholder", [SECRET_FILES, "pagerduty_routing_key"]),
    ],
)
def test_the_role_refuses_bad_input_naming_it(
    run: tuple[Path, dict[str, str], str], case: str, words: list[str]
) -> None:
    out, outcomes, _ = run
    assert outcomes[case] != RENDERED, f"{case} was accepted"
    for word in words:
        assert word in outcomes[case], outcomes[case]
    assert not (out / f"{case}.yml").exists()


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("email-without-smarthost", "no global SMTP smarthost set"),
        ("misspelt-field", "field api_url_fil not found"),
        ("duplicate-receiver", 'notification config name "webhook" is not unique'),
        ("inhibit-rule-bad-matcher", "severity critical"),
    ],
)
def test_amtool_refuses_what_only_it_knows_naming_it(
    run: tuple[Path, dict[str, str], str], case: str, words: str
) -> None:
    out, outcomes, _ = run
    assert outcomes[case] == RENDERED, outcomes[case]
    checked = check_config(out / f"{case}.yml")
    assert checked.returncode != 0, checked.stdout
    assert words in checked.stdout, checked.stdout + checked.stderr

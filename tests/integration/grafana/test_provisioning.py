"""roles/grafana's provisioning files for several inventories, rendered by ansible-playbook.

One run per inventory on the controller (connection local): each case is a block with the role's
input checks (its `assert` entry point: argument spec and tasks/assert.yml), then its two templates
rendered into a temporary directory, with a rescue that records the refusal. The tests read the
rendered YAML as Grafana would: the data source's URL comes from the inventory's monitoring host.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from localhost_play import case_messages, case_task, run_plays

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = REPO_ROOT / "roles/grafana/templates/etc/grafana/provisioning"
RENDERED = "pgstack-test: rendered"

# inventory name: (the monitoring host's variables, or None for no monitoring group; the cases:
# name -> block variables, which replace the role's defaults)
INVENTORIES: dict[str, tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]] = {
    "every-address": (
        {"ansible_host": "192.0.2.13", "prometheus_scrape_interval": "10s"},
        {
            "from-inventory": {},
            "explicit": {
                "grafana_prometheus_url": "https://prometheus.example.com:8443/prom",
                "grafana_prometheus_scrape_interval": "1m",
                "grafana_datasource_is_default": False,
                "grafana_dashboards_dir": "/srv/dashboards/pgstack",
                "grafana_dashboards_folder": "databases",
            },
            "url-without-scheme": {"grafana_prometheus_url": "mon1.example.com:9090"},
            "url-port-out-of-range": {"grafana_prometheus_url": "http://mon1:70000"},
            "interval-not-a-duration": {"grafana_prometheus_scrape_interval": "30"},
            "relative-dashboards-dir": {"grafana_dashboards_dir": "dashboards/pgstack"},
            "dashboards-in-provisioning": {
                "grafana_dashboards_dir": "/etc/grafana/provisioning/dashboards/pgstack"
            },
            "folder-with-a-space": {"grafana_dashboards_folder": "pg stack"},
            "no-dashboards": {"grafana_dashboards_source_dir": "/nonexistent"},
        },
    ),
    "one-address": (
        {"ansible_host": "192.0.2.13", "prometheus_listen_address": "198.51.100.7:9091"},
        {"from-inventory": {}},
    ),
    "ipv6-any": (
        {"ansible_host": "mon1.example.com", "prometheus_listen_address": "[::]:9092"},
        {"from-inventory": {}},
    ),
    "no-monitoring-host": (None, {"from-inventory": {}, "explicit": {
        "grafana_prometheus_url": "http://prometheus.internal:9090"}}),
}  # fmt: skip


def play(out: Path, cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tasks = []
    for name, variables in cases.items():
        tasks.append(case_task(name, {**variables, "__preflight_validated": []}, [
                {"name": f"Validate ({name})",
                 "ansible.builtin.include_role": {"name": "grafana", "tasks_from": "assert",
                                                  "public": True}},
                {"name": f"Render ({name})",
                 "ansible.builtin.template": {"src": f"{TEMPLATES}/{{{{ kind }}}}/pgstack.yml.j2",
                                              "dest": f"{out}/{name}-{{{{ kind }}}}.yml",
                                              "mode": "0600"},
                 "loop": ["datasources", "dashboards"], "loop_control": {"loop_var": "kind"}},
        ], RENDERED))  # fmt: skip
    return {
        "name": "grafana provisioning cases",
        "hosts": "grafana",
        "gather_facts": True,
        "gather_subset": ["!all", "min"],
        "tasks": tasks,
    }


def inventory(monitoring: dict[str, Any] | None) -> dict[str, Any]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    children: dict[str, Any] = {"grafana": {"hosts": {"localhost": local}}}
    if monitoring is not None:
        children["monitoring"] = {"hosts": {"mon1": monitoring}}
    return {"all": {"children": children}}


Outcomes = dict[str, tuple[Path, dict[str, str]]]


def converge(name: str, tmp: Path) -> tuple[Path, dict[str, str]]:
    """One inventory's run: the rendered files' directory and each case's outcome."""
    monitoring, cases = INVENTORIES[name]
    out = tmp / "rendered"
    out.mkdir()
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory(monitoring)), encoding="utf-8")
    result = run_plays([play(out, cases)], tmp / "cases.yml", inventory=tmp / "hosts.yml")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    found = {case: message for case, (message,) in case_messages(result.stdout).items()}
    assert sorted(found) == sorted(cases)
    return out, found


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    return {name: converge(name, tmp_path_factory.mktemp(name)) for name in INVENTORIES}


def rendered(runs: Outcomes, name: str, case: str) -> tuple[dict[str, Any], ...]:
    """The case's data source and dashboard provider, as Grafana reads them."""
    out, outcomes = runs[name]
    assert outcomes[case] == RENDERED, outcomes[case]
    datasource = yaml.safe_load((out / f"{case}-datasources.yml").read_text())
    provider = yaml.safe_load((out / f"{case}-dashboards.yml").read_text())
    assert datasource["apiVersion"] == provider["apiVersion"] == 1
    (source,) = datasource["datasources"]
    (files,) = provider["providers"]
    return source, files


@pytest.mark.parametrize(
    ("name", "url", "interval"),
    [
        # Prometheus on every address: the monitoring host as Ansible reaches it.
        ("every-address", "http://192.0.2.13:9090", "10s"),
        # On one address: that address, and its port.
        ("one-address", "http://198.51.100.7:9091", "30s"),
        ("ipv6-any", "http://mon1.example.com:9092", "30s"),
    ],
)
def test_the_data_source_names_the_monitoring_hosts_prometheus(
    runs: Outcomes, name: str, url: str, interval: str
) -> None:
    source, files = rendered(runs, name, "from-inventory")
    assert source == {
        "name": "pgstack Prometheus",
        "uid": "pgstack-prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": url,
        "isDefault": True,
        "editable": False,
        "jsonData": {"httpMethod": "POST", "timeInterval": interval},
    }
    assert files["folder"] == files["folderUid"] == "pgstack"
    assert files["options"]["path"] == "/var/lib/grafana/dashboards/pgstack"
    assert files["allowUiUpdates"] is False


def test_explicit_values_are_written_as_given(runs: Outcomes) -> None:
    source, files = rendered(runs, "every-address", "explicit")
    assert source["url"] == "https://prometheus.example.com:8443/prom"
    assert source["jsonData"]["timeInterval"] == "1m"
    assert source["isDefault"] is False
    assert files["folder"] == files["folderUid"] == "databases"
    assert files["options"]["path"] == "/srv/dashboards/pgstack"


def test_without_a_monitoring_host_the_url_must_be_set(runs: Outcomes) -> None:
    _, outcomes = runs["no-monitoring-host"]
    assert "grafana_prometheus_url must be an http(s) URL" in outcomes["from-inventory"]
    assert "Without a host in group monitoring" in outcomes["from-inventory"]
    source, _ = rendered(runs, "no-monitoring-host", "explicit")
    assert source["url"] == "http://prometheus.internal:9090"


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("url-without-scheme", "grafana_prometheus_url must be an http(s) URL"),
        ("url-port-out-of-range", "grafana_prometheus_url must be an http(s) URL"),
        ("interval-not-a-duration", "grafana_prometheus_scrape_interval is a Prometheus duration"),
        ("relative-dashboards-dir", "grafana_dashboards_dir (dashboards/pgstack)"),
        ("dashboards-in-provisioning", "outside the provisioning directory"),
        ("folder-with-a-space", "grafana_dashboards_folder names a Grafana folder"),
        ("no-dashboards", "grafana_dashboards_source_dir (/nonexistent) holds no *.json file"),
    ],
)
def test_bad_input_is_refused_naming_the_variable(runs: Outcomes, case: str, words: str) -> None:
    _, outcomes = runs["every-address"]
    assert words in outcomes[case]

"""The grafana role on the lab: mon1 (group grafana; no Grafana runs there) holds the provisioning
files and the dashboards, root's and readable by everyone, the data source names mon1's Prometheus,
and every dashboard is byte for byte the repository's.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import pytest
import yaml
from conftest import group_hosts, lab_host
from helpers import MON, sh

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASOURCE = "/etc/grafana/provisioning/datasources/pgstack.yml"
PROVIDER = "/etc/grafana/provisioning/dashboards/pgstack.yml"
DASHBOARDS_DIR = "/var/lib/grafana/dashboards/pgstack"
DASHBOARDS = sorted((REPO_ROOT / "dashboards").glob("*.json"))


def stat(paths: list[str]) -> dict[str, str]:
    """path -> "owner:group mode" on mon1."""
    out = sh(MON, "stat -c '%n %U:%G %a' " + " ".join(shlex.quote(p) for p in paths))
    return {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines()}


def test_mon1_is_the_grafana_host_of_the_lab() -> None:
    assert group_hosts("grafana") == [MON]
    assert group_hosts("monitoring") == [MON]


def test_the_files_are_roots_and_readable_by_grafana() -> None:
    files = [DATASOURCE, PROVIDER, *(f"{DASHBOARDS_DIR}/{p.name}" for p in DASHBOARDS)]
    directories = [
        "/etc/grafana/provisioning/datasources",
        "/etc/grafana/provisioning/dashboards",
        DASHBOARDS_DIR,
    ]
    found = stat(files + directories)
    assert found == {
        **dict.fromkeys(files, "root:root 644"),
        **dict.fromkeys(directories, "root:root 755"),
    }


def test_the_datasource_names_mon1s_prometheus() -> None:
    document = yaml.safe_load(sh(MON, f"cat {DATASOURCE}"))
    (source,) = document["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == "pgstack-prometheus"
    # The lab's mon1 listens on every address (prometheus_listen_address 0.0.0.0:9090).
    assert source["url"] == f"http://{lab_host(MON).address}:9090"
    # inventory/lab/group_vars/monitoring: prometheus_scrape_interval.
    assert source["jsonData"]["timeInterval"] == "10s"
    # The URL is Prometheus, answering from mon1 itself as Grafana there would ask it.
    ready = sh(MON, f"python3 -c {shlex.quote(READY)} {shlex.quote(source['url'])}")
    assert ready.strip() == "200"


READY = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1] + '/-/ready', timeout=10).status)\n"
)


def test_the_provider_loads_the_dashboards_directory() -> None:
    document = yaml.safe_load(sh(MON, f"cat {PROVIDER}"))
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARDS_DIR
    assert provider["allowUiUpdates"] is False


def test_every_dashboard_is_the_repositorys() -> None:
    assert len(DASHBOARDS) >= 5
    out = sh(MON, f"cd {DASHBOARDS_DIR} && sha256sum *.json")
    on_mon1 = {name: digest for digest, name in (line.split() for line in out.splitlines())}
    local = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in DASHBOARDS}
    assert on_mon1 == local
    # And each parses as the dashboard it names.
    for path in DASHBOARDS:
        assert json.loads(path.read_text())["uid"].startswith("pgstack-")

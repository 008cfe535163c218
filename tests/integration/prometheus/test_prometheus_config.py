"""roles/prometheus's prometheus.yml for the inventory's layout, rendered by ansible-playbook, then
checked by Debian's promtool and scraped by Debian's Prometheus.

One run per inventory on the controller (the monitoring host's connection is local): each case is a
block with the role's input checks (its `assert` entry point, which also loads the cluster view of
roles/preflight), then prometheus.yml rendered into a temporary directory, with a rescue that
records the refusal.

- One database host (the lab's layout): the jobs it always had (pgstack, node, prometheus,
  alertmanager), nothing of a cluster.
- A Patroni cluster (two hosts in group postgres, three in etcd): a job per member for Patroni's
  REST API and per etcd member for etcd, each over TLS verified for the member's inventory name,
  without credentials; the ports follow the variables, and a port out of range is refused.
- Scraped for real: stand-ins for two members' Patroni (HTTPS on 127.0.0.2 and 127.0.0.3, serving
  Patroni 4.0.7's /metrics text), a real etcd (Debian's etcd-server, authentication on) on
  127.0.0.1 for the witness, and Debian's Prometheus with the rendered file: Patroni's and etcd's
  series arrive under jobs patroni and etcd, and a member whose certificate names another host is
  down, as is an etcd member nothing listens for.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localhost_play import REPO_ROOT, case_messages, case_task, run_plays

# The stand-ins' CA (tests/integration/haproxy) and the real etcd (tests/integration/etcd).
sys.path.insert(0, str(REPO_ROOT / "tests/integration/haproxy"))
sys.path.insert(0, str(REPO_ROOT / "tests/integration/etcd"))
from etcd_server import Pki, running_etcd
from haproxy_members import make_ca

TEMPLATE = REPO_ROOT / "roles/prometheus/templates/etc/prometheus/prometheus.yml.j2"
RENDERED = "pgstack-test: rendered"
SECRETS = {
    "prometheus_scrape_password": "scrape-" + "0" * 24,
    "prometheus_operator_password": "operator-" + "1" * 24,
}

ONE_HOST = {
    "postgres": {"db1": "192.0.2.11"},
    "pgbouncer": {"db1": "192.0.2.11"},
    "redis": {"db1": "192.0.2.11"},
    "backup": {"backup1": "192.0.2.12"},
    "app": {"app1": "192.0.2.14"},
}
HA = {
    "postgres": {"pg1": "192.0.2.61", "pg2": "192.0.2.62"},
    "pgbouncer": {"pg1": "192.0.2.61", "pg2": "192.0.2.62"},
    "etcd": {"pg1": "192.0.2.61", "pg2": "192.0.2.62", "witness": "192.0.2.63"},
    "haproxy": {"pg1": "192.0.2.61", "pg2": "192.0.2.62", "witness": "192.0.2.63"},
    "redis": {"pg1": "192.0.2.61", "pg2": "192.0.2.62"},
    "sentinel": {"pg1": "192.0.2.61", "pg2": "192.0.2.62", "witness": "192.0.2.63"},
}
# The scraped cluster: the members on loopback addresses of this machine.
LOCAL_HA = {
    "postgres": {"pg1": "127.0.0.2", "pg2": "127.0.0.3"},
    "etcd": {"pg1": "127.0.0.2", "pg2": "127.0.0.3", "witness": "127.0.0.1"},
}

# inventory: its groups and its cases (name -> block variables, which replace the defaults)
INVENTORIES: dict[str, tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]] = {
    "one-host": (ONE_HOST, {"default": {}}),
    "ha": (
        HA,
        {
            "default": {},
            "ports": {"prometheus_patroni_port": 18008, "prometheus_etcd_port": 12379},
            "etcd-port-out-of-range": {"prometheus_etcd_port": 70000},
        },
    ),
}


def play(out: Path, cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tasks = []
    for name, variables in cases.items():
        tasks.append(case_task(name, {**SECRETS, **variables}, [
                {"name": f"Validate ({name})",
                 "ansible.builtin.include_role": {"name": "prometheus", "tasks_from": "assert",
                                                  "public": True}},
                {"name": f"Render ({name})",
                 "ansible.builtin.template": {"src": str(TEMPLATE), "dest": f"{out}/{name}.yml",
                                              "mode": "0600"}},
        ], RENDERED))  # fmt: skip
    return {
        "name": "prometheus.yml cases",
        "hosts": "monitoring",
        "gather_facts": True,
        "gather_subset": ["!all", "min"],
        "tasks": tasks,
    }


def inventory(groups: dict[str, dict[str, str]]) -> dict[str, Any]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    children: dict[str, Any] = {
        group: {"hosts": {host: {"ansible_host": address} for host, address in hosts.items()}}
        for group, hosts in groups.items()
    }
    children["monitoring"] = {"hosts": {"mon1": local}}
    return {"all": {"children": children}}


def converge(
    groups: dict[str, dict[str, str]], cases: dict[str, dict[str, Any]], tmp: Path
) -> tuple[Path, dict[str, str]]:
    """One inventory's run: the rendered files' directory and each case's outcome."""
    out = tmp / "rendered"
    out.mkdir()
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory(groups)), encoding="utf-8")
    result = run_plays([play(out, cases)], tmp / "cases.yml", inventory=tmp / "hosts.yml")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    found = {case: message for case, (message,) in case_messages(result.stdout, "mon1").items()}
    assert sorted(found) == sorted(cases)
    return out, found


Outcomes = dict[str, tuple[Path, dict[str, str]]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    return {
        name: converge(groups, cases, tmp_path_factory.mktemp(name))
        for name, (groups, cases) in INVENTORIES.items()
    }


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("needs Debian's promtool (package prometheus; make test-deps)")
    return found


def rendered(runs: Outcomes, name: str, case: str) -> dict[str, Any]:
    """The case's prometheus.yml, after promtool accepted it as the role's validate: does."""
    out, outcomes = runs[name]
    assert outcomes[case] == RENDERED, outcomes[case]
    path = out / f"{case}.yml"
    checked = subprocess.run(
        [promtool(), "check", "config", "--syntax-only", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config


def jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_one_database_host_has_the_jobs_it_always_had(runs: Outcomes) -> None:
    config = rendered(runs, "one-host", "default")
    assert list(jobs(config)) == ["pgstack", "node", "prometheus", "alertmanager"]
    text = (runs["one-host"][0] / "default.yml").read_text()
    assert "patroni" not in text
    assert "etcd" not in text


@pytest.mark.parametrize(
    ("case", "patroni_port", "etcd_port"), [("default", 8008, 2379), ("ports", 18008, 12379)]
)
def test_a_cluster_adds_patroni_and_etcd_on_each_member(
    runs: Outcomes, case: str, patroni_port: int, etcd_port: int
) -> None:
    found = jobs(rendered(runs, "ha", case))
    assert list(found)[:2] == ["pgstack", "node"]
    assert list(found)[-2:] == ["prometheus", "alertmanager"]
    members = {"patroni": ["pg1", "pg2"], "etcd": ["pg1", "pg2", "witness"]}
    ports = {"patroni": patroni_port, "etcd": etcd_port}
    assert list(found)[2:-2] == [
        f"{job}-{host}" for job, hosts in members.items() for host in hosts
    ]
    for job, hosts in members.items():
        for host in hosts:
            scrape = found[f"{job}-{host}"]
            # TLS verified against the pki CA for the member's inventory name; no credentials.
            assert scrape["scheme"] == "https"
            assert scrape["tls_config"] == {
                "ca_file": "/etc/pgstack/tls/ca.crt",
                "server_name": host,
            }
            assert "basic_auth" not in scrape
            (static,) = scrape["static_configs"]
            assert static == {
                "targets": [f"{HA[job if job == 'etcd' else 'postgres'][host]}:{ports[job]}"],
                "labels": {"instance": host, "job": job},
            }
    # The exporters' jobs are the one-host layout's, over the cluster's hosts: the witness too,
    # for its sentinel.
    pgstack = found["pgstack"]["static_configs"]
    assert [s["labels"]["instance"] for s in pgstack] == ["pg1", "pg2", "witness"]


def test_a_port_out_of_range_is_refused_naming_it(runs: Outcomes) -> None:
    out, outcomes = runs["ha"]
    assert outcomes["etcd-port-out-of-range"] != RENDERED
    assert "prometheus_etcd_port" in outcomes["etcd-port-out-of-range"]
    assert not (out / "etcd-port-out-of-range.yml").exists()


# --- scraped by Debian's Prometheus

# Patroni 4.0.7's /metrics as patroni/api.py (do_GET_metrics) writes it for a running primary:
# a line for each of the metrics the alert rules and dashboards read, and the one whose name is
# followed by a space before its labels.
PATRONI_METRICS = """\
# HELP patroni_version Patroni semver without periods.
# TYPE patroni_version gauge
patroni_version{{scope="pgstack",name="{name}"}} 040007
# HELP patroni_postgres_running Value is 1 if Postgres is running, 0 otherwise.
# TYPE patroni_postgres_running gauge
patroni_postgres_running{{scope="pgstack",name="{name}"}} 1
# HELP patroni_primary Value is 1 if this node is the leader, 0 otherwise.
# TYPE patroni_primary gauge
patroni_primary{{scope="pgstack",name="{name}"}} 1
# HELP patroni_xlog_location Current location of the Postgres transaction log, 0 if this node is not the leader.
# TYPE patroni_xlog_location counter
patroni_xlog_location{{scope="pgstack",name="{name}"}} 50331648
# HELP patroni_postgres_server_version Version of Postgres (if running), 0 otherwise.
# TYPE patroni_postgres_server_version gauge
patroni_postgres_server_version {{scope="pgstack",name="{name}"}} 170006
# HELP patroni_cluster_unlocked Value is 1 if the cluster is unlocked, 0 if locked.
# TYPE patroni_cluster_unlocked gauge
patroni_cluster_unlocked{{scope="pgstack",name="{name}"}} 0
# HELP patroni_failsafe_mode_is_active Value is 1 if failsafe mode is active, 0 if inactive.
# TYPE patroni_failsafe_mode_is_active gauge
patroni_failsafe_mode_is_active{{scope="pgstack",name="{name}"}} 0
"""  # noqa: E501 (Patroni's own line)


class _Patroni(http.server.ThreadingHTTPServer):
    body: bytes


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    server: _Patroni

    def do_GET(self) -> None:
        status = 200 if self.path == "/metrics" else 404
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextlib.contextmanager
def patroni(address: str, port: int, name: str, certificate: str, tls: Path) -> Iterator[None]:
    """Patroni's /metrics for member name on address:port, serving the certificate of
    tls/<certificate>.crt (its own name's, or another host's)."""
    server = _Patroni((address, port), _MetricsHandler)
    server.body = PATRONI_METRICS.format(name=name).encode()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls / f"{certificate}.crt", tls / f"{certificate}.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A TCP port free on every address (bound on the wildcard address)."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))  # noqa: S104 - a probe, closed at once
        return int(probe.getsockname()[1])


def enable_etcd_authentication(etcd: Any) -> None:
    """root with a password, then authentication on: a request without a token is refused."""
    for path, body in [
        ("auth/user/add", {"name": "root", "password": "root-" + "2" * 20}),
        ("auth/user/grant", {"user": "root", "role": "root"}),
        ("auth/enable", {}),
    ]:
        status, answer = etcd.call(path, body)
        assert status == 200, (path, answer)
    assert etcd.range("/service/")[0] != 200


@contextlib.contextmanager
def running_prometheus(config: Path, directory: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("needs Debian's prometheus (make test-deps)")
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()[-2000:]
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/-/ready", timeout=5) as ready,  # noqa: S310
            ):
                if ready.status == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def api(url: str, path: str, **query: str) -> Any:
    with urllib.request.urlopen(  # noqa: S310 (http:// to the test's Prometheus)
        f"{url}/api/v1/{path}?{urllib.parse.urlencode(query)}", timeout=10
    ) as answer:
        return json.load(answer)["data"]


def cluster_targets(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(job, instance) -> Prometheus' target, for jobs patroni and etcd."""
    return {
        (t["labels"]["job"], t["labels"]["instance"]): t
        for t in api(url, "targets", state="active")["activeTargets"]
        if t["labels"]["job"] in ("patroni", "etcd")
    }


def test_prometheus_scrapes_patroni_and_etcd_as_rendered(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("scraped")
    tls = tmp / "tls"
    tls.mkdir()
    ca = make_ca(tls, {"pg1": "127.0.0.2", "witness": "127.0.0.1"})
    (tmp / "etcd").mkdir()
    patroni_port = free_port()
    with running_etcd(tmp / "etcd", Pki(ca, tls / "witness.crt", tls / "witness.key")) as etcd:
        enable_etcd_authentication(etcd)
        etcd_port = int(etcd.endpoint.rsplit(":", 1)[1])
        case = {
            "prometheus_patroni_port": patroni_port,
            "prometheus_etcd_port": etcd_port,
            "prometheus_scrape_interval": "1s",
            "__prometheus_ca_file": str(ca),
        }
        out, outcomes = converge(LOCAL_HA, {"scraped": case}, tmp)
        assert outcomes["scraped"] == RENDERED, outcomes["scraped"]
        with (
            # pg2 serves pg1's certificate: not the name Prometheus verifies.
            patroni("127.0.0.2", patroni_port, "pg1", "pg1", tls),
            patroni("127.0.0.3", patroni_port, "pg2", "pg1", tls),
            running_prometheus(out / "scraped.yml", tmp) as url,
        ):
            deadline = time.monotonic() + 60
            while True:
                targets = cluster_targets(url)
                if len(targets) == 5 and all(t["health"] != "unknown" for t in targets.values()):
                    break
                assert time.monotonic() < deadline, targets
                time.sleep(0.5)
            health = {key: t["health"] for key, t in targets.items()}
            assert health == {
                ("patroni", "pg1"): "up",
                ("patroni", "pg2"): "down",
                ("etcd", "pg1"): "down",
                ("etcd", "pg2"): "down",
                ("etcd", "witness"): "up",
            }, {key: t["lastError"] for key, t in targets.items()}
            assert (
                "certificate is valid for pg1, not pg2" in targets[("patroni", "pg2")]["lastError"]
            )
            assert "connection refused" in targets[("etcd", "pg1")]["lastError"]
            primary = api(url, "query", query="patroni_primary")["result"]
            assert [(r["metric"], r["value"][1]) for r in primary] == [
                (
                    {"__name__": "patroni_primary", "instance": "pg1", "job": "patroni",
                     "name": "pg1", "scope": "pgstack"},
                    "1",
                )
            ]  # fmt: skip
            version = api(url, "query", query="patroni_postgres_server_version")["result"]
            assert [r["value"][1] for r in version] == ["170006"]
            leader = api(url, "query", query="etcd_server_has_leader")["result"]
            assert [(r["metric"]["instance"], r["value"][1]) for r in leader] == [("witness", "1")]
            changes = api(url, "query", query="etcd_server_leader_changes_seen_total")["result"]
            assert [r["metric"]["job"] for r in changes] == ["etcd"]

"""Malformed input is refused before any change, naming the variable: every case of every role.

The playbooks check a role's input with its argument spec and tasks/assert.yml (import_role,
tasks_from assert) before any role changes a host (playbooks/validate.yml first in site.yml, the
pre_tasks of each tier play). Here each role's cases run through exactly that, in ONE
ansible-playbook run per role: one block per case, the case's variables as block variables (they
replace the inventory's values entirely, like extra vars: a list replaces the whole list), a rescue
that reports the failed task's messages. The json callback gives each case's outcome and the run's
per-host change counts; a case passes when it failed, its messages name the variable, no host
changed in the run, and no password shows anywhere in the output. pre_migration.yml's label check
is the first task of that playbook, so its cases run the real playbook, one run each (seconds).
The same checks accept the lab's own inventory, so the cases fail because of their variables, not
because validation refuses everything: validate.yml is the first play of every site converge, and
test_site.py's second converge passes it and changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import LAB_INVENTORY
from helpers import assert_failed_before_any_change, failure_messages, parse_recap

from layout import inventory_groups, role_groups, role_hosts

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]

GOOD_PASSWORD = "e2e-valid-password-0123456789"
ACCEPTED = "pgstack-e2e: accepted"

# Where each role's cases run: the hosts its tier playbook applies it to (nothing changes there),
# from the layout the playbooks read (roles/preflight/vars/layout.yml) and the lab's inventory.
LAB_GROUPS = inventory_groups(LAB_INVENTORY / "hosts.yml")
HOSTS = {role: ":".join(role_hosts(role, LAB_GROUPS)) for role in role_groups()}


@dataclass(frozen=True)
class Case:
    role: str
    name: str
    bad: dict[str, Any]
    names: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return f"{self.role}-{self.name}"


def case(role: str, name: str, bad: dict[str, Any], *names: str) -> Case:
    """A case whose message must name each of names (by default the one variable it sets)."""
    return Case(role, name, bad, names or tuple(bad))


# postgresql (were tests/e2e/test_bad_inventory.py)
PG_DATABASES = [{"name": "app"}]
PG_MIGRATION = {
    "name": "app_migration",
    "kind": "migration",
    "database": "app",
    "password": GOOD_PASSWORD,
}
PG_APP = {"name": "app", "kind": "app", "database": "app", "password": GOOD_PASSWORD}

# pgbouncer (were tests/e2e/test_pgbouncer.py)
POOL5_ENTRY = {"name": "app_pool5", "dbname": "app"}

# app_env
APP_ENV_APP = {
    "name": "app",
    "database": "app",
    "user": "app",
    "password": GOOD_PASSWORD,
    "migration_password": GOOD_PASSWORD,
}

# redis (were tests/e2e/test_redis.py)
R_ADMIN = {"name": "admin", "kind": "admin", "password": GOOD_PASSWORD}
R_APP = {"name": "app", "kind": "app", "password": GOOD_PASSWORD}
R_MON = {"name": "monitoring", "kind": "monitoring", "password": GOOD_PASSWORD}

CASES: list[Case] = [
    case("postgresql", "port-not-a-number", {"postgresql_port": "abc"}),
    case("postgresql", "port-out-of-range", {"postgresql_port": 70000}),
    case(
        "postgresql",
        "user-without-password",
        {"postgresql_users": [PG_MIGRATION, {"name": "app", "kind": "app", "database": "app"}]},
    ),
    case(
        "postgresql",
        "unknown-user-kind",
        {"postgresql_users": [PG_MIGRATION, {**PG_APP, "kind": "superuser"}]},
    ),
    case(
        "postgresql",
        "user-database-not-declared",
        {
            "postgresql_databases": PG_DATABASES,
            "postgresql_users": [PG_MIGRATION, {**PG_APP, "database": "nope"}],
        },
        "postgresql_users",
    ),
    case(
        "postgresql",
        "two-migration-users",
        {"postgresql_users": [PG_MIGRATION, {**PG_MIGRATION, "name": "app_migration2"}, PG_APP]},
    ),
    case(
        "postgresql",
        "short-password",
        {"postgresql_users": [PG_MIGRATION, {**PG_APP, "password": "short"}]},
    ),
    case(
        "postgresql",
        "hba-network-not-cidr",
        {"postgresql_hba_networks": ["10.0.0.0/8", "not-a-network"]},
    ),
    case(
        "postgresql",
        "hba-networks-not-a-list",
        {"postgresql_hba_networks": {"net": "10.0.0.0/8"}},
    ),
    case("postgresql", "memory-zero", {"postgresql_memory_mb": 0}),
    case(
        "postgresql",
        "tls-version-unknown",
        {"postgresql_ssl_min_protocol_version": "SSLv3"},
    ),
    # app: 80 + 5, app_pool5: 5 + 0, auth: 2 x 3 -> 96 > 100 - 3 - 15
    case(
        "pgbouncer",
        "pool-guard",
        {"pgbouncer_default_pool_size": 80},
        "Pool guard",
        "pgbouncer_postgresql_max_connections",
        "pgbouncer_default_pool_size",
    ),
    case("pgbouncer", "default-pool-size-text", {"pgbouncer_default_pool_size": "many"}),
    case("pgbouncer", "default-pool-size-zero", {"pgbouncer_default_pool_size": 0}),
    case("pgbouncer", "reserve-negative", {"pgbouncer_reserve_pool_size": -1}),
    case("pgbouncer", "max-client-conn-zero", {"pgbouncer_max_client_conn": 0}),
    case("pgbouncer", "query-wait-timeout-negative", {"pgbouncer_query_wait_timeout": -5}),
    case("pgbouncer", "pool-mode-unknown", {"pgbouncer_pool_mode": "sometimes"}),
    case("pgbouncer", "prepared-statements-negative", {"pgbouncer_max_prepared_statements": -1}),
    case("pgbouncer", "auth-dbname-template", {"pgbouncer_auth_dbname": "template0"}),
    case("pgbouncer", "auth-dbname-not-an-identifier", {"pgbouncer_auth_dbname": "Postgres"}),
    case("pgbouncer", "listen-port-out-of-range", {"pgbouncer_listen_port": 70000}),
    case(
        "pgbouncer",
        "database-pool-size-text",
        {"pgbouncer_databases": [{**POOL5_ENTRY, "pool_size": "five"}]},
    ),
    case(
        "pgbouncer",
        "database-pool-size-negative",
        {"pgbouncer_databases": [{**POOL5_ENTRY, "pool_size": -5}]},
    ),
    case(
        "pgbouncer",
        "database-name-not-an-identifier",
        {"pgbouncer_databases": [{"name": "App-DB"}]},
    ),
    case("pgbouncer", "settings-override-managed", {"pgbouncer_settings": {"auth_type": "trust"}}),
    case("redis", "tls-mode-unknown", {"redis_tls_auth_clients": "sometimes"}),
    case("redis", "tls-mode-unquoted-yes", {"redis_tls_auth_clients": True}),
    case("redis", "maxmemory-negative", {"redis_maxmemory_mb": -1}),
    case("redis", "maxmemory-percent-zero", {"redis_maxmemory_percent": 0}),
    case(
        "redis",
        "key-pattern-with-space",
        {"redis_users": [R_ADMIN, {**R_APP, "key_patterns": ["session:* ~*"]}, R_MON]},
    ),
    case(
        "redis",
        "key-pattern-acl-syntax",
        {"redis_users": [R_ADMIN, {**R_APP, "key_patterns": ["~*"]}, R_MON]},
    ),
    case(
        "redis",
        "command-rule-malformed",
        {"redis_users": [R_ADMIN, {**R_APP, "commands": ["+@all", "allkeys"]}, R_MON]},
    ),
    case("redis", "no-admin", {"redis_users": [R_APP, R_MON]}),
    case("redis", "unknown-kind", {"redis_users": [R_ADMIN, {**R_APP, "kind": "root"}]}),
    case("redis", "short-password", {"redis_users": [R_ADMIN, {**R_APP, "password": "short"}]}),
    case("redis", "port-out-of-range", {"redis_port": 70000}),
    case("redis", "tls-version-unknown", {"redis_tls_protocols": ["TLSv1.1"]}),
    case("redis", "rdb-save-malformed", {"redis_rdb_save": ["every hour"]}),
    case("redis", "settings-override-port", {"redis_settings": {"port": 6380}}),
    # backup (were tests/e2e/test_backup.py)
    case("pgbackrest", "full-schedule", {"pgbackrest_full_schedule": "every tuesday"}),
    case("pgbackrest", "verify-schedule", {"pgbackrest_verify_schedule": "Sun 25:00"}),
    case("pgbackrest", "retention-full", {"pgbackrest_retention_full": 0}),
    case("pgbackrest", "archive-timeout", {"pgbackrest_archive_timeout": 0}),
    case("pgbackrest", "cipher-passphrase", {"pgbackrest_cipher_passphrase": "short"}),
    case("pg_dump", "schedule", {"pg_dump_schedule": "daily at 3"}),
    case("pg_dump", "retention-min-count", {"pg_dump_retention_min_count": 0}),
    case("pg_dump", "retention-days", {"pg_dump_retention_days": -1}),
    case("pg_dump", "compress-level", {"pg_dump_compress_level": 12}),
    # Cases a run per case made too dear before
    case("pki", "ca-mode-unknown", {"pki_ca_mode": "vault"}),
    case("pki", "renew-window-beyond-lifetime", {"pki_renew_before_days": 400}),
    case("pki", "extra-san-without-kind", {"pki_server_extra_sans": ["db.example.org"]}),
    case("pki", "client-name-upper-case", {"pki_client_certificates": [{"name": "Redis-App"}]}),
    case("pki", "ca-passphrase-placeholder", {"pki_ca_passphrase": "CHANGE_ME_CHANGE_ME"}),
    case("postgresql", "settings-override-ssl", {"postgresql_settings": {"ssl": False}}),
    case("postgresql", "database-reserved", {"postgresql_databases": [{"name": "template1"}]}),
    case("postgresql", "port-written-with-underscore", {"postgresql_port": "5_432"}),
    case(
        "pgbouncer",
        "auth-password-placeholder",
        {"pgbouncer_auth_password": "CHANGE_ME_0123456789"},
    ),
    case(
        "pgbouncer", "auth-password-two-lines", {"pgbouncer_auth_password": f"{GOOD_PASSWORD}\nx"}
    ),
    case("pgbouncer", "listen-port-written-with-underscore", {"pgbouncer_listen_port": "6_432"}),
    case("redis", "maxclients-written-with-underscore", {"redis_maxclients": "1_000"}),
    case("redis", "aof-fsync-unquoted-no", {"redis_aof_fsync": False}),
    case("redis", "tls-protocols-empty", {"redis_tls_protocols": []}),
    case(
        "pgbackrest",
        "diff-schedule-two-lines",
        {"pgbackrest_diff_schedule": "daily\nExecStartPre=/bin/true"},
    ),
    case("pgbackrest", "tls-port-zero", {"pgbackrest_tls_port": 0}),
    case(
        "pgbackrest",
        "s3-key-placeholder",
        {
            "pgbackrest_s3_repo": {
                "bucket": "b",
                "endpoint": "s3.example.com",
                "region": "eu-west-1",
                "key": "CHANGE_ME",
                "key_secret": GOOD_PASSWORD,
            }
        },
        "pgbackrest_s3_repo.key",
    ),
    case("pg_dump", "password-placeholder", {"pg_dump_password": "example-0123456789abcdef"}),
    case("pg_dump", "database-not-an-identifier", {"pg_dump_databases": ["App"]}),
    case("restore_drill", "schedule", {"restore_drill_schedule": "quarterly at 6"}),
    case(
        "restore_drill",
        "schedule-two-lines",
        {"restore_drill_schedule": "*-01,04,07,10-01 06:00:00\nExecStartPre=/bin/true"},
    ),
    case("restore_drill", "rto-objective-zero", {"restore_drill_rto_objective_seconds": 0}),
    case("restore_drill", "rto-objective-text", {"restore_drill_rto_objective_seconds": "1h"}),
    case("restore_drill", "rpo-objective-negative", {"restore_drill_rpo_objective_seconds": -300}),
    case(
        "restore_drill",
        "rpo-objective-written-with-underscore",
        {"restore_drill_rpo_objective_seconds": "3_00"},
    ),
    case("restore_drill", "timeout-zero", {"restore_drill_timeout_minutes": 0}),
    case("restore_drill", "port-out-of-range", {"restore_drill_port": 70000}),
    case("restore_drill", "scratch-dir-relative", {"restore_drill_scratch_dir": "drills/scratch"}),
    case("restore_drill", "database-not-an-identifier", {"restore_drill_databases": ["App"]}),
    case("restore_drill", "stanza-with-space", {"restore_drill_stanza": "main db"}),
    case(
        "restore_drill",
        "heartbeat-password-placeholder",
        {"restore_drill_heartbeat_password": "CHANGE_ME_0123456789"},
    ),
    case(
        "restore_drill", "heartbeat-password-short", {"restore_drill_heartbeat_password": "short"}
    ),
    case("restore_drill", "heartbeat-running-text", {"restore_drill_heartbeat_running": "maybe"}),
    case("node_exporter", "port-out-of-range", {"node_exporter_port": 70000}),
    case("node_exporter", "port-of-pgstack-exporter", {"node_exporter_port": 9716}),
    case(
        "node_exporter",
        "listen-address-with-port",
        {"node_exporter_listen_address": "0.0.0.0:9100"},
    ),
    case(
        "node_exporter",
        "scrape-password-placeholder",
        {"node_exporter_scrape_password": "CHANGE_ME_0123456789"},
    ),
    case("exporter", "scrape-password-short", {"exporter_scrape_password": "short"}),
    case("exporter", "scrape-user-with-colon", {"exporter_scrape_user": "prom:etheus"}),
    case("prometheus", "operator-password-empty", {"prometheus_operator_password": ""}),
    case(
        "prometheus",
        "operator-is-the-scrape-user",
        {"prometheus_operator_user": "prometheus"},
        "prometheus_operator_user",
    ),
    case("grafana", "prometheus-url-without-scheme", {"grafana_prometheus_url": "mon1:9090"}),
    case("grafana", "dashboards-dir-relative", {"grafana_dashboards_dir": "dashboards"}),
    case("app_env", "database-host-not-a-name", {"app_env_database_host": "db 1"}),
    case("app_env", "pgbouncer-port-zero", {"app_env_pgbouncer_port": 0}),
    case("app_env", "redis-port-out-of-range", {"app_env_redis_port": 70000}),
    case(
        "app_env",
        "database-not-an-identifier",
        {"app_env_applications": [{**APP_ENV_APP, "database": "App"}]},
        "app_env_applications",
    ),
    case(
        "app_env",
        "application-without-password",
        {"app_env_applications": [{k: v for k, v in APP_ENV_APP.items() if k != "password"}]},
        "app_env_applications",
    ),
    case(
        "app_env",
        "redis-user-without-password",
        {"app_env_applications": [{**APP_ENV_APP, "redis_user": "app"}]},
        "app_env_applications",
    ),
    case(
        "app_env",
        "two-applications-one-role",
        {"app_env_applications": [APP_ENV_APP, {**APP_ENV_APP, "name": "other", "owner": "other"}]},
        "app_env_applications",
    ),
    case(
        "app_env",
        "unknown-field",
        {"app_env_applications": [{**APP_ENV_APP, "passwd": GOOD_PASSWORD}]},
        "app_env_applications",
    ),
]


def run_role_cases(role: str, cases: list[Case], tmp: Path) -> ValidationRun:
    """One ansible-playbook run over all cases of a role; the json callback's document back."""
    tasks = []
    for one in cases:
        tasks.append({
            "name": f"case {one.id}",
            "vars": one.bad,
            "block": [
                {"name": f"Validate ({one.id})",
                 "ansible.builtin.import_role": {"name": role, "tasks_from": "assert"}},
                {"name": f"outcome {one.id}", "ansible.builtin.debug": {"msg": ACCEPTED}},
            ],
            "rescue": [
                {"name": f"outcome {one.id}",
                 "ansible.builtin.debug": {"msg": (
                     "{{ [ansible_failed_result.msg | default('')] + (ansible_failed_result.results"
                     " | default([]) | selectattr('failed', 'defined') | selectattr('failed')"
                     " | map(attribute='msg') | list) }}")}},
            ],
        })  # fmt: skip
    playbook = tmp / f"validate-{role}.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": f"e2e | {role}: {len(cases)} malformed-input cases",
                    "hosts": HOSTS[role],
                    "become": True,
                    "tasks": tasks,
                }
            ],
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return ValidationRun(
        ansible_playbook(str(playbook), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    )


def ansible_playbook(playbook: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook from this venv on the lab inventory, run in the repository (ansible.cfg)."""
    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        str(LAB_INVENTORY),
        playbook,
        *args,
    ]
    return subprocess.run(
        argv,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", **env},
        check=False,
        timeout=1200,
    )


@dataclass(frozen=True)
class ValidationRun:
    result: subprocess.CompletedProcess[str]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    def document(self) -> dict[str, Any]:
        assert self.result.returncode == 0, f"the run itself failed:\n{self.output[-5000:]}"
        data: dict[str, Any] = json.loads(self.result.stdout)
        return data

    def recap(self) -> dict[str, dict[str, int]]:
        stats: dict[str, dict[str, int]] = self.document()["stats"]
        return stats

    def failure(self, one: Case) -> str | None:
        """The case's messages from every host it failed on; None when every host accepted it."""
        outcomes = [
            host_result
            for play in self.document()["plays"]
            for task in play["tasks"]
            if task["task"]["name"] == f"outcome {one.id}"
            for host_result in task["hosts"].values()
        ]
        assert outcomes, f"no outcome for {one.id}:\n{self.output[-3000:]}"
        refusals = [result["msg"] for result in outcomes if result["msg"] != ACCEPTED]
        if not refusals:
            return None
        return "\n".join(message for messages in refusals for message in messages)


@pytest.fixture(scope="module")
def validation_runs(
    tmp_path_factory: pytest.TempPathFactory, lab_dir: Path
) -> Callable[[str], ValidationRun]:
    """Each role's cases run once, on first use (so `-k redis` runs only the redis run)."""
    runs: dict[str, ValidationRun] = {}
    tmp = tmp_path_factory.mktemp("validation")

    def get(role: str) -> ValidationRun:
        if role not in runs:
            runs[role] = run_role_cases(role, [c for c in CASES if c.role == role], tmp)
        return runs[role]

    return get


@pytest.fixture(scope="module")
def lab_secrets(lab_dir: Path) -> list[str]:
    """The lab's generated secrets: none may show in any validation output."""
    return [p.read_text().strip() for p in sorted((lab_dir / "secrets").iterdir()) if p.is_file()]


@pytest.mark.parametrize("one", CASES, ids=[c.id for c in CASES])
def test_malformed_input_fails_before_any_change(
    validation_runs: Callable[[str], ValidationRun], lab_secrets: list[str], one: Case
) -> None:
    run = validation_runs(one.role)
    assert_failed_before_any_change(
        run.failure(one), run.recap(), run.output, *one.names, hidden=[GOOD_PASSWORD, *lab_secrets]
    )


def test_site_stops_before_any_tier_play_on_bad_input() -> None:
    """A bad variable of the last tier stops site.yml in validate.yml: no tier play starts on any
    host. (--check as well, so that a regression here can never converge the lab.)"""
    result = ansible_playbook("playbooks/site.yml", "--check", "-e", "pg_dump_compress_level=12")
    output = result.stdout + result.stderr
    plays = [line for line in result.stdout.splitlines() if line.startswith("PLAY [")]
    assert plays == [line for line in plays if line.startswith("PLAY [validate |")], plays
    failure = failure_messages(output) if result.returncode != 0 else None
    recap = parse_recap(result.stdout)
    assert_failed_before_any_change(failure, recap, output, "pg_dump_compress_level")


# pre_migration.yml: the label names a restore point (at most 63 bytes) and ends a dump's name.
BAD_LABELS = ["", "Bad Label", "x" * 64, "-leading-dash", "a/b"]


@pytest.mark.parametrize("label", BAD_LABELS, ids=lambda label: repr(label)[:20])
def test_pre_migration_refuses_a_bad_label_before_any_change(
    ansible_playbook: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, label: str
) -> None:
    extra = tmp_path / "label.yml"
    extra.write_text(yaml.safe_dump({"label": label}), encoding="utf-8")
    result = ansible_playbook(playbook="playbooks/pre_migration.yml", extra_vars_file=extra)
    output = result.stdout + result.stderr
    failure = failure_messages(output) if result.returncode != 0 else None
    assert_failed_before_any_change(
        failure, parse_recap(result.stdout), output, "label must be given"
    )

"""What a converged lab offers a new user: endpoints, env files and how to try them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# The ports each inventory group serves (docs/postgresql.md, pgbouncer.md, redis.md, backup.md).
GROUP_ENDPOINTS = {
    "postgres": ("PostgreSQL", "5432", "TLS, scram-sha-256; migrations (DIRECT_DATABASE_URL)"),
    "pgbouncer": ("PgBouncer", "6432", "TLS, transaction pooling (DATABASE_URL)"),
    "redis": ("Redis", "6379", "TLS only, rediss:// (REDIS_URL)"),
    "backup": ("pgBackRest", "8432", "TLS server of the backup repository"),
}


def _groups(inventory: Any) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name, group in (inventory.get("all", {}).get("children") or {}).items():
        groups[name] = sorted((group or {}).get("hosts") or {})
    return groups


def _env_files(app_vars: Path) -> list[tuple[str, str]]:
    """(OS user, env file path) of each application in the app group's app_env_applications."""
    if not app_vars.is_file():
        return []
    data = yaml.safe_load(app_vars.read_text(encoding="utf-8")) or {}
    apps = data.get("app_env_applications") or []
    return [
        (
            str(app.get("owner") or app["name"]),
            str(app.get("path") or f"/etc/pgstack/{app['name']}.env"),
        )
        for app in apps
    ]


def render(inventory_file: Path) -> str:
    inventory = yaml.safe_load(inventory_file.read_text(encoding="utf-8")) or {}
    domain = inventory.get("all", {}).get("vars", {}).get("lab_domain", "")
    groups = _groups(inventory)
    lines = ["The lab is converged. Endpoints (host names resolve on the lab hosts, not here):"]
    for group, (service, port, what) in GROUP_ENDPOINTS.items():
        for host in groups.get(group, []):
            lines.append(f"  {service:<11} {host}.{domain}:{port:<5} {what}")
    app_hosts = groups.get("app", [])
    env_files = _env_files(inventory_file.parent / "group_vars/app/main.yml")
    if app_hosts and env_files:
        lines.append("Env files of the applications (one per application, mode 0600):")
        for host in app_hosts:
            for user, path in env_files:
                lines.append(f"  {host}:{path}  (read by OS user {user})")
        first = env_files[0][0]
        lines += [
            "Try them: a shell on the application host as that user, its env file loaded:",
            f"  make app-shell APP={first}",
            '  then:  psql "$DATABASE_URL"',
            '         redis-cli -u "$REDIS_URL" --cacert "$REDIS_CA_FILE" ping',
        ]
    lines.append("Root shell on any host: .venv/bin/pgstack-lab ssh HOST   (docs/lab.md)")
    return "\n".join(lines)

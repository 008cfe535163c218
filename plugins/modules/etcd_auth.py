#!/usr/bin/python
"""etcd_auth: an etcd v3 cluster's authentication made to match the inventory, over etcd's JSON
gateway (/v3/...) with the standard library only, so that it runs on a host's own Python."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any, NamedTuple

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

DOCUMENTATION = r"""
---
module: etcd_auth
short_description: Make an etcd v3 cluster's users, roles and authentication match the inventory
version_added: 0.1.0
description:
  - Talks to etcd's v3 JSON gateway (C(/v3/...)) over HTTPS, with Python's standard library only.
  - When authentication is off, creates the C(root) user (or sets its password) with the C(root)
    role, then the listed users and their roles, and enables authentication last, so that a run
    stopped midway leaves authentication off and the next run completes it.
  - When authentication is on, works as C(root). A refused root password fails the task before
    anything changes.
  - Each listed user gets a role of the same name holding exactly one permission,
    O(users[].permission) on the keys that start with O(users[].prefix) (the range
    C(etcdctl --prefix) grants). A user's password is checked by authenticating as that user and
    changed when etcd refuses it.
  - Users and roles that are not listed are left alone; the users among them are returned in
    RV(unmanaged_users).
  - Tested against etcd 3.4 (Debian 12) and written for 3.5 (Debian 13). etcd 3.4 has no
    C(/v3/auth/status), so whether authentication is on is read from etcd's answer to
    authenticating as C(root), the same on both.
author:
  - pgstack
options:
  endpoint:
    description:
      - The client URL of one etcd member, C(https://).
    type: str
    required: true
  ca_file:
    description:
      - The CA certificate the member's server certificate is verified against (its name too).
    type: path
    required: true
  client_cert:
    description:
      - A client certificate, for a member that requires one (C(--client-cert-auth)).
      - Its subject must have no common name once authentication is on; etcd 3.5 refuses gateway
        requests that come with one.
    type: path
  client_key:
    description:
      - The key of O(client_cert).
    type: path
  root_password:
    description:
      - The password of etcd's C(root) user.
    type: str
    required: true
  users:
    description:
      - The users to converge, each with a role of its own name.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The user's name and its role's name; not C(root).
        type: str
        required: true
      password:
        description:
          - The user's password.
        type: str
        required: true
      prefix:
        description:
          - The key prefix the role grants, such as C(/service/); not empty.
        type: str
        required: true
      permission:
        description:
          - What the role grants on the keys under O(users[].prefix).
        type: str
        choices: [read, write, readwrite]
        default: readwrite
  timeout:
    description:
      - Seconds each request to etcd may take.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    description: Reports what would change; reads the cluster and changes nothing.
  diff_mode:
    support: none
    description: Reports its changes in RV(actions), not as a diff.
  platform:
    platforms: posix
    description: Runs where its task runs and needs that host to reach O(endpoint).
notes:
  - The members of a cluster share its users and roles, so run the task once per cluster
    (C(run_once)), against one member.
  - A user's password is never returned or logged; RV(actions) names what changed only.
  - While authentication is off, a listed user's password cannot be checked, so it is set.
"""

EXAMPLES = r"""
- name: Converge etcd's authentication
  pgstack.pgstack.etcd_auth:
    endpoint: https://127.0.0.1:2379
    ca_file: /etc/etcd/tls/ca.crt
    root_password: "{{ etcd_root_password }}"
    users:
      - name: patroni
        password: "{{ etcd_patroni_password }}"
        prefix: /service/
      - name: monitor
        password: "{{ etcd_monitor_password }}"
        prefix: /service/
        permission: read
  run_once: true
  register: __etcd_auth_result
"""

RETURN = r"""
actions:
  description: What changed (or would change, in check mode), in order; never a password.
  returned: always
  type: list
  elements: str
  sample: ["user root created", "role patroni created", "authentication enabled"]
unmanaged_users:
  description: The users etcd has that are neither C(root) nor listed in O(users); left alone.
  returned: always
  type: list
  elements: str
  sample: ["legacy_app"]
"""

PERMISSIONS = {"read": "READ", "write": "WRITE", "readwrite": "READWRITE"}
# etcd's messages (etcdserver: ...) for the two answers to authenticating that are not errors.
AUTH_NOT_ENABLED = "authentication is not enabled"
AUTH_FAILED = "authentication failed"


class Permission(NamedTuple):
    """A permission of a role: its type as etcd names it (READ, WRITE, READWRITE) on the keys
    from key up to range_end (excluded)."""

    kind: str
    key: bytes
    range_end: bytes

    def __str__(self) -> str:
        key, end = (part.decode(errors="backslashreplace") for part in (self.key, self.range_end))
        return f"{self.kind.lower()} on [{key}, {end})"


def prefix_range_end(prefix: bytes) -> bytes:
    """The end of the range of keys that start with prefix, as etcd's clients compute it for
    --prefix: the last byte below 0xff incremented, what follows it dropped; when every byte is
    0xff, b"\\x00", which etcd reads as every key from prefix on."""
    kept = prefix.rstrip(b"\xff")
    if not kept:
        return b"\x00"
    return kept[:-1] + bytes([kept[-1] + 1])


def wanted_permission(user: dict[str, Any]) -> Permission:
    prefix = user["prefix"].encode()
    return Permission(PERMISSIONS[user["permission"]], prefix, prefix_range_end(prefix))


def permission_from_etcd(perm: dict[str, Any]) -> Permission:
    """A permission as role/get returns it: the gateway leaves out a field at its default value,
    so a READ permission (0) has no permType and a single key no range_end."""
    return Permission(
        perm.get("permType", "READ"),
        base64.b64decode(perm.get("key", "")),
        base64.b64decode(perm.get("range_end", "")),
    )


def permission_changes(held: list[Permission], wanted: Permission) -> tuple[bool, list[Permission]]:
    """Whether wanted must be granted, and which permissions to revoke, for a role to hold wanted
    alone. etcd keeps one permission per key range (a grant on a range the role holds replaces
    its type), so only the permissions on other ranges are revoked."""
    revoke = [p for p in held if (p.key, p.range_end) != (wanted.key, wanted.range_end)]
    return wanted not in held, revoke


def users_problem(users: list[dict[str, Any]]) -> str | None:
    """What the argument spec cannot say about users, or None."""
    names = [user["name"] for user in users]
    for user in users:
        if user["name"] == "root":
            return "users: root is etcd's own user, set by root_password: it cannot be listed"
        if names.count(user["name"]) > 1:
            return f"users: {user['name']} is listed twice"
        if not user["prefix"]:
            return f"users: {user['name']} has an empty prefix (that would be every key)"
    return None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class EtcdError(Exception):
    """A request etcd refused (message is etcd's own), or one that did not reach it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.message = message


class Etcd:
    """etcd's JSON gateway at endpoint: every call a POST to /v3/<path>, with the token of the
    user it authenticated as once there is one."""

    def __init__(self, endpoint: str, context: ssl.SSLContext, timeout: int) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.context = context
        self.timeout = timeout
        self.token: str | None = None

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 (main() admits https:// only)
            f"{self.endpoint}/v3/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        if self.token is not None:
            request.add_header("Authorization", self.token)
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self.timeout, context=self.context
            ) as response:
                answer: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as error:
            raise EtcdError(path, _refusal(error)) from None
        except urllib.error.URLError as error:  # refused, unresolved, TLS, timeout
            raise EtcdError(path, str(error.reason)) from None
        except (OSError, ValueError) as error:  # a timeout or a reset mid-answer, not JSON
            raise EtcdError(path, str(error)) from None
        return answer


def _refusal(error: urllib.error.HTTPError) -> str:
    """etcd's message from an error answer ({"error", "message", "code"}), else its status."""
    try:
        return str(json.load(error)["message"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"HTTP {error.code} {error.reason}"


def tls_context(ca_file: str, client_cert: str | None, client_key: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if client_cert is not None:
        context.load_cert_chain(client_cert, client_key)
    return context


def authenticate(etcd: Etcd, name: str, password: str) -> str | None:
    """A token for name, or None when etcd refuses the password."""
    try:
        return str(etcd.call("auth/authenticate", {"name": name, "password": password})["token"])
    except EtcdError as error:
        if AUTH_FAILED in error.message:
            return None
        raise


class RootRefused(Exception):
    """Authentication is on and etcd refuses the root password (etcd's message)."""


def root_token(etcd: Etcd, password: str) -> str | None:
    """root's token when authentication is on, None when it is off."""
    try:
        return str(etcd.call("auth/authenticate", {"name": "root", "password": password})["token"])
    except EtcdError as error:
        if AUTH_NOT_ENABLED in error.message:
            return None
        if AUTH_FAILED in error.message:
            raise RootRefused(error.message) from None
        raise


def user_names(etcd: Etcd) -> list[str]:
    return list(etcd.call("auth/user/list", {}).get("users", []))


def role_names(etcd: Etcd) -> list[str]:
    return list(etcd.call("auth/role/list", {}).get("roles", []))


def user_roles(etcd: Etcd, name: str) -> list[str]:
    return list(etcd.call("auth/user/get", {"name": name}).get("roles", []))


def role_permissions(etcd: Etcd, name: str) -> list[Permission]:
    answer = etcd.call("auth/role/get", {"role": name})
    return [permission_from_etcd(perm) for perm in answer.get("perm", [])]


class Converge:
    """The changes of one run: each recorded as an action, and made unless in check mode."""

    def __init__(self, etcd: Etcd, check_mode: bool) -> None:
        self.etcd = etcd
        self.check_mode = check_mode
        self.actions: list[str] = []

    def change(self, action: str, path: str, body: dict[str, Any]) -> None:
        self.actions.append(action)
        if not self.check_mode:
            self.etcd.call(path, body)

    def user(self, user: dict[str, Any], users: list[str], roles: list[str], enabled: bool) -> None:
        name, password = user["name"], user["password"]
        wanted = wanted_permission(user)
        held: list[Permission] = []
        if name in roles:
            held = role_permissions(self.etcd, name)
        else:
            self.change(f"role {name} created", "auth/role/add", {"name": name})
        grant, revoke = permission_changes(held, wanted)
        if grant:
            perm = {
                "permType": wanted.kind,
                "key": b64(wanted.key),
                "range_end": b64(wanted.range_end),
            }
            self.change(
                f"role {name} granted {wanted}", "auth/role/grant", {"name": name, "perm": perm}
            )
        for old in revoke:
            body = {"role": name, "key": b64(old.key), "range_end": b64(old.range_end)}
            self.change(f"role {name} revoked {old}", "auth/role/revoke", body)
        granted: list[str] = []
        if name in users:
            granted = user_roles(self.etcd, name)
            # With authentication off, etcd checks no password: set it.
            if not enabled or authenticate(self.etcd, name, password) is None:
                body = {"name": name, "password": password}
                self.change(f"password of {name} changed", "auth/user/changepw", body)
        else:
            body = {"name": name, "password": password}
            self.change(f"user {name} created", "auth/user/add", body)
        if name not in granted:
            body = {"user": name, "role": name}
            self.change(f"role {name} granted to user {name}", "auth/user/grant", body)


def converge(
    etcd: Etcd, root_password: str, users: list[dict[str, Any]], check_mode: bool
) -> dict[str, Any]:
    """The run's result: changed, actions, unmanaged_users."""
    etcd.token = root_token(etcd, root_password)
    enabled = etcd.token is not None
    run = Converge(etcd, check_mode)
    existing_users, existing_roles = user_names(etcd), role_names(etcd)
    if not enabled:
        body = {"name": "root", "password": root_password}
        if "root" in existing_users:
            run.change("password of root changed", "auth/user/changepw", body)
        else:
            run.change("user root created", "auth/user/add", body)
        if "root" not in existing_users or "root" not in user_roles(etcd, "root"):
            body = {"user": "root", "role": "root"}
            run.change("role root granted to user root", "auth/user/grant", body)
    for user in users:
        run.user(user, existing_users, existing_roles, enabled)
    if not enabled:
        run.change("authentication enabled", "auth/enable", {})
    listed = {user["name"] for user in users} | {"root"}
    return {
        "changed": bool(run.actions),
        "actions": run.actions,
        "unmanaged_users": sorted(set(existing_users) - listed),
    }


def main() -> None:
    user_options = {
        "name": {"type": "str", "required": True},
        "password": {"type": "str", "required": True, "no_log": True},
        "prefix": {"type": "str", "required": True, "no_log": False},
        "permission": {"type": "str", "choices": list(PERMISSIONS), "default": "readwrite"},
    }
    module = AnsibleModule(
        argument_spec={
            "endpoint": {"type": "str", "required": True},
            "ca_file": {"type": "path", "required": True},
            "client_cert": {"type": "path"},
            "client_key": {"type": "path", "no_log": False},
            "root_password": {"type": "str", "required": True, "no_log": True},
            "users": {"type": "list", "elements": "dict", "default": [], "options": user_options},
            "timeout": {"type": "int", "default": 10},
        },
        required_together=[("client_cert", "client_key")],
        supports_check_mode=True,
    )
    params = module.params
    endpoint = params["endpoint"]
    if not endpoint.startswith("https://"):
        module.fail_json(msg=f"endpoint must be an https:// URL, got {endpoint}")
    problem = users_problem(params["users"])
    if problem is not None:
        module.fail_json(msg=problem)
    try:
        context = tls_context(params["ca_file"], params["client_cert"], params["client_key"])
    except OSError as error:  # unreadable, or not PEM (ssl.SSLError)
        module.fail_json(
            msg=f"etcd_auth: cannot load the TLS files (ca_file, client_cert): {error}"
        )
    etcd = Etcd(endpoint, context, params["timeout"])
    try:
        result = converge(etcd, params["root_password"], params["users"], module.check_mode)
    except RootRefused as error:
        module.fail_json(
            msg=f"etcd at {endpoint} has authentication on and refuses the root password given "
            f"(etcd_root_password): {error}"
        )
    except EtcdError as error:
        module.fail_json(msg=f"etcd at {endpoint}: {error}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

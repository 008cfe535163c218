"""Section "converge": what a converge costs, with the project's strategy and Ansible's stock one.

1. The whole site on the lab, converged already (default run only): a re-run that changes nothing
   and ``--check --diff``, with ``pgstack_linear`` (ansible.cfg: the linear strategy over Mitogen).
   The re-run is profiled by role (``ansible.posix.profile_roles``) and by task.
2. The database tier (``pki.yml``, ``postgresql.yml``, ``pgbouncer.yml``, ``redis.yml`` in one
   ``ansible-playbook`` run) on 1, 3 and 6 hosts made for the bench only (``bench-db1`` ...,
   10.77.41.61 and up, removed at the end; quick: 1 host): a fresh converge, then its re-run, so
   the growth with the number of hosts shows. On one host (default run only) the re-run runs
   again with Ansible's stock ``linear`` strategy (``ANSIBLE_STRATEGY=linear``), for the share of
   the strategy.

Every re-run and check must report ``changed=0``; a run that does not is reported as such.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pgstack_bench.lab import BenchLab
from pgstack_bench.model import Cell, Curve, Section, SectionResult, Table

log = logging.getLogger(__name__)

SITE = "playbooks/site.yml"
TIER = (
    "playbooks/pki.yml",
    "playbooks/postgresql.yml",
    "playbooks/pgbouncer.yml",
    "playbooks/redis.yml",
)
SIZES = (1, 3, 6)
QUICK_SIZES = (1,)
FIRST_ADDRESS = 61  # bench hosts: 10.77.41.61 and up (molecule uses .30-.59)
STOCK = "linear"
PROJECT = "pgstack_linear"

_RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)"
    r"\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.M,
)
_PROFILE_LINE = re.compile(r"^(?P<name>.+?) -{2,} (?P<seconds>\d+\.\d+)s$")


@dataclass(frozen=True)
class Run:
    playbook: str
    strategy: str
    check: bool
    seconds: float
    ok: int
    changed: int
    failed: int
    roles: tuple[tuple[str, float], ...]
    tasks: tuple[tuple[str, float], ...]


def parse_recap(output: str) -> tuple[int, int, int]:
    """(ok, changed, failed + unreachable) summed over the hosts of the last PLAY RECAP."""
    tail = output.rsplit("PLAY RECAP", 1)[-1]
    ok = changed = failed = 0
    for match in _RECAP.finditer(tail):
        ok += int(match["ok"])
        changed += int(match["changed"])
        failed += int(match["failed"]) + int(match["unreachable"])
    return ok, changed, failed


def parse_profile(output: str, heading: str) -> tuple[tuple[str, float], ...]:
    """The lines of a profile_roles ("ROLES RECAP") or profile_tasks ("TASKS RECAP") summary."""
    if heading not in output:
        return ()
    block = output.split(heading, 1)[1]
    rows: list[tuple[str, float]] = []
    for line in block.splitlines()[1:]:
        if line.startswith(("PLAY", "TASKS RECAP", "ROLES RECAP")):
            break
        match = _PROFILE_LINE.match(line.strip())
        if match and match["name"] != "total":
            rows.append((match["name"], float(match["seconds"])))
    return tuple(rows)


def _playbook(
    lab: BenchLab, inventory: Path, playbooks: Sequence[str], *, strategy: str, check: bool
) -> Run:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(lab.repo / "ansible.cfg"),
        ANSIBLE_STRATEGY=strategy,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_roles,ansible.posix.profile_tasks",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="15",
    )
    # One ansible-playbook for all the playbooks, as an operator runs a tier: one start-up, and
    # facts gathered once per host for the whole run.
    argv = [str(lab.repo / ".venv/bin/ansible-playbook"), "-i", str(inventory), *playbooks]
    if check:
        argv += ["--check", "--diff"]
    began = time.monotonic()
    proc = subprocess.run(
        argv, cwd=lab.repo, env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    seconds = time.monotonic() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(playbooks)} failed ({strategy}):\n{proc.stdout[-3000:]}")
    ok, changed, failed = parse_recap(proc.stdout)
    run = Run(
        playbook=playbooks[0] if len(playbooks) == 1 else "database tier",
        strategy=strategy,
        check=check,
        seconds=round(seconds, 1),
        ok=ok,
        changed=changed,
        failed=failed,
        roles=parse_profile(proc.stdout, "ROLES RECAP"),
        tasks=parse_profile(proc.stdout, "TASKS RECAP"),
    )
    log.info(
        "%s %s%s: %.0f s, changed=%d",
        run.playbook,
        strategy,
        " --check" if check else "",
        run.seconds,
        run.changed,
    )
    return run


def bench_inventory(lab: BenchLab, hosts: int) -> Path:
    """An inventory of `hosts` database hosts two levels below the repository (the lab's group_vars
    find .lab there), with the lab's group variables."""
    directory = lab.results_dir / f"inventory-db{hosts}"
    directory.mkdir(exist_ok=True)
    group_vars = directory / "group_vars"
    if not group_vars.is_symlink():
        group_vars.symlink_to(lab.repo / "inventory/lab/group_vars")
    network = lab.spec.network
    members = {
        f"bench-db{i}": {"ansible_host": str(network.network_address + FIRST_ADDRESS + i - 1)}
        for i in range(1, hosts + 1)
    }
    lines = [
        "# Made by pgstack-bench (converge section): database hosts for the bench only.",
        "all:",
        "  vars:",
        f"    lab_network: {network}",
        f"    lab_domain: {lab.spec.domain}",
        "  children:",
    ]
    for group in ("postgres", "pgbouncer", "redis"):
        lines += [f"    {group}:", "      hosts:"]
        for name, host_vars in members.items():
            lines.append(
                f"        {name}:"
                + (f" {{ansible_host: {host_vars['ansible_host']}}}" if group == "postgres" else "")
            )
    (directory / "hosts.yml").write_text("\n".join(lines) + "\n")
    return directory


def _lab_tool(lab: BenchLab, inventory: Path, *args: str) -> None:
    tool = lab.repo / ".venv/bin/pgstack-lab"
    subprocess.run(
        [str(tool), "-i", str(inventory / "hosts.yml"), *args],
        cwd=lab.repo,
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def tier_at(lab: BenchLab, hosts: int, *, stock: bool = False) -> tuple[Run, Run, Run | None]:
    """Fresh converge and re-run of the tier on ``hosts`` new hosts; with ``stock`` the re-run
    again with Ansible's stock strategy."""
    inventory = bench_inventory(lab, hosts)
    _lab_tool(lab, inventory, "down")  # leftovers of a killed run
    try:
        _lab_tool(lab, inventory, "up")
        fresh = _playbook(lab, inventory, TIER, strategy=PROJECT, check=False)
        rerun = _playbook(lab, inventory, TIER, strategy=PROJECT, check=False)
        stock_rerun = (
            _playbook(lab, inventory, TIER, strategy=STOCK, check=False) if stock else None
        )
    finally:
        _lab_tool(lab, inventory, "down")
    return fresh, rerun, stock_rerun


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def run(lab: BenchLab) -> SectionResult:
    sizes = QUICK_SIZES if lab.quick else SIZES
    site_runs: list[Run] = []
    if not lab.quick:
        inventory = lab.repo / "inventory/lab"
        site_runs = [
            _playbook(lab, inventory, (SITE,), strategy=PROJECT, check=False),
            _playbook(lab, inventory, (SITE,), strategy=PROJECT, check=True),
        ]
    measured = {hosts: tier_at(lab, hosts, stock=not lab.quick and hosts == 1) for hosts in sizes}
    tiers = {hosts: (fresh, rerun) for hosts, (fresh, rerun, _) in measured.items()}
    stock_runs = {hosts: (rerun, stock) for hosts, (_, rerun, stock) in measured.items() if stock}

    tables: list[Table] = []
    summary: list[tuple[str, str]] = []
    if site_runs:
        rerun, check = site_runs
        rows: list[dict[str, Cell]] = [
            {
                "run": "re-run (changes nothing)",
                "strategy": PROJECT,
                "seconds": rerun.seconds,
                "changed": rerun.changed,
                "tasks ok": rerun.ok,
            },
            {
                "run": "--check --diff",
                "strategy": PROJECT,
                "seconds": check.seconds,
                "changed": check.changed,
                "tasks ok": check.ok,
            },
        ]
        tables.append(
            Table(
                "Whole site on the lab (4 hosts), converged",
                ("run", "strategy", "seconds", "changed", "tasks ok"),
                tuple(rows),
            )
        )
        total = sum(seconds for _, seconds in rerun.roles) or 1.0
        tables.append(
            Table(
                f"Where the site re-run's time goes, by role ({PROJECT})",
                ("role", "seconds", "share"),
                tuple(
                    {"role": name, "seconds": seconds, "share": f"{100 * seconds / total:.0f} %"}
                    for name, seconds in rerun.roles
                ),
            )
        )
        tables.append(
            Table(
                f"The site re-run's slowest tasks ({PROJECT}; a task's time covers all its hosts)",
                ("task", "seconds"),
                tuple({"task": name, "seconds": seconds} for name, seconds in rerun.tasks[:12]),
            )
        )
        summary.append(("site re-run", f"{rerun.seconds:.0f} s, changed={rerun.changed}"))
        summary.append(("site --check --diff", f"{check.seconds:.0f} s, changed={check.changed}"))

    for hosts, (ours, stock) in stock_runs.items():
        tables.append(
            Table(
                f"Database tier re-run on {hosts} host(s), by strategy",
                ("strategy", "seconds", "changed", "tasks ok"),
                tuple(
                    {
                        "strategy": r.strategy,
                        "seconds": r.seconds,
                        "changed": r.changed,
                        "tasks ok": r.ok,
                    }
                    for r in (ours, stock)
                ),
            )
        )
        summary.append(
            (
                f"database tier re-run on {hosts} host(s), pgstack_linear vs linear",
                f"{ours.seconds:.0f} s vs {stock.seconds:.0f} s"
                f" ({_ratio(ours.seconds, stock.seconds)})",
            )
        )

    tier_rows: list[dict[str, Cell]] = []
    for hosts, (fresh, rerun_) in tiers.items():
        tier_rows.append(
            {
                "database hosts": hosts,
                "fresh s": fresh.seconds,
                "fresh changed": fresh.changed,
                "re-run s": rerun_.seconds,
                "re-run changed": rerun_.changed,
                "re-run / fresh": _ratio(rerun_.seconds, fresh.seconds),
            }
        )
        summary.append(
            (
                f"database tier on {hosts} host(s): fresh, re-run",
                f"{fresh.seconds:.0f} s, {rerun_.seconds:.0f} s"
                f" ({_ratio(rerun_.seconds, fresh.seconds)})",
            )
        )
    tables.append(
        Table(
            "Database tier (pki, PostgreSQL, PgBouncer, Redis) on new hosts, by host count",
            (
                "database hosts",
                "fresh s",
                "fresh changed",
                "re-run s",
                "re-run changed",
                "re-run / fresh",
            ),
            tuple(tier_rows),
        )
    )
    curves = (
        Curve(
            name="converge-hosts",
            title="Database tier converge time by number of hosts",
            x_label="database hosts",
            y_label="seconds",
            series={
                "fresh": tuple((float(h), f.seconds) for h, (f, _) in tiers.items()),
                "re-run": tuple((float(h), r.seconds) for h, (_, r) in tiers.items()),
            },
        ),
    )
    discussion = (
        "A converge costs per task round and per host round trip, not per change. Six changes "
        "cut it: the linear strategy runs over Mitogen (one Python per host for the whole run "
        "instead of one per task; `plugins/strategy/pgstack_linear.py`; the tier re-run by "
        "strategy shows its share); each Python tool is one zip copied as one file (the "
        "`python_tool` role) instead of a loop over its modules; each role's input is checked "
        "once per run and host (`validate.yml`; the roles and tier plays skip what it checked);"
        " the roles' apt tasks are skipped when the package facts `validate.yml` reads show "
        "their packages; a role's input rules are one `preflight_check` task instead of one "
        "`assert` task per rule (roles/preflight); and `validate.yml` includes each role's "
        "checks, so a host outside a role's groups skips them as one task (`validate.yml` alone"
        " on the lab: 154 task rounds and 47.7 s before the last two, 95 and 18.2 s after). "
        "What remains of a re-run is about 370 task rounds, each a round trip to every host of "
        "its play, that must look at the host (package, file, template, service, SQL state, "
        "certificate) for `changed=0` to mean something; the largest blocks left are "
        "`validate.yml` (fact gathering, the argument specs, the systemd-analyze calls) and pki"
        " (per certificate a key, a request, a check and a signature). At about 0.2 s per round"
        " on this machine, a re-run at a quarter of a fresh converge leaves room for about 220 "
        "rounds: that would take coarser tasks (one module per role that reads and converges "
        "its whole state at once), which would give up the per-task `--check --diff` and "
        "`changed` reporting the tests rely on. The tier rows (the four playbooks in one "
        "`ansible-playbook` run, as an operator would converge a new database host) show how "
        "the cost grows with hosts: hosts of one play run side by side (forks), so it grows "
        "with the controller's and the hosts' CPU, here two cores shared by every host."
    )
    raw = {
        "site": [r.__dict__ for r in site_runs],
        "tier": {str(h): {"fresh": f.__dict__, "rerun": r.__dict__} for h, (f, r) in tiers.items()},
        "tier_stock": {str(h): s.__dict__ for h, (_, s) in stock_runs.items()},
    }
    return SectionResult(
        name="converge",
        title="Converge",
        tables=tuple(tables),
        curves=curves,
        discussion=discussion,
        summary=tuple(summary),
        raw=raw,
    )


SECTION = Section(name="converge", title="Converge", run=run)

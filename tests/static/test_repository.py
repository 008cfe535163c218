"""Static checks over the repository: the house rules a reviewer would otherwise check by eye."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from layout import LAYOUT, role_groups

REPO_ROOT = Path(__file__).resolve().parents[2]
# Internal roles, never applied on their own: preflight (the input rules the service roles share,
# used by their tasks/assert.yml) and python_tool (the one install step of the Python tools).
INTERNAL_ROLES = {"preflight", "python_tool"}
PREFLIGHT = REPO_ROOT / "roles/preflight"
PYTHON_TOOL = REPO_ROOT / "roles/python_tool"
ROLES = sorted(
    p for p in (REPO_ROOT / "roles").iterdir() if p.is_dir() and p.name not in INTERNAL_ROLES
)
ROLE_IDS = [p.name for p in ROLES]
SKELETON = (
    "README.md",
    "defaults/main.yml",
    "meta/main.yml",
    "meta/argument_specs.yml",
    "tasks/main.yml",
    "tasks/assert.yml",
    "handlers/main.yml",
    "molecule/default/molecule.yml",
)
# Roles tested on a lab instead of in a molecule scenario of their own -> the end-to-end module
# that tests them there: their scenario would re-build, on hosts of its own, what that lab already
# runs. etcd and haproxy run only in the HA layout, beside Patroni (the HA lab); the exporter
# watches every service of a database host and a backup host, and the restore drills need
# PostgreSQL with its archive, backups and dumps (the lab). The lab's converge, its second converge
# and `--check --diff` (tests/e2e/test_site.py, tests/e2e/test_ha.py) stand for the scenario's.
LAB_TESTED_ROLES = {
    "etcd": "tests/e2e/test_ha.py",
    "haproxy": "tests/e2e/test_ha.py",
    "exporter": "tests/e2e/test_monitoring.py",
    "restore_drill": "tests/e2e/test_drills.py",
}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def options(role: Path) -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = load(role / "meta/argument_specs.yml")["argument_specs"]
    return spec["main"]["options"] or {}


def test_top_level_holds_only_what_the_design_card_names() -> None:
    allowed = {
        "playbooks", "roles", "inventory", "exporters", "alerts", "dashboards", "scripts",
        "tests", "docs", "pyproject.toml", "README.md", "Makefile", "ansible.cfg",
        # What an Ansible collection keeps beside its roles: its metadata, plugins/ (the strategy,
        # the preflight_check action, the shared Jinja tests) and the collections it needs.
        "galaxy.yml", "meta", "plugins", "requirements.yml",
    }  # fmt: skip
    tracked = {p.name for p in REPO_ROOT.iterdir() if not p.name.startswith(".")}
    ignored = {"build"} | {p.name for p in REPO_ROOT.glob("*.egg-info")}
    assert tracked - ignored <= allowed


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_role_has_the_full_skeleton(role: Path) -> None:
    skeleton = [n for n in SKELETON if role.name not in LAB_TESTED_ROLES or "molecule" not in n]
    missing = [name for name in skeleton if not (role / name).is_file()]
    assert missing == []


@pytest.mark.parametrize(("role", "module"), sorted(LAB_TESTED_ROLES.items()))
def test_a_role_tested_on_a_lab_has_no_scenario_and_its_module_names_it(
    role: str, module: str
) -> None:
    assert not (REPO_ROOT / "roles" / role / "molecule").exists()
    assert f"roles/{role}" in (REPO_ROOT / module).read_text()


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_argument_specs_match_defaults(role: Path) -> None:
    defaults = load(role / "defaults/main.yml") or {}
    specs = options(role)
    assert sorted(set(defaults) - set(specs)) == [], "defaults without an argument spec"
    for name, spec in specs.items():
        assert name.startswith(f"{role.name}_"), f"{name}: public variables are <role>_<thing>"
        assert "type" in spec, f"{name}: no explicit type"
        if spec["type"] == "list":
            assert "elements" in spec, f"{name}: a list needs elements"
        if name in defaults:
            assert spec.get("default") == defaults[name], f"{name}: default differs from defaults"
        else:
            assert "default" not in spec, f"{name}: has a spec default but none in defaults"
        assert spec.get("description"), f"{name}: no description"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_defaults_have_one_comment_line_each(role: Path) -> None:
    lines = (role / "defaults/main.yml").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(rf"^{role.name}_\w+:", line):
            above = lines[number - 1] if number else ""
            assert above.startswith("#"), f"defaults line {number + 1}: no comment above {line}"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_readme_documents_every_variable(role: Path) -> None:
    readme = (role / "README.md").read_text()
    undocumented = [name for name in options(role) if f"`{name}`" not in readme]
    assert undocumented == []


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_tasks_main_is_a_table_of_contents(role: Path) -> None:
    first, *rest = load(role / "tasks/main.yml")
    # The validation is included (skipped as one task once validate.yml has checked the role).
    assert set(first) <= {"name", "ansible.builtin.include_tasks", "tags", "when"}, first
    for task in rest:
        assert set(task) <= {"name", "ansible.builtin.import_tasks", "tags", "when"}, task
        assert "ansible.builtin.import_tasks" in task, task
    for task in (first, *rest):
        assert task.get("tags"), f"{task['name']}: untagged"


TEMPLATES = sorted((REPO_ROOT / "roles").glob("*/templates/**/*.j2"))


@pytest.mark.parametrize(
    "template", TEMPLATES, ids=[str(t.relative_to(REPO_ROOT)) for t in TEMPLATES]
)
def test_templates_start_with_the_managed_header(template: Path) -> None:
    assert template.read_text().startswith("{{ ansible_managed | comment }}")


def test_site_only_imports_one_playbook_per_tier() -> None:
    plays = load(REPO_ROOT / "playbooks/site.yml")
    for play in plays:
        assert set(play) == {"name", "ansible.builtin.import_playbook"}, play
        assert (REPO_ROOT / "playbooks" / play["ansible.builtin.import_playbook"]).is_file()


def test_no_role_edits_lines_of_a_config_file() -> None:
    offenders = [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "roles").glob("*/tasks/*.yml")
                 if "lineinfile" in p.read_text()]  # fmt: skip
    assert offenders == []


def test_committed_inventories_hold_no_secret() -> None:
    """vault_ values are generated lookups (lab) or placeholders (example), never literals."""
    for vault in (REPO_ROOT / "inventory").glob("*/group_vars/*/vault.yml"):
        for name, value in (load(vault) or {}).items():
            if not name.startswith("vault_"):
                continue
            text = str(value)
            assert "lookup('ansible.builtin.password'" in text or text == "CHANGE_ME", (
                f"{vault.relative_to(REPO_ROOT)}: {name} looks like a real secret"
            )


def test_example_inventory_has_every_group_the_playbooks_target() -> None:
    hosts = load(REPO_ROOT / "inventory/example/hosts.yml")["all"]["children"]
    # The groups of the layout the playbooks read, and those their plays name.
    targeted = {group for groups in role_groups().values() for group in groups}
    for playbook in (REPO_ROOT / "playbooks").glob("*.yml"):
        for play in load(playbook):
            if "hosts" in play:
                # A pattern's groups, without a subscript (postgres[0]).
                patterns = (g.strip() for g in str(play["hosts"]).split(":"))
                targeted |= {re.sub(r"\[\d+\]$", "", g) for g in patterns if g}
    assert targeted - {"all", "localhost"} <= set(hosts)


# Validation: each role's argument spec and tasks/assert.yml run before anything changes a host.


@pytest.mark.parametrize(
    ("role", "own"),
    # preflight's code is the collection's: the Jinja tests and the preflight_check action.
    [
        (PREFLIGHT, REPO_ROOT / "plugins/test/preflight.py"),
        (PYTHON_TOOL, PYTHON_TOOL / "files/build_zip.py"),
    ],
    ids=["preflight", "python_tool"],
)
def test_an_internal_role_has_its_skeleton(role: Path, own: Path) -> None:
    assert own.is_file(), own
    for name in ("README.md", "meta/main.yml", "meta/argument_specs.yml"):
        assert (role / name).is_file(), name
    entry_points = load(role / "meta/argument_specs.yml")["argument_specs"]
    assert set(entry_points) == {p.stem for p in (role / "tasks").glob("*.yml")}


def test_the_python_tools_install_through_one_entry_point() -> None:
    """No role copies a Python package file by file: each imports python_tool's install."""
    for role in ("exporter", "pg_dump", "restore_drill"):
        install = (REPO_ROOT / "roles" / role / "tasks/install.yml").read_text()
        assert "name: python_tool" in install, role
        assert "fileglob" not in install, role


def test_every_tool_zip_carries_the_shared_package() -> None:
    """The zip a role installs holds scripts/pgstack_common beside the tool's own package."""
    (build, *_rest) = load(PYTHON_TOOL / "tasks/install.yml")
    argv = build["ansible.builtin.command"]["argv"]
    assert argv[-2:] == ["{{ python_tool_source }}", "{{ __python_tool_shared_source }}"], argv
    shared = load(PYTHON_TOOL / "vars/main.yml")["__python_tool_shared_source"]
    assert shared == "{{ role_path }}/../../scripts/pgstack_common"


# What pgstack_common defines is defined nowhere else in the Python tools.
SHARED_DEFINITIONS = [
    r"^class ExitCode\b",
    r"^class Terminated\b",
    r"^def write_atomic\b",
    r"^def fsync_path\b",
    r"^TABLES_QUERY\b",
    r"^TABLE_SUMMARY_QUERY\b",
    r"^TEXT_FORM_SETTINGS\b",
    r"^MANIFEST_FILE\b",
    r"^def (_?raise_terminated|_on_sigterm)\b",
]


@pytest.mark.parametrize("pattern", SHARED_DEFINITIONS)
def test_a_shared_definition_lives_only_in_pgstack_common(pattern: str) -> None:
    found = [
        path.relative_to(REPO_ROOT).as_posix()
        for top in ("scripts", "exporters")
        for path in sorted((REPO_ROOT / top).rglob("*.py"))
        if re.search(pattern, path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert found, pattern
    assert all(name.startswith("scripts/pgstack_common/") for name in found), found


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_validation_comes_first_in_tasks_main(role: Path) -> None:
    first = load(role / "tasks/main.yml")[0]
    include = first["ansible.builtin.include_tasks"]
    assert include["file"] == "assert.yml", first
    # Whatever tags a run selects, the checks run: the tags of the include apply to its tasks.
    assert include["apply"]["tags"] == first["tags"], first
    # Skipped only once this run has recorded the role on the host (roles/preflight validated.yml).
    assert first["when"] == "role_name not in (__preflight_validated | default([]))", first


def test_every_assert_records_its_role_last() -> None:
    for role in ROLES:
        last = load(role / "tasks/assert.yml")[-1]
        assert last["ansible.builtin.import_role"] == {
            "name": "preflight",
            "tasks_from": "validated",
        }, role.name


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_the_assert_entry_point_checks_the_same_spec_as_main(role: Path) -> None:
    """import_role with tasks_from assert (the playbooks' validation step) validates main's spec."""
    entry_points = load(role / "meta/argument_specs.yml")["argument_specs"]
    assert entry_points["assert"]["options"] == entry_points["main"]["options"]


RELEASE_VARS = sorted((PREFLIGHT / "vars").glob("Debian-*.yml"))


def test_release_versions_live_in_one_place() -> None:
    """Only roles/preflight/vars holds per-release files, one per supported release, same keys."""
    assert [p.name for p in RELEASE_VARS] == ["Debian-12.yml", "Debian-13.yml"]
    elsewhere = sorted(
        str(p.relative_to(REPO_ROOT))
        for p in (REPO_ROOT / "roles").glob("*/vars/Debian-*.yml")
        if not p.is_relative_to(PREFLIGHT)
    )
    assert elsewhere == [], "per-release values belong in roles/preflight/vars"
    keys = {p.name: sorted(load(p)["__preflight_release"]) for p in RELEASE_VARS}
    assert len(set(map(tuple, keys.values()))) == 1, keys


# A PostgreSQL major written out where it names a path, package, unit or server: the release
# variables say it once and everything else reads them (roles: __preflight_release; tests: the
# release module; tools: the host they run on). Docs may say which release ships which version.
VERSION_LITERAL_DIRS = (
    "roles",
    "playbooks",
    "tests",
    "scripts",
    "exporters",
    "alerts",
    "dashboards",
    "plugins",
)


def _version_literal_pattern() -> re.Pattern[str]:
    majors = sorted({str(load(p)["__preflight_release"]["postgresql"]) for p in RELEASE_VARS})
    alternatives = "|".join(majors)
    return re.compile(
        rf"(postgresql[-/@ ]|PostgreSQL |/lib/postgresql/|PG_VERSION\W+|server_version\W+)"
        rf"({alternatives})(\b|\.)"
    )


def test_no_postgresql_major_is_written_outside_the_release_variables() -> None:
    pattern = _version_literal_pattern()
    hits = []
    for top in VERSION_LITERAL_DIRS:
        for path in sorted((REPO_ROOT / top).rglob("*")):
            if not path.is_file() or path in RELEASE_VARS or path.suffix in {".png", ".svg", ".md"}:
                continue
            if "__pycache__" in path.parts:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), 1):
                if pattern.search(line):
                    hits.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert hits == []


# (what a shared rule looks like, its name, where it lives): outside the preflight role and the
# collection's Jinja tests, no role task, role variable or playbook spells these out again.
SHARED_RULES = [
    (r"change\.\?me", "placeholder secret", "plugins/test/preflight.py"),
    (r"\[a-z_\]\[a-z0-9_\]\{0,62\}", "SQL identifier", "plugins/test/preflight.py"),
    (r"\[a-z0-9\]\[a-z0-9_\.-\]\{0,(40|62)\}", "restore point label", "plugins/test/preflight.py"),
    (
        r"distribution_major_version",
        "platform check and release variables",
        "roles/preflight/tasks/platform.yml",
    ),
    (r"\[systemd-analyze", "OnCalendar parsing", "roles/preflight/tasks/calendar.yml"),
    (r"\| int (>|<)=? ?\d", "number ranges as written (is between, is port)", None),
]
ANSIBLE_FILES = sorted(
    p
    for p in [*(REPO_ROOT / "roles").glob("*/*/*.yml"), *(REPO_ROOT / "playbooks").glob("*.yml")]
    if not p.is_relative_to(PREFLIGHT) and "molecule" not in p.parts
)


@pytest.mark.parametrize(
    ("pattern", "rule", "home"), SHARED_RULES, ids=[rule for _, rule, _ in SHARED_RULES]
)
def test_a_shared_rule_is_defined_once(pattern: str, rule: str, home: str | None) -> None:
    if home is not None:
        assert re.search(pattern, (REPO_ROOT / home).read_text()), f"{rule}: not in {home}"
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in ANSIBLE_FILES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(pattern, line) and not line.lstrip().startswith("#")
    ]
    assert offenders == [], f"the {rule} rule belongs to roles/preflight or plugins/test"


def play_roles(play: dict[str, Any]) -> list[str]:
    return [entry["role"] if isinstance(entry, dict) else entry for entry in play.get("roles", [])]


def validated_in_pre_tasks(play: dict[str, Any]) -> set[str]:
    """Roles whose assert the pre_tasks run: imported, or included with the always tag applied."""
    checked = set()
    for task in play.get("pre_tasks", []):
        imported = task.get("ansible.builtin.import_role", {})
        included = task.get("ansible.builtin.include_role", {})
        if imported.get("tasks_from") == "assert":
            checked.add(imported["name"])
        elif included.get("tasks_from") == "assert":
            assert included.get("apply", {}).get("tags") == ["always"], task
            checked.add(included["name"])
    return checked


PLAYBOOKS = sorted((REPO_ROOT / "playbooks").glob("*.yml"))


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=[p.name for p in PLAYBOOKS])
def test_every_role_is_validated_before_an_earlier_role_changes_a_host(playbook: Path) -> None:
    """A role's own assert.yml runs only when the role starts: every role a playbook applies after
    another one is validated in the pre_tasks of its first play, before any role runs."""
    plays = [play for play in load(playbook) if "hosts" in play]
    roles = [role for play in plays for role in play_roles(play)]
    if len(roles) < 2:
        return
    assert set(roles[1:]) <= validated_in_pre_tasks(plays[0])


def test_site_validates_every_role_first() -> None:
    site = load(REPO_ROOT / "playbooks/site.yml")
    imported = [play["ansible.builtin.import_playbook"] for play in site]
    assert imported[0] == "validate.yml"
    applied = {
        role
        for name in imported[1:]
        for play in load(REPO_ROOT / "playbooks" / name)
        for role in play_roles(play)
    }
    (validate,) = load(REPO_ROOT / "playbooks/validate.yml")
    *checks, facts = validate["tasks"]
    included = [task["ansible.builtin.include_role"] for task in checks]  # only checks
    assert {role["name"] for role in included if role["tasks_from"] == "assert"} == applied
    # Included (a host outside a role's groups skips it as one task), whatever tags a run selects.
    assert all(role["apply"] == {"tags": ["always", "validate"]} for role in included), included
    # Then only a read: the package facts the roles' apt tasks consult.
    assert set(facts) == {"name", "ansible.builtin.package_facts", "check_mode"}, facts
    assert validate["any_errors_fatal"] is True, "a failure on one host must stop all of them"


# The layout: roles/preflight/vars/layout.yml says once which groups each role is applied to;
# validate.yml and monitoring.yml check each role on those hosts, the tests read the file.


def tier_plays() -> list[dict[str, Any]]:
    site = load(REPO_ROOT / "playbooks/site.yml")
    return [
        play
        for entry in site[1:]
        for play in load(REPO_ROOT / "playbooks" / entry["ansible.builtin.import_playbook"])
        if "hosts" in play
    ]


def test_the_layout_is_plain_data() -> None:
    """Read as it is by the tests (tests/layout.py): no template anywhere in it."""
    text = LAYOUT.read_text()
    assert "{{" not in text
    assert "{%" not in text
    assert all(
        isinstance(groups, list) and all(isinstance(group, str) for group in groups)
        for groups in role_groups().values()
    )


def test_the_layout_names_the_groups_the_tier_plays_apply_each_role_to() -> None:
    """A play's hosts are a pattern of groups, written in the playbook: it must say what the
    layout says (the monitoring tier's exporter play, postgres:pgbouncer:redis:backup, ...)."""
    applied: dict[str, set[str]] = {}
    for play in tier_plays():
        for role in play_roles(play):
            applied.setdefault(role, set()).update(str(play["hosts"]).split(":"))
    assert applied == {role: set(groups) for role, groups in role_groups().items()}


def test_validate_checks_each_role_on_the_hosts_of_the_layout() -> None:
    (validate,) = load(REPO_ROOT / "playbooks/validate.yml")
    layout_task, *checks, _facts = validate["tasks"]
    assert layout_task["ansible.builtin.include_role"] == {
        "name": "preflight",
        "tasks_from": "cluster",
        "apply": {"tags": ["always", "validate"]},
    }
    assert "when" not in layout_task, "the layout is checked on every host"
    for task in checks:
        role = task["ansible.builtin.include_role"]["name"]
        assert task["when"] == f"inventory_hostname in __preflight_role_hosts.{role}", task


def test_prometheus_scrapes_the_groups_of_the_exporter() -> None:
    """prometheus_exporter_groups is written out: its role's argument spec is checked before any
    task could load the layout, and the spec renders the default."""
    defaults = load(REPO_ROOT / "roles/prometheus/defaults/main.yml")
    assert defaults["prometheus_exporter_groups"] == role_groups()["exporter"]

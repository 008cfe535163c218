"""The preflight_check action (plugins/action), run by the real ansible-playbook on the controller.

One playbook holds every case as a block with a rescue (the roles' input checks fail a host the
same way); the json callback gives each case's outcome. The rules use the collection's Jinja tests
by their full names, as the roles do.
"""

from __future__ import annotations

from typing import Any

import pytest

from localhost_play import case_messages, run_plays

PASSED = "pgstack-test: passed"

# name: (rules, variables of the case)
CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "all-hold": (
        [
            {
                "name": "port",
                "that": "good_port is pgstack.pgstack.port",
                "msg": "good_port is bad",
            },
            {"name": "two", "that": ["1 < 2", "good_port | int > 1"], "msg": "never"},
        ],
        {},
    ),
    "first-failure-wins": (
        [
            {
                "name": "port",
                "that": "good_port is pgstack.pgstack.port",
                "msg": "good_port is bad",
            },
            {
                "name": "bad port",
                "that": "bad_port is pgstack.pgstack.port",
                "msg": "bad_port must be a port, got {{ bad_port }}.",
            },
            {"name": "later", "that": "false", "msg": "a later rule must not be reached"},
        ],
        {},
    ),
    "loop-binds-the-variable": (
        [
            {
                "name": "ports",
                "that": "lookup('ansible.builtin.vars', one) is pgstack.pgstack.port",
                "msg": "{{ one }} must be a port, got {{ lookup('ansible.builtin.vars', one) }}.",
                "loop": ["good_port", "bad_port"],
                "loop_var": "one",
            },
        ],
        {},
    ),
    "loop-from-a-template": (
        [
            {
                "name": "items",
                "that": "item.size is pgstack.pgstack.between(1)",
                "msg": "{{ item.name }} needs a size of at least 1, got {{ item.size }}.",
                "loop": "{{ things }}",
            },
        ],
        {"things": [{"name": "a", "size": 2}, {"name": "b", "size": 0}]},
    ),
    "when-per-item": (
        [
            {
                "name": "only the enabled",
                "that": "item.size is pgstack.pgstack.between(1)",
                "msg": "{{ item.name }} is enabled with size {{ item.size }}.",
                "when": "item.enabled",
                "loop": "{{ things }}",
            },
        ],
        {
            "things": [
                {"name": "off", "size": 0, "enabled": False},
                {"name": "on", "size": 3, "enabled": True},
            ]
        },
    ),
    "rule-vars": (
        [
            {
                "name": "derived",
                "that": "doubled | int == 8",
                "msg": "doubled is {{ doubled }}.",
                "vars": {"doubled": "{{ good_port | int * 2 }}"},
            },
        ],
        {"good_port": 4},
    ),
    # A passing rule's message is never rendered: it may name what only a failure defines.
    "message-rendered-only-on-failure": (
        [{"name": "fine", "that": "true", "msg": "{{ undefined_variable.attribute }}"}],
        {},
    ),
    "unknown-key": (
        [{"name": "typo", "that": "true", "msg": "m", "fail_msg": "x"}],
        {},
    ),
    "missing-message": (
        [{"name": "no message", "that": "true"}],
        {},
    ),
    "non-boolean-expression": (
        [{"name": "a string", "that": "good_port | string", "msg": "m"}],
        {},
    ),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    tasks = []
    for name, (rules, variables) in CASES.items():
        tasks.append({
            "name": f"case {name}",
            "vars": variables,
            "block": [
                {"name": f"rules {name}", "preflight_check": {"rules": rules}},
                {"name": f"outcome {name}", "ansible.builtin.debug": {"msg": [PASSED]}},
            ],
            "rescue": [
                {"name": f"outcome {name}",
                 "ansible.builtin.debug": {"msg": "{{ [ansible_failed_result.msg] }}"}},
            ],
        })  # fmt: skip
    playbook = tmp_path_factory.mktemp("preflight") / "cases.yml"
    play = {
        "name": "preflight_check cases",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"good_port": 5432, "bad_port": 70000},
        "tasks": tasks,
    }
    # The stock strategy (run_plays): this is about the action, not about Mitogen.
    result = run_plays([play], playbook)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found: dict[str, list[str]] = case_messages(result.stdout)
    assert sorted(found) == sorted(CASES)
    return found


def test_rules_that_hold_pass(outcomes: dict[str, list[str]]) -> None:
    assert outcomes["all-hold"] == [PASSED]


def test_the_first_failing_rule_fails_the_task_with_its_message(
    outcomes: dict[str, list[str]],
) -> None:
    assert outcomes["first-failure-wins"] == ["bad_port must be a port, got 70000."]


def test_a_loop_binds_its_variable_in_the_expression_and_the_message(
    outcomes: dict[str, list[str]],
) -> None:
    assert outcomes["loop-binds-the-variable"] == ["bad_port must be a port, got 70000."]
    assert outcomes["loop-from-a-template"] == ["b needs a size of at least 1, got 0."]


def test_when_is_evaluated_per_item(outcomes: dict[str, list[str]]) -> None:
    assert outcomes["when-per-item"] == [PASSED]


def test_rule_variables_are_templated(outcomes: dict[str, list[str]]) -> None:
    assert outcomes["rule-vars"] == [PASSED]


def test_a_passing_rule_never_renders_its_message(outcomes: dict[str, list[str]]) -> None:
    assert outcomes["message-rendered-only-on-failure"] == [PASSED]


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("unknown-key", "unknown keys: fail_msg"),
        ("missing-message", "needs msg"),
        ("non-boolean-expression", "Conditionals must have a boolean result"),
    ],
)
def test_a_malformed_rule_is_an_error_that_names_it(
    outcomes: dict[str, list[str]], case: str, words: str
) -> None:
    (message,) = outcomes[case]
    assert words in message, message

"""preflight_check: a role's input rules, evaluated in one task on the controller.

A rule is what one ``ansible.builtin.assert`` task said, as a mapping::

    - name: Check redis_port                # what the rule checks (shown when it fails)
      that: redis_port is port              # one expression or a list; every one must hold
      msg: "redis_port must be ..."         # rendered only when the rule fails
      when: redis_tls | bool                # optional; the rule applies only when every one holds
      loop: [a_port, b_port]                # optional; the rule runs once per item,
      loop_var: role_item                   # bound to loop_var (default: item)
      vars: {name: "{{ expression }}"}      # optional; variables of this rule only

The rules run in order and the task fails at the first rule that does not hold, with that rule's
message: the same outcome as a list of assert tasks, in one task round instead of one per rule
(most of what checking the whole site's input costs is the rounds, not the expressions).

The expressions and messages are taken as written, not templated with the task's arguments: an
expression is evaluated as a conditional, exactly as ``assert`` evaluates ``that``; a message is
rendered only for the rule that fails, with its loop variable bound.
"""

from __future__ import annotations

from collections import ChainMap
from typing import Any

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase

RULE_KEYS = frozenset({"name", "that", "msg", "when", "loop", "loop_var", "vars"})


def _expressions(rule: dict[str, Any], key: str) -> list[Any]:
    value = rule.get(key, [])
    if isinstance(value, (str, bool)):
        return [value]
    if isinstance(value, list) and all(isinstance(one, (str, bool)) for one in value):
        return value
    raise AnsibleActionFail(
        f"preflight_check: rule {rule.get('name')!r}: {key} must be an expression or a list of them"
    )


def _check_shape(rules: Any) -> list[dict[str, Any]]:
    if not isinstance(rules, list) or not rules:
        raise AnsibleActionFail("preflight_check: rules must be a non-empty list of rules")
    for number, rule in enumerate(rules, 1):
        if not isinstance(rule, dict):
            raise AnsibleActionFail(
                f"preflight_check: rule {number} must be a mapping, got {type(rule).__name__}"
            )
        unknown = sorted(set(rule) - RULE_KEYS)
        if unknown:
            raise AnsibleActionFail(
                f"preflight_check: rule {rule.get('name', number)!r} has unknown keys: "
                + ", ".join(unknown)
            )
        for key in ("name", "msg"):
            if not isinstance(rule.get(key), str) or not rule[key]:
                raise AnsibleActionFail(f"preflight_check: rule {number} needs {key} (a string)")
        if "that" not in rule:
            raise AnsibleActionFail(f"preflight_check: rule {rule['name']!r} needs that")
        if not isinstance(rule.get("vars", {}), dict):
            raise AnsibleActionFail(
                f"preflight_check: rule {rule['name']!r}: vars must be a mapping"
            )
    return rules


class ActionModule(ActionBase):
    _requires_connection = False
    TRANSFERS_FILES = False

    @classmethod
    def finalize_task_arg(cls, name: str, value: Any, templar: Any, context: Any) -> Any:
        # The rules stay as written: run() evaluates each expression as a conditional and renders
        # a message only when its rule fails (it may name what only a failure makes sense of).
        if name == "rules":
            return value
        return super().finalize_task_arg(name, value, templar, context)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        del tmp
        unknown = sorted(set(self._task.args) - {"rules"})
        if unknown:
            raise AnsibleActionFail(f"preflight_check: unknown arguments: {', '.join(unknown)}")
        rules = _check_shape(self._task.args.get("rules"))
        variables = self._templar.available_variables
        checked = 0
        for rule in rules:
            thats = _expressions(rule, "that")
            whens = _expressions(rule, "when")
            loop_var = rule.get("loop_var", "item")
            rule_vars = rule.get("vars", {})
            if "loop" in rule:
                items = self._templar.copy_with_new_env(
                    available_variables=ChainMap(rule_vars, variables)
                ).template(rule["loop"])
                if not isinstance(items, list):
                    raise AnsibleActionFail(
                        f"preflight_check: rule {rule['name']!r}: loop must give a list"
                    )
                bindings: list[dict[str, Any]] = [{loop_var: item} for item in items]
            else:
                bindings = [{}]
            for binding in bindings:
                scope = ChainMap(binding, rule_vars, variables)
                templar = self._templar.copy_with_new_env(available_variables=scope)
                try:
                    if not all(templar.evaluate_conditional(when) for when in whens):
                        continue
                    failed = next(
                        (that for that in thats if not templar.evaluate_conditional(that)), None
                    )
                    if failed is None:
                        checked += 1
                        continue
                    message = templar.template(rule["msg"])
                except AnsibleError as error:
                    raise AnsibleActionFail(
                        f"preflight_check: rule {rule['name']!r}: {error}"
                    ) from error
                result.update(
                    failed=True, msg=str(message).strip(), rule=rule["name"], assertion=failed
                )
                return result
        result.update(changed=False, msg=f"{checked} checks passed")
        return result

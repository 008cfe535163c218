"""The preflight role's Jinja tests, imported from the role as Ansible loads them (by file path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PLUGIN = Path(__file__).resolve().parents[2] / "roles/preflight/test_plugins/preflight.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pgstack_preflight_tests", PLUGIN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

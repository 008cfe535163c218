"""Python files of the repository outside any package, loaded by path as Ansible loads them: the
collection's Jinja tests (plugins/test), a role's files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PLUGIN = Path(__file__).resolve().parents[1] / "plugins/test/preflight.py"


def load_file(path: Path, name: str) -> ModuleType:
    """A Python file of the repository that is not in a package (a plugin, a role's file)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load() -> ModuleType:
    return load_file(PLUGIN, "pgstack_preflight_tests")

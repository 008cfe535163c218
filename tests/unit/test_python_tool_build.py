"""roles/python_tool/files/build_zip.py: one zip per Python tool, the same bytes per source."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from preflight_plugin import load_file

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILDER = REPO_ROOT / "roles/python_tool/files/build_zip.py"
PACKAGES = {
    "pgstack_exporter": REPO_ROOT / "exporters/pgstack_exporter",
    "pgstack_backup": REPO_ROOT / "scripts/pgstack_backup",
    "pgstack_drill": REPO_ROOT / "scripts/pgstack_drill",
}
# In every zip beside the tool (roles/python_tool/vars/main.yml).
SHARED = REPO_ROOT / "scripts/pgstack_common"


def _builder() -> ModuleType:
    return load_file(BUILDER, "build_zip")


def _copy_package(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for path in source.glob("*.py"):
        (target / path.name).write_bytes(path.read_bytes())
    return target


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_the_zip_holds_every_module_and_runs_the_package(package: str, tmp_path: Path) -> None:
    output = tmp_path / f"{package}.pyz"
    argv = ["--main", package, "--output", str(output), str(PACKAGES[package]), str(SHARED)]
    assert _builder().main(argv) == 0
    with zipfile.ZipFile(output) as archive:
        names = set(archive.namelist())
    expected = {
        f"{source.name}/{p.relative_to(source)}"
        for source in (PACKAGES[package], SHARED)
        for p in source.rglob("*.py")
    }
    assert names == expected | {"__main__.py"}
    # The zip is what the host runs: `python3 <zip> --help` reaches the package's argparse, and
    # the shared package it imports is the zip's own, not this checkout's.
    if package == "pgstack_backup":
        proc = subprocess.run(
            [sys.executable, "-I", str(output), "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "usage:" in proc.stdout
    code = (
        f"import sys; sys.path.insert(0, {str(output)!r}); "
        "import pgstack_common.errors as m; print(m.__file__)"
    )
    where = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        check=False,
    )
    assert where.stdout.strip() == str(output / "pgstack_common/errors.py"), where


def test_same_sources_give_the_same_bytes_whatever_the_file_times(tmp_path: Path) -> None:
    builder = _builder()
    first = _copy_package(PACKAGES["pgstack_backup"], tmp_path / "a/pgstack_backup")
    second = _copy_package(PACKAGES["pgstack_backup"], tmp_path / "b/pgstack_backup")
    for path in second.glob("*.py"):
        path.touch()  # a fresh clone: other mtimes
    (second / "__pycache__").mkdir()
    (second / "__pycache__/cli.cpython-311.pyc").write_bytes(b"stale")
    assert builder.build("pgstack_backup", [first]) == builder.build("pgstack_backup", [second])


def test_the_output_is_rewritten_only_when_its_bytes_change(tmp_path: Path) -> None:
    builder = _builder()
    source = _copy_package(PACKAGES["pgstack_backup"], tmp_path / "src/pgstack_backup")
    output = tmp_path / "out/pgstack_backup.pyz"
    argv = ["--main", "pgstack_backup", "--output", str(output), str(source)]
    assert builder.main(argv) == 0
    built = output.stat().st_mtime_ns
    assert builder.main(argv) == 0
    assert output.stat().st_mtime_ns == built
    (source / "cli.py").write_text((source / "cli.py").read_text() + "\n# changed\n")
    assert builder.main(argv) == 0
    with zipfile.ZipFile(output) as archive:
        assert archive.read("pgstack_backup/cli.py").endswith(b"# changed\n")


@pytest.mark.parametrize(
    ("argv_tail", "message"),
    [
        (["--main", "pgstack_backup"], "no __init__.py"),
        (["--main", "pgstack_nothing"], "not among the sources"),
    ],
)
def test_a_bad_source_is_refused_and_writes_nothing(
    argv_tail: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _copy_package(PACKAGES["pgstack_backup"], tmp_path / "pgstack_backup")
    if message == "no __init__.py":
        (source / "__init__.py").unlink()
    output = tmp_path / "out.pyz"
    assert _builder().main([*argv_tail, "--output", str(output), str(source)]) == 2
    assert message in capsys.readouterr().err
    assert not output.exists()

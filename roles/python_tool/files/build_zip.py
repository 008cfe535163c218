#!/usr/bin/env python3
"""Build one of pgstack's Python packages into a single zip application, on the controller.

    build_zip.py --main PACKAGE --output FILE SOURCE_DIR [SOURCE_DIR ...]

Each SOURCE_DIR is a package directory (its *.py files go under its name in the zip); the zip's
own __main__.py runs PACKAGE as `python3 -m PACKAGE` would, so hosts run `python3 FILE`. The bytes
depend only on the sources: entries sorted, stored uncompressed (no zlib version in the output),
timestamps and modes fixed. FILE is replaced atomically and only when its bytes differ, so a run
that changes no source copies nothing to the hosts. Prints "changed" or "unchanged".
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)
_MAIN = "import runpy\n\nrunpy.run_module({package!r}, run_name='__main__', alter_sys=True)\n"


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, _EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.create_system = 3  # Unix, whatever the controller is
    return info


def build(package: str, sources: list[Path]) -> bytes:
    entries: dict[str, bytes] = {"__main__.py": _MAIN.format(package=package).encode()}
    for source in sources:
        if not (source / "__init__.py").is_file():
            raise ValueError(f"{source} is not a Python package (no __init__.py)")
        for path in source.rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            entries[(Path(source.name) / path.relative_to(source)).as_posix()] = path.read_bytes()
    if f"{package}/__main__.py" not in entries:
        raise ValueError(f"package {package} is not among the sources or has no __main__.py")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            archive.writestr(_entry(name), entries[name])
    return buffer.getvalue()


def write_if_changed(output: Path, data: bytes) -> bool:
    if output.is_file() and output.read_bytes() == data:
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--main", required=True, help="the package the zip runs")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("sources", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        data = build(args.main, args.sources)
    except (OSError, ValueError) as exc:
        print(f"build_zip: {exc}", file=sys.stderr)
        return 2
    print("changed" if write_if_changed(args.output, data) else "unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

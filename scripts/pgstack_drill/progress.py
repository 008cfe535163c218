"""Progress on stderr while a drill runs: the phase, what has been restored so far, elapsed time.

On a terminal one line is redrawn every second; elsewhere nothing is printed unless asked for
(``--progress``), and then one line every few seconds.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

Probe = Callable[[], str]


def directory_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} TiB"


class Progress:
    def __init__(
        self,
        elapsed: Callable[[], float],
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.enabled = self.tty if enabled is None else enabled
        self.interval = 1.0 if self.tty else 5.0
        self._elapsed = elapsed
        self._phase = ""
        self._probe: Probe | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def phase(self, name: str, probe: Probe | None = None) -> None:
        with self._lock:
            self._phase = name
            self._probe = probe
        self._line()

    def probe(self, probe: Probe | None) -> None:
        with self._lock:
            self._probe = probe

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            prefix = "\r\033[K" if self.tty else ""
            self.stream.write(f"{prefix}{text}\n")
            self.stream.flush()

    def _line(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            probe = self._probe
            phase = self._phase
        detail = ""
        if probe is not None:
            try:
                detail = probe()
            except Exception:
                detail = ""
        text = f"[{self._elapsed():7.1f}s] {phase}" + (f": {detail}" if detail else "")
        with self._lock:
            if self.tty:
                self.stream.write(f"\r\033[K{text}")
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._line()

"""Signals as exceptions: a tool stops where it is and cleans up in its ``finally`` blocks."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from pgstack_common.errors import Terminated

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """A signal handler: raises Terminated in the main thread."""
    raise Terminated(f"terminated by signal {signum}")


@contextlib.contextmanager
def signals_raise(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Inside: the signals raise Terminated. The previous handlers come back after."""
    previous = {sig: signal.signal(sig, raise_terminated) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_ignored(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Inside: the signals are ignored (a cleanup a second SIGTERM must not interrupt)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

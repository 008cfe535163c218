"""Fakes for the exporter's seams (SQL sessions, Redis, clock), shared by its unit tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from pgstack_exporter.config import RedisTarget as RedisConfig
from pgstack_exporter.sql import Row, SqlParams

Answer = list[Row] | Exception | Callable[[], list[Row]]


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


class FakeSqlSession:
    def __init__(self, answers: Mapping[str, Answer]) -> None:
        self.answers = answers
        self.queries: list[str] = []
        self.closed = False
        self.is_broken = False
        self.aborted = threading.Event()

    def query(self, name: str, sql: str) -> list[Row]:
        assert sql.strip(), name
        self.queries.append(name)
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer()
        return [dict(row) for row in answer]

    def broken(self) -> bool:
        return self.is_broken

    def abort(self) -> None:
        self.aborted.set()

    def close(self) -> None:
        self.closed = True


class FakeSqlConnector:
    """Hands out sessions answering from ``answers``; ``fail`` makes the next connects raise."""

    def __init__(self, answers: Mapping[str, Answer]) -> None:
        self.answers = dict(answers)
        self.sessions: list[FakeSqlSession] = []
        self.params: list[SqlParams] = []
        self.fail: Exception | None = None

    def __call__(self, params: SqlParams) -> FakeSqlSession:
        self.params.append(params)
        if self.fail is not None:
            raise self.fail
        session = FakeSqlSession(self.answers)
        self.sessions.append(session)
        return session


class FakeRedisSession:
    def __init__(self, info: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self._info = info
        self._config = config or {}
        self.closed = False

    def ping(self) -> None:
        if isinstance(self._info.get("error"), Exception):
            raise self._info["error"]

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def config_get(self, name: str) -> dict[str, Any]:
        return {name: self._config[name]} if name in self._config else {}

    def close(self) -> None:
        self.closed = True


class FakeRedisConnector:
    def __init__(self, info: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.info = info
        self.config = config
        self.connects = 0
        self.fail: Exception | None = None

    def __call__(self, config: RedisConfig) -> FakeRedisSession:
        self.connects += 1
        if self.fail is not None:
            raise self.fail
        return FakeRedisSession(self.info, self.config)

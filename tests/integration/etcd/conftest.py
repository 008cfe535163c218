"""A throwaway CA for the session, and a fresh etcd for each test (etcd_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from etcd_server import Etcd, Pki, make_pki, running_etcd


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("etcd") / "pki")


@pytest.fixture
def etcd(tmp_path: Path, pki: Pki) -> Iterator[Etcd]:
    """A new single-member etcd, authentication off and no user, stopped after the test."""
    directory = tmp_path / "etcd"
    directory.mkdir()
    with running_etcd(directory, pki) as server:
        yield server

"""Fixtures for the state-machine tests: a fresh MVCC store in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from petcd.storage.mvcc import MVCCStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "member" / "snap" / "db"


@pytest.fixture
def store(db_path: Path) -> Iterator[MVCCStore]:
    s = MVCCStore.open(db_path, sync=False)
    yield s
    s.close()

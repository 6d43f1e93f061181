"""Fixtures of the reliability runs: the node tier's own (tests/node/conftest.py), loaded from its
file because that conftest is only active for tests under tests/node: a sandbox per test that kills
its processes and shows their logs when the test failed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_NODE_CONFTEST = Path(__file__).resolve().parents[1] / "node" / "conftest.py"
_spec = importlib.util.spec_from_file_location("reliability.node_fixtures", _NODE_CONFTEST)
assert _spec is not None and _spec.loader is not None
_node_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_node_fixtures)

sandbox = _node_fixtures.sandbox
pytest_runtest_makereport = _node_fixtures.pytest_runtest_makereport

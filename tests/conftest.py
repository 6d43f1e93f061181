"""Test tiers: each test directory belongs to one tier (a pytest marker), so `pytest -m unit` runs one."""

from __future__ import annotations

from pathlib import Path

import hypothesis  # noqa: F401
import pytest

# hypothesis is imported here, before any test runs, because its pytest plugin imports it lazily in
# the terminal summary otherwise, and on CPython 3.11.7 that compile can fail with "SystemError: AST
# constructor recursion depth mismatch" after tests that drove the interpreter's C recursion counter
# (seen after tests/unit/test_transport.py): every test passed, yet pytest exited 1.

# Kubernetes fixtures (kube_cluster, namespace) for tests/testenv and tests/e2e.
pytest_plugins = ["testenv.fixtures"]

TESTS = Path(__file__).parent
TIER_OF_DIRECTORY = {
    "raft": "unit",
    "storage": "unit",
    "operator": "unit",
    "unit": "unit",
    "node": "node",
    "reliability": "node",
    "testenv": "e2e",
    "e2e": "e2e",
    "k8s_on_petcd": "e2e",
}


# tryfirst: the markers must be in place before pytest's own `-m` deselection runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(t) for t in ("unit", "node", "e2e", "soak")):
            continue
        parts = Path(str(item.path)).relative_to(TESTS).parts
        tier = TIER_OF_DIRECTORY.get(parts[0], "unit") if len(parts) > 1 else "unit"
        item.add_marker(getattr(pytest.mark, tier))

"""Fixtures of the node tier: a sandbox per test that kills its processes and shows their logs on failure."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator

import pytest
from harness import IMPLEMENTATIONS, Implementation, Sandbox

_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Processes, data dirs and logs of one test; at the end, pass or fail, every process is killed
    and the files are deleted (the logs are printed first when the test failed).
    PETCD_KEEP_SANDBOX=1 keeps the files."""
    box = Sandbox(tmp_path_factory.mktemp("sandbox"))
    try:
        yield box
    finally:
        box.close()
        if request.node.stash.get(_FAILED, False):
            print(box.logs(), file=sys.stderr)
        if not os.environ.get("PETCD_KEEP_SANDBOX"):
            box.discard()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def implementation(request: pytest.FixtureRequest) -> Implementation:
    """Each registered implementation in turn (skipped where it is not installed)."""
    impl = IMPLEMENTATIONS[request.param]
    impl.require()
    return impl

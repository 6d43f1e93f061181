"""The same etcdctl sessions against etcd 3.4 (recorded and live) and every other implementation.

- test_etcd_matches_golden: Debian's etcd 3.4 reproduces the recorded transcript in golden/ (this also
  proves the normaliser removes everything volatile). PETCD_REGENERATE_GOLDEN=1 rewrites the files.
- test_implementation_matches_etcd: each other implementation's transcript, after the documented
  expected differences, equals both the recorded transcript and a live etcd 3.4 run of the same session.
check_perf runs 60 s per implementation, so by default only on a single node and only against the
recorded etcd transcript; PETCD_DIFF_SLOW=1 adds three members and the live etcd 3.4 run.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from harness import IMPLEMENTATIONS, Sandbox

from .expected_differences import rewrite
from .runner import run_session

HERE = Path(__file__).parent
REFERENCE = "etcd34"
TOPOLOGIES = {"single": 1, "three": 3}
RUN_SLOW = bool(os.environ.get("PETCD_DIFF_SLOW"))
SLOW_CASES = {("check_perf", "three")}
SLOW_LIVE_REFERENCE = {"check_perf"}  # compared with its golden file only, unless RUN_SLOW
CASES = [
    pytest.param(script.stem, topology, id=f"{script.stem}-{topology}")
    for script in sorted((HERE / "scripts").glob("*.txt"))
    for topology in TOPOLOGIES
    if (script.stem, topology) not in SLOW_CASES or RUN_SLOW
]
CANDIDATES = sorted(name for name in IMPLEMENTATIONS if name != REFERENCE)

_live_reference: dict[tuple[str, str], str] = {}


def transcript(sandbox: Sandbox, implementation: str, script: str, topology: str) -> str:
    IMPLEMENTATIONS[implementation].require()
    cluster = sandbox.static_cluster(IMPLEMENTATIONS[implementation], TOPOLOGIES[topology])
    return run_session(cluster, HERE / "scripts" / f"{script}.txt", sandbox.root / "scratch" / implementation)


def reference_transcript(sandbox: Sandbox, script: str, topology: str) -> str:
    """A live etcd 3.4 transcript, run once per session and shared by the tests."""
    key = (script, topology)
    if key not in _live_reference:
        _live_reference[key] = transcript(sandbox, REFERENCE, script, topology)
    return _live_reference[key]


def golden_path(script: str, topology: str) -> Path:
    return HERE / "golden" / f"{script}.{topology}.txt"


def assert_same(expected: str, actual: str, expected_name: str, actual_name: str) -> None:
    if expected != actual:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True), expected_name, actual_name
        )
        pytest.fail("transcripts differ:\n" + "".join(diff), pytrace=False)


@pytest.mark.parametrize(("script", "topology"), CASES)
def test_etcd_matches_golden(sandbox: Sandbox, script: str, topology: str) -> None:
    if script in SLOW_LIVE_REFERENCE and not RUN_SLOW:
        pytest.skip("a live etcd run of this script takes a minute; PETCD_DIFF_SLOW=1 runs it")
    live = reference_transcript(sandbox, script, topology)
    golden = golden_path(script, topology)
    if os.environ.get("PETCD_REGENERATE_GOLDEN"):
        golden.write_text(live)
    assert_same(golden.read_text(), live, str(golden), f"live {REFERENCE}")


@pytest.mark.parametrize("implementation", CANDIDATES)
@pytest.mark.parametrize(("script", "topology"), CASES)
def test_implementation_matches_etcd(
    sandbox: Sandbox, implementation: str, script: str, topology: str
) -> None:
    candidate, unused = rewrite(
        implementation, script, transcript(sandbox, implementation, script, topology), topology
    )
    assert not unused, f"expected differences that no longer occur: {unused}"
    golden = golden_path(script, topology)
    assert_same(golden.read_text(), candidate, str(golden), implementation)
    if script not in SLOW_LIVE_REFERENCE or RUN_SLOW:
        live = reference_transcript(sandbox, script, topology)
        assert_same(live, candidate, f"live {REFERENCE}", implementation)

"""The simulator catches real Raft bugs: each deliberately broken variant (tests/raft/broken.py) must be
reported as a violation within a bounded number of random schedules, with its seed and a shrunk trace."""

from __future__ import annotations

import pytest
from petcd.raft.raft import Raft

from tests.raft.broken import BROKEN_VARIANTS, NoLogMatchingCheck
from tests.raft.simulator import Failure, SimConfig, run_schedule, shrink

MAX_SCHEDULES = 1500


def first_failure(variant: type[Raft]) -> Failure | None:
    for seed in range(MAX_SCHEDULES):
        failure = run_schedule(seed, SimConfig(nodes=3 if seed % 2 == 0 else 5, raft_class=variant))
        if failure is not None:
            return failure
    return None


@pytest.mark.parametrize("name", sorted(BROKEN_VARIANTS))
def test_the_simulator_reports_a_violation_for_the_broken_variant(name: str) -> None:
    variant, expected = BROKEN_VARIANTS[name]
    failure = first_failure(variant)
    assert failure is not None, f"the simulator missed the bug {name!r} in {MAX_SCHEDULES} schedules"
    assert failure.violation.invariant in expected, failure.report()


def test_a_failure_report_names_the_seed_and_a_shrunk_replayable_trace() -> None:
    failure = first_failure(NoLogMatchingCheck)
    assert failure is not None
    shrunk = shrink(failure)
    report = shrunk.report()
    assert f"seed={failure.seed}" in report
    assert shrunk.violation.invariant == failure.violation.invariant
    assert shrunk.steps <= failure.steps
    assert len(shrunk.skip) > 0  # shrinking removed steps that did not matter
    config = SimConfig(nodes=failure.config.nodes, steps=shrunk.steps, raft_class=NoLogMatchingCheck,
                       check_liveness=False)
    replayed = run_schedule(failure.seed, config, shrunk.skip)
    assert replayed is not None and replayed.violation.invariant == failure.violation.invariant

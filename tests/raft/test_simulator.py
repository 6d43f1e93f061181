"""Random schedules through the deterministic simulator: every safety invariant after every step, and
liveness once the faults heal. RAFT_SIM_SCHEDULES raises the count (`make soak`), RAFT_SIM_STEPS the
length; RAFT_SIM_SEED_BASE shifts the seeds, so a soak run explores schedules CI never saw."""

from __future__ import annotations

import multiprocessing
import os
import time

from tests.raft.simulator import SimConfig, run_schedule, shrink

SCHEDULES = int(os.environ.get("RAFT_SIM_SCHEDULES", "2000"))
STEPS = int(os.environ.get("RAFT_SIM_STEPS", "1000"))
SEED_BASE = int(os.environ.get("RAFT_SIM_SEED_BASE", "0"))
WORKERS = 2  # the CI machine has two cores


def config_for(seed: int) -> SimConfig:
    return SimConfig(nodes=3 if seed % 2 == 0 else 5, steps=STEPS)


def run_seeds(seeds: range) -> list[str]:
    """Run the schedules of `seeds`; the shrunk report of each failure."""
    reports = []
    for seed in seeds:
        failure = run_schedule(seed, config_for(seed))
        if failure is not None:
            reports.append(shrink(failure).report())
            if len(reports) >= 3:
                break
    return reports


def test_random_schedules_keep_every_invariant() -> None:
    seeds = range(SEED_BASE, SEED_BASE + SCHEDULES)
    chunks = [seeds[i::WORKERS] for i in range(WORKERS)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        reports = [report for chunk in pool.map(run_seeds, chunks) for report in chunk]
    elapsed = time.perf_counter() - started
    print(f"raft simulator: {SCHEDULES} schedules of {STEPS} steps in {elapsed:.1f}s "
          f"({SCHEDULES / elapsed:.1f} schedules/s with {WORKERS} processes)")
    assert not reports, "\n\n".join(reports)


def test_a_schedule_replays_identically_from_its_seed() -> None:
    from tests.raft.simulator import Simulation

    runs = []
    for _ in range(2):
        simulation = Simulation(12345, SimConfig(nodes=5, steps=600))
        simulation.run()
        runs.append((simulation.trace, simulation.checker.commit_index, dict(simulation.checker.applied_at)))
    assert runs[0] == runs[1]
    assert runs[0][1] > 0  # the schedule did commit something

"""The reliability pass: faults injected into a real cluster while clients work, every history
checked. Green against etcd 3.4 (the control); petcd runs the same pass once it is registered in
the node harness (tests/node/harness/implementations.py).

PETCD_RELIABILITY_IMPLEMENTATIONS (default "etcd34,petcd") chooses the implementations;
PETCD_SOAK_SECONDS makes the fault phase as long as asked, PETCD_SOAK_RUNS repeats it.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from harness import IMPLEMENTATIONS, Sandbox

from reliability.run import Settings, run

SELECTED = os.environ.get("PETCD_RELIABILITY_IMPLEMENTATIONS", "etcd34,petcd").split(",")
CHOSEN = sorted(name for name in SELECTED if name in IMPLEMENTATIONS)
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root")

# (members, seconds of faults) of the short pass: under 2 minutes in all per implementation, so
# that etcd 3.4 and petcd together stay within 4 minutes.
PASSES = [(3, 45.0), (5, 20.0)]


@NEEDS_ROOT
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("members,fault_seconds", PASSES, ids=[f"{m}-members" for m, _ in PASSES])
@pytest.mark.parametrize("name", CHOSEN)
def test_no_anomaly_under_faults(name: str, members: int, fault_seconds: float, sandbox: Sandbox) -> None:
    implementation = IMPLEMENTATIONS[name]
    implementation.require()
    settings = Settings.from_environment(members, fault_seconds)
    anomalies = []
    runs = int(os.environ.get("PETCD_SOAK_RUNS", 1))
    for number in range(runs):
        # each run of a soak bootstraps a new cluster on the same addresses: its own data dirs
        box = sandbox if runs == 1 else Sandbox(sandbox.root / f"run-{number}")
        report = run(implementation, dataclasses.replace(settings, seed=settings.seed + number), box)
        if box is not sandbox and not report.anomalies:
            box.discard()
        report.publish()
        assert sum(report.faults.values()) >= 3, "the nemesis injected too few faults to mean anything"
        assert report.watch["events"] > 0 and report.lease_reads > 0, "a checker had nothing to check"
        anomalies += report.anomalies
    assert not anomalies, "\n".join(map(str, anomalies))

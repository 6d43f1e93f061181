"""Fixtures of the operator end-to-end tests (the cluster and namespace come from testenv.fixtures)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import ROOT, TIMINGS, Operator
from testenv.fixtures import KubeCluster
from testenv.processes import wait_for


@pytest.fixture(scope="session")
def crds(kube_cluster: KubeCluster) -> KubeCluster:
    kube_cluster.kubectl("apply", "-f", str(ROOT / "crds"))
    kube_cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/etcdclusters.petcd.io")
    return kube_cluster


@pytest.fixture
def operator(crds: KubeCluster, namespace: str, tmp_path: Path) -> Iterator[Operator]:
    running = Operator(crds, namespace, tmp_path)
    running.start()
    try:
        yield running
    finally:
        # Delete the clusters while an operator runs: kopf's finalizer (it has a timer) needs one.
        if running.process is None or not running.process.running():
            running.start()
        clusters = f"/apis/petcd.io/v1alpha1/namespaces/{namespace}/etcdclusters"
        for item in crds.api.items(clusters):
            crds.api.delete(f"{clusters}/{item['metadata']['name']}")
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: not crds.api.items(clusters), 60, "the EtcdClusters to be deleted")
        running.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("petcd-operator timings (benchmark, not assertions)")
        for test, what, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:7.1f}s  {what}  ({test})")
    sys.stdout.flush()

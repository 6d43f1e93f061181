"""The petcd-backed control plane for the smoke tests, started for this directory: store = 3 petcd
members, Events living 30 s (so one is seen expiring with its lease)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from testenv.fixtures import KubeCluster
from testenv.petcd_store import EVENT_TTL_VARIABLE, STORE_VARIABLE

EVENT_TTL = "30s"


@pytest.fixture(scope="module")
def petcd_cluster() -> Iterator[KubeCluster]:
    if os.environ.get("KUBECONFIG"):
        pytest.skip("KUBECONFIG names an existing cluster; these tests start their own on petcd")
    if os.geteuid() != 0:
        pytest.skip("the local cluster needs root (network namespaces, bind mounts)")
    from testenv.cluster import LocalCluster

    cluster = LocalCluster()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(STORE_VARIABLE, "petcd")
            patch.setenv(EVENT_TTL_VARIABLE, EVENT_TTL)
            cluster.start(lambda line: print(f"[k8s-on-petcd] {line}", flush=True))
        yield KubeCluster(cluster.kubeconfig, cluster)
    finally:
        cluster.stop()

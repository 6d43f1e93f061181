"""The petcd-backed control plane for the smoke tests: the session's cluster when it already runs on
petcd (PETCD_TESTENV_STORE=petcd), otherwise one started here for this directory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from testenv.fixtures import KubeCluster
from testenv.petcd_store import STORE_VARIABLE, store_from_environment


@pytest.fixture(scope="module")
def petcd_cluster(request: pytest.FixtureRequest) -> Iterator[KubeCluster]:
    if os.environ.get("KUBECONFIG"):
        pytest.skip("KUBECONFIG names an existing cluster; these tests start their own on petcd")
    if os.geteuid() != 0:
        pytest.skip("the local cluster needs root (network namespaces, bind mounts)")
    if store_from_environment() == "petcd":
        session: KubeCluster = request.getfixturevalue("kube_cluster")
        yield session
        return
    from testenv.cluster import LocalCluster

    cluster = LocalCluster()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(STORE_VARIABLE, "petcd")
            cluster.start(lambda line: print(f"[k8s-on-petcd] {line}", flush=True))
        yield KubeCluster(cluster.kubeconfig, cluster)
    finally:
        cluster.stop()

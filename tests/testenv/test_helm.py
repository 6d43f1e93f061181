"""helm v3 installs (and uninstalls) a chart against the control plane; its Deployment's Pod runs."""

from __future__ import annotations

import json
from pathlib import Path

from testenv.fixtures import KubeCluster
from testenv.processes import wait_for

CHART = Path(__file__).with_name("chart")


def test_helm_install_runs_the_chart_and_uninstall_removes_it(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    kube_cluster.helm("install", "demo", str(CHART), "--namespace", namespace, "--wait", "--timeout", "180s")
    status = json.loads(kube_cluster.helm("status", "demo", "--namespace", namespace, "--output", "json"))
    assert status["info"]["status"] == "deployed"

    api = kube_cluster.api
    deployment = api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/demo")
    assert deployment["status"].get("availableReplicas") == 1
    (pod,) = api.items(f"/api/v1/namespaces/{namespace}/pods")
    # The container got the ConfigMap (envFrom) the chart rendered, and answers on its Pod IP.
    environment = kube_cluster.container_environment(namespace, pod["metadata"]["name"])
    assert environment["GREETING"] == "hello from helm"
    endpoint = f"http://{pod['status']['podIP']}:2379"
    health = kube_cluster.exec_in_pod(
        namespace, pod["metadata"]["name"], ["etcdctl", "--endpoints", endpoint, "endpoint", "health"]
    )
    assert "is healthy" in health.stdout + health.stderr

    kube_cluster.helm("uninstall", "demo", "--namespace", namespace, "--wait", "--timeout", "120s")
    wait_for(
        lambda: not api.items(f"/api/v1/namespaces/{namespace}/pods"), 120, "the chart's Pod to be removed"
    )
    assert api.get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/demo-settings") is None

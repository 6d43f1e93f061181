"""The issue's proof: upstream etcd (Debian's) as a 3-replica StatefulSet behind a headless Service,
found through CoreDNS SRV records, surviving a Pod deletion with its volume, and scaled to zero."""

from __future__ import annotations

import subprocess

from testenv.fixtures import KubeCluster
from testenv.kubeapi import Obj
from testenv.processes import wait_for

REPLICAS = 3
WAIT = 180.0


def headless_service(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"app": name},
            "ports": [
                {"name": "etcd-server", "port": 2380, "targetPort": 2380},
                {"name": "etcd-client", "port": 2379, "targetPort": 2379},
            ],
        },
    }


def etcd_statefulset(name: str, namespace: str) -> Obj:
    domain = f"{name}.{namespace}.svc.cluster.local"
    initial_cluster = ",".join(f"{name}-{i}=http://{name}-{i}.{domain}:2380" for i in range(REPLICAS))
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": REPLICAS,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "containers": [
                        {
                            "name": "etcd",
                            "image": "quay.io/coreos/etcd:v3.4.23",
                            "command": [
                                "/usr/local/bin/etcd",
                                "--name=$(POD_NAME)",
                                "--data-dir=/var/run/etcd/default.etcd",
                                "--listen-peer-urls=http://0.0.0.0:2380",
                                "--listen-client-urls=http://0.0.0.0:2379",
                                f"--advertise-client-urls=http://$(POD_NAME).{domain}:2379",
                                f"--initial-advertise-peer-urls=http://$(POD_NAME).{domain}:2380",
                                f"--initial-cluster={initial_cluster}",
                                "--initial-cluster-state=new",
                                "--initial-cluster-token=testenv",
                            ],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                            "ports": [
                                {"name": "etcd-client", "containerPort": 2379},
                                {"name": "etcd-server", "containerPort": 2380},
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/health", "port": "etcd-client"},
                                "periodSeconds": 2,
                                "failureThreshold": 3,
                            },
                            "volumeMounts": [{"name": "data", "mountPath": "/var/run/etcd"}],
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }


def member_list(cluster: KubeCluster, namespace: str, pod: str, domain: str) -> list[list[str]]:
    """`etcdctl --discovery-srv` from inside the Pod's network namespace: rows of the member table."""
    result = cluster.exec_in_pod(
        namespace, pod, ["etcdctl", "--discovery-srv", domain, "member", "list", "-w", "simple"], check=False
    )
    if result.returncode != 0:
        return []
    return [[cell.strip() for cell in line.split(",")] for line in result.stdout.splitlines() if line.strip()]


def three_started(rows: list[list[str]]) -> bool:
    return len(rows) == REPLICAS and all(row[1] == "started" for row in rows)


def etcd_processes(namespace: str) -> list[str]:
    """Command lines of etcd processes of this test's StatefulSet (its namespace is in their flags)."""
    found = subprocess.run(["pgrep", "-a", "-f", "svc.cluster.local"], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if f".{namespace}.svc" in line and "etcd" in line]


def test_etcd_statefulset_discovers_itself_survives_pod_loss_and_scales_to_zero(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    api = kube_cluster.api
    name = "etcd"
    domain = f"{name}.{namespace}.svc.cluster.local"
    api.create(f"/api/v1/namespaces/{namespace}/services", headless_service(name))
    api.create(f"/apis/apps/v1/namespaces/{namespace}/statefulsets", etcd_statefulset(name, namespace))
    for i in range(REPLICAS):
        kube_cluster.wait_pod(namespace, f"{name}-{i}", "Ready", timeout=WAIT)

    rows: list[list[str]] = []

    def members_started() -> bool:
        nonlocal rows
        rows = member_list(kube_cluster, namespace, f"{name}-0", domain)
        return three_started(rows)

    wait_for(members_started, WAIT, "3 started members through --discovery-srv", interval=1)
    assert sorted(row[2] for row in rows) == [f"{name}-{i}" for i in range(REPLICAS)]
    ids_before = {row[2]: row[0] for row in rows}

    srv = subprocess.run(
        ["dig", f"@{kube_cluster.server_address}", "+short", "SRV", f"_etcd-server._tcp.{domain}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    targets = sorted(word.rstrip(".") for word in srv[3::4])
    assert targets == [f"{name}-{i}.{domain}" for i in range(REPLICAS)]
    assert set(srv[2::4]) == {"2380"}

    put = ["etcdctl", "--endpoints", f"http://{name}-0.{domain}:2379", "put", "survivor", "yes"]
    kube_cluster.exec_in_pod(namespace, f"{name}-0", put)

    old_uid = api.get(f"/api/v1/namespaces/{namespace}/pods/{name}-1")["metadata"]["uid"]
    api.delete(f"/api/v1/namespaces/{namespace}/pods/{name}-1")

    def replaced() -> bool:
        pod = kube_cluster.pod(namespace, f"{name}-1")
        return pod is not None and pod["metadata"]["uid"] != old_uid

    wait_for(replaced, WAIT, "the StatefulSet to recreate etcd-1", interval=0.5)
    kube_cluster.wait_pod(namespace, f"{name}-1", "Ready", timeout=WAIT)
    wait_for(members_started, WAIT, "etcd-1 to rejoin", interval=1)
    # Same member IDs: the new Pod found its old data directory on the claim and rejoined as itself.
    assert {row[2]: row[0] for row in rows} == ids_before
    get = [
        "etcdctl",
        "--endpoints",
        f"http://{name}-1.{domain}:2379",
        "get",
        "survivor",
        "--print-value-only",
    ]
    get += ["--consistency=s"]
    assert kube_cluster.exec_in_pod(namespace, f"{name}-1", get).stdout.strip() == "yes"

    assert etcd_processes(namespace), "the etcd processes should be visible before scaling down"
    api.merge_patch(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}", {"spec": {"replicas": 0}})

    def all_gone() -> bool:
        pods = api.items(f"/api/v1/namespaces/{namespace}/pods")
        return not pods and not etcd_processes(namespace)

    wait_for(all_gone, WAIT, "every etcd Pod and process to be gone", interval=0.5)
    claims = api.items(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    assert sorted(c["metadata"]["name"] for c in claims) == [f"data-{name}-{i}" for i in range(REPLICAS)]

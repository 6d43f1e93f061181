"""The kubelet's Node: registered with generous capacity, kept Ready by status updates and a Lease."""

from __future__ import annotations

import datetime
import platform

from testenv.kubeapi import ApiError, KubeApi, Obj
from testenv.kubelet.containers import now_rfc3339
from testenv.toolchain import KUBERNETES_VERSION

CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
LEASE_SECONDS = 40
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def node_object(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/process-kubelet": "",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
    }


def node_status(address: str, name: str) -> Obj:
    now = now_rfc3339()

    def condition(kind: str, status: str, reason: str) -> Obj:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": f"process kubelet: {reason}",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "capacity": CAPACITY,
        "allocatable": CAPACITY,
        "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID"),
            condition("Ready", "True", "KubeletReady"),
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": "process kubelet (petcd testenv)",
            "containerRuntimeVersion": "process://1",
            "kubeletVersion": KUBERNETES_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


class NodeAgent:
    def __init__(self, api: KubeApi, name: str, address: str) -> None:
        self.api, self.name, self.address = api, name, address
        self._transition: dict[str, str] = {}

    def register(self) -> None:
        if self.api.get_or_none(f"/api/v1/nodes/{self.name}") is None:
            self.api.create("/api/v1/nodes", node_object(self.name))
        self.heartbeat()
        node = self.api.get(f"/api/v1/nodes/{self.name}")
        taints = [t for t in node["spec"].get("taints", []) if t["key"] != NOT_READY_TAINT]
        if len(taints) != len(node["spec"].get("taints", [])):
            # Admission taints every new Node not-ready; the node-lifecycle controller is off here.
            self.api.merge_patch(f"/api/v1/nodes/{self.name}", {"spec": {"taints": taints or None}})

    def heartbeat(self) -> None:
        status = node_status(self.address, self.name)
        for condition in status["conditions"]:
            first = self._transition.setdefault(condition["type"], condition["lastTransitionTime"])
            condition["lastTransitionTime"] = first
        self.api.merge_patch(f"/api/v1/nodes/{self.name}/status", {"status": status})
        self._renew_lease()

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now}
        try:
            self.api.merge_patch(path, {"spec": spec})
        except ApiError as error:
            if error.status != 404:
                raise
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": self.name}}
            self.api.create(path.rsplit("/", 1)[0], {**lease, "spec": spec})

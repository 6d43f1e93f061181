"""The Kubernetes side of the shell: read the owned objects, pods and PVCs; create, patch, delete.

Thin wrappers over the official client; all decisions are made elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from petcd_operator.manifests import HASH_ANNOTATION, Object, selector_string, statefulset_update
from petcd_operator.spec import GROUP, PLURAL, VERSION, ClusterSpec
from petcd_operator.state import PodObs, PvcObs, StatefulSetObs

JSON_PATCH = "application/json-patch+json"


def load_config() -> None:
    """In-cluster credentials when running as a Pod, else the kubeconfig (KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def _ordinal(name: str, prefix: str) -> int | None:
    match = re.fullmatch(rf"{re.escape(prefix)}-(\d+)", name)
    return int(match.group(1)) if match else None


def _missing(error: ApiException) -> bool:
    return bool(error.status == 404)


class Kube:
    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.policy = client.PolicyV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    # --- the resource itself ---------------------------------------------------------------------
    def read_cluster(self, namespace: str, name: str) -> dict[str, Any]:
        body: Any = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return dict(body)

    def replace_status(self, spec: ClusterSpec, status: Mapping[str, Any]) -> None:
        # JSON patch "add /status" replaces the whole status, so removed keys really go away.
        patch = [{"op": "add", "path": "/status", "value": dict(status)}]
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, spec.namespace, PLURAL, spec.name, patch, _content_type=JSON_PATCH
        )

    # --- reading the owned objects ---------------------------------------------------------------
    def _read(self, kind: str, namespace: str, name: str) -> Any:
        readers = {
            "Service": self.core.read_namespaced_service,
            "ConfigMap": self.core.read_namespaced_config_map,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "PodDisruptionBudget": self.policy.read_namespaced_pod_disruption_budget,
        }
        try:
            return readers[kind](name, namespace)
        except ApiException as error:
            if _missing(error):
                return None
            raise

    def object_hashes(self, spec: ClusterSpec, keys: list[str]) -> dict[str, str]:
        hashes = {}
        for key in keys:
            kind, name = key.split("/", 1)
            found = self._read(kind, spec.namespace, name)
            if found is not None:
                hashes[key] = (found.metadata.annotations or {}).get(HASH_ANNOTATION, "")
        return hashes

    def statefulset(self, spec: ClusterSpec) -> StatefulSetObs | None:
        sts = self._read("StatefulSet", spec.namespace, spec.name)
        if sts is None:
            return None
        return StatefulSetObs(
            replicas=sts.spec.replicas or 0,
            update_revision=(sts.status.update_revision if sts.status else "") or "",
            ready_replicas=(sts.status.ready_replicas if sts.status else 0) or 0,
        )

    def pods(self, spec: ClusterSpec) -> list[PodObs]:
        listed: list[Any] = self.core.list_namespaced_pod(
            spec.namespace, label_selector=selector_string(spec)
        ).items
        out = []
        for pod in listed:
            ordinal = _ordinal(pod.metadata.name, spec.name)
            if ordinal is None:
                continue
            conditions = (pod.status.conditions if pod.status else None) or []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            out.append(
                PodObs(
                    ordinal=ordinal,
                    uid=pod.metadata.uid,
                    ready=ready,
                    revision=(pod.metadata.labels or {}).get("controller-revision-hash", ""),
                    deleting=pod.metadata.deletion_timestamp is not None,
                    ip=(pod.status.pod_ip if pod.status else "") or "",
                )
            )
        return sorted(out, key=lambda p: p.ordinal)

    def pvcs(self, spec: ClusterSpec) -> list[PvcObs]:
        listed: list[Any] = self.core.list_namespaced_persistent_volume_claim(spec.namespace).items
        out = []
        for pvc in listed:
            ordinal = _ordinal(pvc.metadata.name, f"data-{spec.name}")
            if ordinal is not None:
                requests = (pvc.spec.resources.requests if pvc.spec and pvc.spec.resources else None) or {}
                deleting = pvc.metadata.deletion_timestamp is not None
                out.append(PvcObs(ordinal, pvc.metadata.uid, deleting, str(requests.get("storage", ""))))
        return sorted(out, key=lambda p: p.ordinal)

    # --- changing them ---------------------------------------------------------------------------
    def apply(self, obj: Object) -> None:
        """Create the object, or bring an existing one in line with a merge patch."""
        kind, namespace, name = obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
        operations: dict[str, tuple[Any, Any]] = {
            "Service": (self.core.create_namespaced_service, self.core.patch_namespaced_service),
            "ConfigMap": (self.core.create_namespaced_config_map, self.core.patch_namespaced_config_map),
            "StatefulSet": (
                self.apps.create_namespaced_stateful_set,
                self.apps.patch_namespaced_stateful_set,
            ),
            "PodDisruptionBudget": (
                self.policy.create_namespaced_pod_disruption_budget,
                self.policy.patch_namespaced_pod_disruption_budget,
            ),
        }
        create, patch = operations[kind]
        if self._read(kind, namespace, name) is None:
            try:
                create(namespace, obj)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
        if kind == "StatefulSet":
            patch(name, namespace, statefulset_update(obj), _content_type=JSON_PATCH)
        else:
            patch(name, namespace, obj)

    def scale_statefulset(self, spec: ClusterSpec, replicas: int) -> None:
        self.apps.patch_namespaced_stateful_set(spec.name, spec.namespace, {"spec": {"replicas": replicas}})

    def delete_pod(self, spec: ClusterSpec, ordinal: int, uid: str | None = None) -> None:
        body = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid) if uid else None)
        try:
            self.core.delete_namespaced_pod(spec.pod_name(ordinal), spec.namespace, body=body)
        except ApiException as error:
            if not _missing(error) and error.status != 409:  # gone, or already replaced (uid changed)
                raise

    def resize_pvc(self, spec: ClusterSpec, ordinal: int, size: str) -> None:
        body = {"spec": {"resources": {"requests": {"storage": size}}}}
        self.core.patch_namespaced_persistent_volume_claim(spec.pvc_name(ordinal), spec.namespace, body)

    def delete_pvc(self, spec: ClusterSpec, ordinal: int) -> None:
        try:
            self.core.delete_namespaced_persistent_volume_claim(spec.pvc_name(ordinal), spec.namespace)
        except ApiException as error:
            if not _missing(error):
                raise

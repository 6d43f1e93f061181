"""Pure: ClusterSpec (+ the recorded bootstrap facts and the live member list) -> Kubernetes objects.

Each object carries a `petcd.io/spec-hash` annotation of its rendered content, so drift is a string
comparison. Data PVCs never get an owner reference (deleting the resource must not delete data,
unless `pvcRetentionPolicy.whenDeleted: Delete` asks for it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from petcd_operator.spec import (
    CLIENT_PORT,
    DATA_DIR,
    DATA_MOUNT,
    GROUP,
    KIND,
    PEER_PORT,
    VERSION,
    ClusterSpec,
    quorum,
)
from petcd_operator.state import MembersObs, Recorded

HASH_ANNOTATION = f"{GROUP}/spec-hash"
CLUSTER_LABEL = f"{GROUP}/cluster"
PETCD_UID = 10001
Object = dict[str, Any]


def selector_labels(spec: ClusterSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": "etcd", CLUSTER_LABEL: spec.name}


def selector_string(spec: ClusterSpec) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(spec).items()))


def common_labels(spec: ClusterSpec) -> dict[str, str]:
    return {
        **selector_labels(spec),
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/managed-by": "petcd-operator",
    }


def owner_reference(spec: ClusterSpec) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": spec.name,
        "uid": spec.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def spec_hash(obj: Object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _finish(
    spec: ClusterSpec, api_version: str, kind: str, name: str, body: Object, hashed: Object
) -> Object:
    """Wrap `body` as an owned object whose hash covers `hashed` (the part the operator keeps in sync)."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": spec.namespace,
            "labels": common_labels(spec),
            "annotations": {HASH_ANNOTATION: spec_hash(hashed)},
            "ownerReferences": [owner_reference(spec)],
        },
        **body,
    }


def key(obj: Object) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _ports() -> list[dict[str, Any]]:
    # The names give the SRV records `_etcd-server._tcp` and `_etcd-client._tcp` (etcd's discovery-srv).
    return [
        {"name": "etcd-client", "port": CLIENT_PORT, "targetPort": CLIENT_PORT, "protocol": "TCP"},
        {"name": "etcd-server", "port": PEER_PORT, "targetPort": PEER_PORT, "protocol": "TCP"},
    ]


def headless_service(spec: ClusterSpec) -> Object:
    body = {
        "spec": {
            "clusterIP": "None",
            # Peers must resolve each other before they are Ready, or bootstrap never completes.
            "publishNotReadyAddresses": True,
            "selector": selector_labels(spec),
            "ports": _ports(),
        }
    }
    return _finish(spec, "v1", "Service", spec.headless_service, body, body)


def client_service(spec: ClusterSpec) -> Object:
    body = {"spec": {"type": "ClusterIP", "selector": selector_labels(spec), "ports": _ports()[:1]}}
    return _finish(spec, "v1", "Service", spec.client_service, body, body)


def initial_cluster(
    spec: ClusterSpec, recorded: Recorded, members: MembersObs | None
) -> tuple[str, str] | None:
    """(ETCD_INITIAL_CLUSTER, ETCD_INITIAL_CLUSTER_STATE) for pods starting now, or None if unknown.

    Before the cluster ID is recorded only the bootstrap members exist: `new`. Afterwards every pod
    that starts with an empty data dir joins a member the operator added first: `existing`, with
    exactly the live membership (etcd checks the list against the cluster's).
    """
    if recorded.cluster_id == 0:
        pairs = [(o, spec.peer_url(o)) for o in range(recorded.bootstrap_replicas)]
        return ",".join(f"{spec.pod_name(o)}={url}" for o, url in pairs), "new"
    if members is None:
        return None
    entries: list[tuple[int, str, str]] = []
    for member in members.members:
        for url in member.peer_urls:
            ordinal = spec.ordinal_of_peer_url(url)
            name = spec.pod_name(ordinal) if ordinal is not None else member.name
            entries.append((ordinal if ordinal is not None else 1 << 30, name, url))
    return ",".join(f"{name}={url}" for _, name, url in sorted(entries)), "existing"


def config_map(spec: ClusterSpec, recorded: Recorded, members: MembersObs | None) -> Object | None:
    bootstrap = initial_cluster(spec, recorded, members)
    if bootstrap is None:
        return None
    cluster, state = bootstrap
    body = {
        "data": {
            "ETCD_INITIAL_CLUSTER": cluster,
            "ETCD_INITIAL_CLUSTER_STATE": state,
            "ETCD_INITIAL_CLUSTER_TOKEN": spec.token,
        }
    }
    return _finish(spec, "v1", "ConfigMap", spec.config_map, body, body)


def member_env(spec: ClusterSpec) -> list[dict[str, Any]]:
    """ETCD_* variables shared by every member; the initial-cluster ones come from the ConfigMap."""
    host = f"$(POD_NAME).{spec.srv_domain}"
    values: list[tuple[str, str]] = [
        ("ETCD_NAME", "$(POD_NAME)"),
        ("ETCD_DATA_DIR", DATA_DIR),
        ("ETCD_LISTEN_PEER_URLS", f"http://0.0.0.0:{PEER_PORT}"),
        ("ETCD_LISTEN_CLIENT_URLS", f"http://0.0.0.0:{CLIENT_PORT}"),
        ("ETCD_INITIAL_ADVERTISE_PEER_URLS", f"http://{host}:{PEER_PORT}"),
        ("ETCD_ADVERTISE_CLIENT_URLS", f"http://{host}:{CLIENT_PORT}"),
        ("ETCD_HEARTBEAT_INTERVAL", str(spec.heartbeat_interval_ms)),
        ("ETCD_ELECTION_TIMEOUT", str(spec.election_timeout_ms)),
    ]
    if spec.quota_backend_bytes:
        values.append(("ETCD_QUOTA_BACKEND_BYTES", str(spec.quota_backend_bytes)))
    if spec.auto_compaction.retention:
        values.append(("ETCD_AUTO_COMPACTION_MODE", spec.auto_compaction.mode))
        values.append(("ETCD_AUTO_COMPACTION_RETENTION", spec.auto_compaction.retention))
    for flag, value in sorted(spec.options.items()):
        values.append(("ETCD_" + flag.upper().replace("-", "_"), value))
    pod_name = {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    return [pod_name, *({"name": n, "value": v} for n, v in values)]


def probes(spec: ClusterSpec) -> dict[str, Any]:
    """Liveness checks only the local process (never quorum); readiness is the member's /readyz."""
    if not spec.has_health_endpoints:
        # etcd before 3.5.11 has no /livez or /readyz: /health for readiness, the socket for the rest.
        tcp = {"tcpSocket": {"port": CLIENT_PORT}}
        return {
            "startupProbe": {**tcp, "periodSeconds": 5, "failureThreshold": 60},
            "readinessProbe": {"httpGet": {"path": "/health", "port": CLIENT_PORT}, "periodSeconds": 5},
            "livenessProbe": {**tcp, "periodSeconds": 10, "failureThreshold": 6},
        }

    def http(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": CLIENT_PORT}}

    # A learner is never "ready" (non_learner, linearizable_read), but it has started: the startup
    # probe must not restart it while it catches up.
    return {
        "startupProbe": {
            **http("/readyz?exclude=non_learner&exclude=linearizable_read"),
            "periodSeconds": 5,
            "failureThreshold": 60,
        },
        "readinessProbe": {**http("/readyz"), "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**http("/livez"), "periodSeconds": 10, "failureThreshold": 6},
    }


def pod_template(spec: ClusterSpec) -> Object:
    container: dict[str, Any] = {
        "name": "etcd",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [spec.flavor],
        "ports": [
            {"name": "etcd-client", "containerPort": CLIENT_PORT, "protocol": "TCP"},
            {"name": "etcd-server", "containerPort": PEER_PORT, "protocol": "TCP"},
        ],
        "env": member_env(spec),
        "envFrom": [{"configMapRef": {"name": spec.config_map}}],
        "volumeMounts": [{"name": "data", "mountPath": DATA_MOUNT}],
        **probes(spec),
    }
    if spec.resources:
        container["resources"] = dict(spec.resources)
    pod_spec: dict[str, Any] = {
        "containers": [container],
        # Service links would inject ETCD_* variables named after a Service called "etcd".
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 30,
    }
    if spec.flavor == "petcd":
        pod_spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": PETCD_UID, "fsGroup": PETCD_UID}
    if spec.storage.ephemeral:
        pod_spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    overrides = spec.pod
    optional: dict[str, Any] = {
        "affinity": overrides.affinity,
        "tolerations": list(overrides.tolerations),
        "nodeSelector": dict(overrides.node_selector),
        "topologySpreadConstraints": list(overrides.topology_spread_constraints),
        "priorityClassName": overrides.priority_class_name,
    }
    pod_spec.update({k: v for k, v in optional.items() if v})
    metadata: dict[str, Any] = {"labels": {**overrides.labels, **common_labels(spec)}}
    if overrides.annotations:
        metadata["annotations"] = dict(overrides.annotations)
    return {"metadata": metadata, "spec": pod_spec}


def statefulset(spec: ClusterSpec, replicas: int) -> Object:
    """The members' StatefulSet. `replicas` is used on creation only: later the operator moves it ±1.

    OnDelete: the operator restarts pods itself, unhealthy first and the leader last. Parallel: a
    full restart must not wait for pod-0 to be Ready, which needs quorum (operator-lessons §1.3).
    """
    managed: dict[str, Any] = {
        "template": pod_template(spec),
        "updateStrategy": {"type": "OnDelete"},
        "persistentVolumeClaimRetentionPolicy": {
            "whenDeleted": spec.pvc_retention.when_deleted,
            # Scale-down PVCs are deleted by the operator as a recorded step, after the pod is gone.
            "whenScaled": "Retain",
        },
    }
    fixed: dict[str, Any] = {
        "serviceName": spec.headless_service,
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": selector_labels(spec)},
    }
    if not spec.storage.ephemeral:
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": spec.storage.size}},
        }
        if spec.storage.storage_class_name:
            claim_spec["storageClassName"] = spec.storage.storage_class_name
        fixed["volumeClaimTemplates"] = [
            {"metadata": {"name": "data", "labels": selector_labels(spec)}, "spec": claim_spec}
        ]
    body = {"spec": {"replicas": replicas, **fixed, **managed}}
    return _finish(spec, "apps/v1", "StatefulSet", spec.name, body, managed)


def statefulset_update(obj: Object) -> list[dict[str, Any]]:
    """The JSON patch that brings an existing StatefulSet in line.

    Whole-value replacement (not a strategic merge, which would keep env entries we dropped); the
    other spec fields are immutable and replicas belong to the planner.
    """
    escaped = HASH_ANNOTATION.replace("~", "~0").replace("/", "~1")
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": f"/spec/{field}", "value": obj["spec"][field]}
        for field in ("template", "updateStrategy", "persistentVolumeClaimRetentionPolicy")
    ]
    ops.append({"op": "add", "path": "/metadata/labels", "value": obj["metadata"]["labels"]})
    ops.append(
        {
            "op": "add",
            "path": f"/metadata/annotations/{escaped}",
            "value": obj["metadata"]["annotations"][HASH_ANNOTATION],
        }
    )
    return ops


def pod_disruption_budget(spec: ClusterSpec) -> Object:
    min_available = spec.pdb_min_available if spec.pdb_min_available is not None else quorum(spec.replicas)
    body = {"spec": {"minAvailable": min_available, "selector": {"matchLabels": selector_labels(spec)}}}
    return _finish(spec, "policy/v1", "PodDisruptionBudget", spec.name, body, body)


def desired_objects(
    spec: ClusterSpec, recorded: Recorded, members: MembersObs | None, statefulset_replicas: int
) -> dict[str, Object]:
    """Every object the operator owns for this cluster, by key (the ConfigMap only when computable)."""
    objects: list[Object | None] = [
        headless_service(spec),
        client_service(spec),
        config_map(spec, recorded, members),
        statefulset(spec, statefulset_replicas),
        pod_disruption_budget(spec) if spec.pdb_enabled else None,
    ]
    return {key(o): o for o in objects if o is not None}


def desired_hashes(objects: dict[str, Object]) -> dict[str, str]:
    return {k: o["metadata"]["annotations"][HASH_ANNOTATION] for k, o in objects.items()}

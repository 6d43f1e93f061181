"""Pure: an EtcdCluster resource -> one validated, defaulted ClusterSpec, plus the naming rules.

Every other module works on ClusterSpec, never on the raw resource, so defaults live in one place
(and match the CRD's schema defaults, which a test checks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from petcd_operator import __version__

GROUP = "petcd.io"
VERSION = "v1alpha1"
PLURAL = "etcdclusters"
KIND = "EtcdCluster"

DEFAULT_IMAGE_REPOSITORY = "petcd/petcd"
CLIENT_PORT = 2379
PEER_PORT = 2380
DATA_MOUNT = "/var/lib/etcd"
DATA_DIR = f"{DATA_MOUNT}/data"

# Flags the operator sets itself: `spec.options` may not override them (the CRD refuses them too).
MANAGED_FLAGS = frozenset(
    {
        "name",
        "data-dir",
        "wal-dir",
        "initial-cluster",
        "initial-cluster-state",
        "initial-cluster-token",
        "initial-advertise-peer-urls",
        "advertise-client-urls",
        "listen-peer-urls",
        "listen-client-urls",
        "discovery",
        "discovery-srv",
        "force-new-cluster",
    }
)


class SpecError(ValueError):
    """The resource's spec cannot be run (the CRD's validation should have refused it)."""


@dataclass(frozen=True)
class Storage:
    size: str = "1Gi"
    storage_class_name: str | None = None
    ephemeral: bool = False


@dataclass(frozen=True)
class PodOverrides:
    affinity: Mapping[str, Any] | None = None
    tolerations: tuple[Mapping[str, Any], ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    topology_spread_constraints: tuple[Mapping[str, Any], ...] = ()
    priority_class_name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PvcRetention:
    when_scaled: str = "Delete"  # Delete | Retain: the PVC of a member removed by a scale-down
    when_deleted: str = "Retain"  # Retain | Delete: the PVCs when the EtcdCluster is deleted


@dataclass(frozen=True)
class AutoCompaction:
    mode: str = "periodic"
    retention: str = ""  # "" = etcd's default (off)


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    namespace: str
    uid: str
    generation: int = 1
    replicas: int = 3
    image: str = f"{DEFAULT_IMAGE_REPOSITORY}:{__version__}"
    version: str = __version__
    storage: Storage = Storage()
    resources: Mapping[str, Any] = field(default_factory=dict)
    pod: PodOverrides = PodOverrides()
    options: Mapping[str, str] = field(default_factory=dict)
    pdb_enabled: bool = True
    pdb_min_available: int | None = None
    pvc_retention: PvcRetention = PvcRetention()
    heartbeat_interval_ms: int = 100
    election_timeout_ms: int = 1000
    quota_backend_bytes: int = 0
    auto_compaction: AutoCompaction = AutoCompaction()
    cluster_domain: str = "cluster.local"

    # --- names -----------------------------------------------------------------------------------
    @property
    def headless_service(self) -> str:
        return self.name

    @property
    def client_service(self) -> str:
        return f"{self.name}-client"

    @property
    def config_map(self) -> str:
        return f"{self.name}-config"

    @property
    def token(self) -> str:
        """The initial-cluster-token: unique per resource, so two clusters never merge."""
        return f"{self.name}-{self.uid}"

    @property
    def srv_domain(self) -> str:
        """The domain for `--discovery-srv`: `_etcd-server._tcp.<this>` lists the peers."""
        return f"{self.headless_service}.{self.namespace}.svc.{self.cluster_domain}"

    def pod_name(self, ordinal: int) -> str:
        return f"{self.name}-{ordinal}"

    def pvc_name(self, ordinal: int) -> str:
        return f"data-{self.name}-{ordinal}"

    def host(self, ordinal: int) -> str:
        return f"{self.pod_name(ordinal)}.{self.srv_domain}"

    def peer_url(self, ordinal: int) -> str:
        return f"http://{self.host(ordinal)}:{PEER_PORT}"

    def client_url(self, ordinal: int) -> str:
        return f"http://{self.host(ordinal)}:{CLIENT_PORT}"

    def ordinal_of_peer_url(self, url: str) -> int | None:
        """The ordinal whose deterministic peer URL this is, or None for a foreign member."""
        match = re.fullmatch(
            rf"http://{re.escape(self.name)}-(\d+)\.{re.escape(self.srv_domain)}:{PEER_PORT}", url
        )
        return int(match.group(1)) if match else None

    # --- image -----------------------------------------------------------------------------------
    @property
    def flavor(self) -> str:
        """`petcd` for the petcd image, `etcd` for an upstream etcd image (decides command and probes)."""
        repository = self.image.rsplit("@", 1)[0]
        if ":" in repository.rsplit("/", 1)[-1]:
            repository = repository.rsplit(":", 1)[0]
        return "petcd" if repository.rsplit("/", 1)[-1] == "petcd" else "etcd"

    @property
    def has_health_endpoints(self) -> bool:
        """Whether the members serve /livez and /readyz (petcd, etcd >= 3.5.11)."""
        if self.flavor == "petcd":
            return True
        return version_tuple(self.version) >= (3, 5, 11)


def version_tuple(version: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", version.split("-", 1)[0])
    return tuple(int(n) for n in numbers[:3]) if numbers else (0,)


_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "": 1,
}


def quantity_bytes(quantity: str) -> float:
    """A Kubernetes storage quantity ("1Gi", "500M", "1e9") in bytes."""
    match = re.fullmatch(r"([0-9.]+(?:[eE][0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|)", quantity.strip())
    if not match:
        raise SpecError(f"not a storage quantity: {quantity!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def quorum(voters: int) -> int:
    return voters // 2 + 1


def _image_and_version(spec: Mapping[str, Any], default_image: str) -> tuple[str, str]:
    image = spec.get("image")
    version = spec.get("version")
    if not image:
        repository = (
            default_image.rsplit(":", 1)[0] if ":" in default_image.rsplit("/", 1)[-1] else default_image
        )
        return (f"{repository}:{version}", str(version)) if version else (default_image, _tag(default_image))
    return str(image), str(version) if version else _tag(str(image))


def _tag(image: str) -> str:
    last = image.rsplit("@", 1)[0].rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1].lstrip("v") if ":" in last else "latest"


def parse(
    body: Mapping[str, Any],
    *,
    default_image: str = f"{DEFAULT_IMAGE_REPOSITORY}:{__version__}",
    cluster_domain: str = "cluster.local",
) -> ClusterSpec:
    """Read an EtcdCluster body (as the API returns it) into a ClusterSpec, filling every default."""
    meta = body.get("metadata", {})
    spec: Mapping[str, Any] = body.get("spec") or {}
    image, version = _image_and_version(spec, default_image)
    storage = spec.get("storage") or {}
    pod = spec.get("pod") or {}
    pdb = spec.get("pdb") or {}
    retention = spec.get("pvcRetentionPolicy") or {}
    compaction = spec.get("autoCompaction") or {}
    options = {str(k): str(v) for k, v in (spec.get("options") or {}).items()}
    refused = sorted(set(options) & MANAGED_FLAGS)
    if refused:
        raise SpecError(f"spec.options may not set {', '.join(refused)}: the operator manages them")
    replicas = int(spec.get("replicas", 3))
    if replicas < 1:
        raise SpecError("spec.replicas must be at least 1")
    return ClusterSpec(
        name=str(meta["name"]),
        namespace=str(meta.get("namespace", "default")),
        uid=str(meta.get("uid", "")),
        generation=int(meta.get("generation", 1)),
        replicas=replicas,
        image=image,
        version=version,
        storage=Storage(
            size=str(storage.get("size", "1Gi")),
            storage_class_name=storage.get("storageClassName"),
            ephemeral=bool(storage.get("ephemeral", False)),
        ),
        resources=dict(spec.get("resources") or {}),
        pod=PodOverrides(
            affinity=pod.get("affinity"),
            tolerations=tuple(pod.get("tolerations") or ()),
            node_selector=dict(pod.get("nodeSelector") or {}),
            topology_spread_constraints=tuple(pod.get("topologySpreadConstraints") or ()),
            priority_class_name=pod.get("priorityClassName"),
            labels=dict(pod.get("labels") or {}),
            annotations=dict(pod.get("annotations") or {}),
        ),
        options=options,
        pdb_enabled=bool(pdb.get("enabled", True)),
        pdb_min_available=pdb.get("minAvailable"),
        pvc_retention=PvcRetention(
            when_scaled=str(retention.get("whenScaled", "Delete")),
            when_deleted=str(retention.get("whenDeleted", "Retain")),
        ),
        heartbeat_interval_ms=int(spec.get("heartbeatInterval", 100)),
        election_timeout_ms=int(spec.get("electionTimeout", 1000)),
        quota_backend_bytes=int(spec.get("quotaBackendBytes", 0)),
        auto_compaction=AutoCompaction(
            mode=str(compaction.get("mode", "periodic")), retention=str(compaction.get("retention", ""))
        ),
        cluster_domain=cluster_domain,
    )

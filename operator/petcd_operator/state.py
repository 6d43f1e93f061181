"""Pure data: what the operator observed of one cluster, and what it recorded in the resource's status.

The shells (kube.py, members.py) fill these from the world; the planner and the status summary
read them. Conversion to and from the status JSON lives here so the shape is in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class MemberObs:
    """One entry of the live member list, joined (by member ID) with that member's Status answer."""

    id: int
    name: str  # "" until the member has started and published itself
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...] = ()
    learner: bool = False
    healthy: bool = False  # answered Status with a leader and no errors
    raft_index: int = 0  # 0 = unknown
    version: str = ""

    @property
    def started(self) -> bool:
        return bool(self.name)


@dataclass(frozen=True)
class MembersObs:
    """The member list as one reachable member reported it (None in Observed = none answered)."""

    members: tuple[MemberObs, ...]
    cluster_id: int
    leader_id: int  # 0 = no leader known

    def by_id(self, member_id: int) -> MemberObs | None:
        return next((m for m in self.members if m.id == member_id), None)


@dataclass(frozen=True)
class PodObs:
    ordinal: int
    uid: str
    ready: bool = False
    revision: str = ""  # the controller-revision-hash label
    deleting: bool = False
    ip: str = ""


@dataclass(frozen=True)
class PvcObs:
    ordinal: int
    uid: str
    deleting: bool = False
    size: str = ""  # spec.resources.requests.storage ("" = unknown)


@dataclass(frozen=True)
class StatefulSetObs:
    replicas: int
    update_revision: str = ""
    ready_replicas: int = 0


@dataclass(frozen=True)
class Observed:
    statefulset: StatefulSetObs | None = None
    pods: tuple[PodObs, ...] = ()
    pvcs: tuple[PvcObs, ...] = ()
    members: MembersObs | None = None
    # object key ("Service/x") -> the spec-hash annotation it carries (absent = object missing)
    object_hashes: Mapping[str, str] = field(default_factory=dict)

    def pod(self, ordinal: int) -> PodObs | None:
        return next((p for p in self.pods if p.ordinal == ordinal), None)

    def pvc(self, ordinal: int) -> PvcObs | None:
        return next((p for p in self.pvcs if p.ordinal == ordinal), None)


@dataclass(frozen=True)
class Operation:
    """The membership operation in progress, written to status before each of its mutations."""

    type: str  # ScaleUp | ScaleDown | Replace | Roll
    ordinal: int
    peer_url: str
    member_id: int = 0  # Replace: the member ID being replaced
    volume_uid: str = ""  # Replace: the PVC (or, for ephemeral storage, pod) UID being replaced
    pod_uid: str = ""  # Replace / Roll: the pod to delete
    step: str = ""  # the step being performed, for humans and for the crash tests
    started_at: float = 0.0

    def to_status(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "ordinal": self.ordinal,
            "peerURL": self.peer_url,
            "memberID": f"{self.member_id:x}" if self.member_id else "",
            "volumeUID": self.volume_uid,
            "podUID": self.pod_uid,
            "step": self.step,
            "startedAt": format_time(self.started_at),
        }

    @classmethod
    def from_status(cls, data: Mapping[str, Any]) -> Operation:
        member_id = str(data.get("memberID") or "")
        return cls(
            type=str(data["type"]),
            ordinal=int(data["ordinal"]),
            peer_url=str(data.get("peerURL", "")),
            member_id=int(member_id, 16) if member_id else 0,
            volume_uid=str(data.get("volumeUID", "")),
            pod_uid=str(data.get("podUID", "")),
            step=str(data.get("step", "")),
            started_at=parse_time(str(data.get("startedAt", ""))),
        )


@dataclass(frozen=True)
class Recorded:
    """What the operator itself wrote into status: the facts it must not guess again."""

    bootstrap_replicas: int = 0  # 0 = objects never created
    cluster_id: int = 0  # 0 = the cluster never formed: pods start with initial-cluster-state=new
    operation: Operation | None = None
    volumes: Mapping[int, str] = field(default_factory=dict)  # ordinal -> data volume UID it joined with

    def with_operation(self, operation: Operation | None) -> Recorded:
        return replace(self, operation=operation)

    def to_status(self) -> dict[str, Any]:
        return {
            "bootstrapReplicas": self.bootstrap_replicas,
            "clusterID": f"{self.cluster_id:x}" if self.cluster_id else "",
            "operation": self.operation.to_status() if self.operation else None,
            "volumes": {str(k): v for k, v in sorted(self.volumes.items())},
        }

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Recorded:
        cluster_id = str(status.get("clusterID") or "")
        operation = status.get("operation")
        return cls(
            bootstrap_replicas=int(status.get("bootstrapReplicas") or 0),
            cluster_id=int(cluster_id, 16) if cluster_id else 0,
            operation=Operation.from_status(operation) if operation else None,
            volumes={int(k): str(v) for k, v in (status.get("volumes") or {}).items()},
        )


def format_time(seconds: float) -> str:
    if not seconds:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    if not text:
        return 0.0
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()

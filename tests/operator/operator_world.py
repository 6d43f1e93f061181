"""A small model of what the operator talks to: the StatefulSet controller, pods, PVCs and etcd's
member list, with etcd's rules for membership changes. It implements the reconciler's ClusterAccess,
so the real reconcile loop and planner run against it; `crash_at` makes `perform` raise before the
N-th mutation, which is how the tests kill the operator between any two steps.

Rules that matter for correctness are enforced here as etcd and Kubernetes enforce them: a removal
that leaves no quorum is refused, a learner cannot be promoted before it started, at most one learner.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from petcd_operator.manifests import HASH_ANNOTATION, Object
from petcd_operator.planner import (
    AddLearner,
    ApplyObjects,
    DeletePVC,
    MoveLeader,
    PromoteLearner,
    RemoveMember,
    ReplacePod,
    ResizePVC,
    RollPod,
    ScaleStatefulSet,
    Step,
)
from petcd_operator.spec import ClusterSpec, quorum
from petcd_operator.state import MemberObs, MembersObs, Observed, PodObs, PvcObs, StatefulSetObs


class Crash(Exception):
    """The operator died before performing a step."""


class EtcdRefused(Exception):
    """etcd (in the model) refused a membership change the operator should not have asked for."""


@dataclass
class Member:
    id: int
    peer_url: str
    learner: bool
    started: bool = False
    name: str = ""
    down: bool = False
    pvc_uid: str = ""  # the data volume it started on


@dataclass
class Pod:
    uid: str
    revision: str
    pvc_uid: str


@dataclass
class World:
    spec: ClusterSpec
    status: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, Object] = field(default_factory=dict)
    sts_replicas: int | None = None
    template_revision: str = "rev1"
    pods: dict[int, Pod] = field(default_factory=dict)
    pvcs: dict[int, str] = field(default_factory=dict)
    pvc_deleting: set[int] = field(default_factory=set)
    pvc_sizes: dict[int, str] = field(default_factory=dict)
    pvc_owner: dict[str, int] = field(default_factory=dict)  # volume UID -> the member whose data it holds
    members: list[Member] = field(default_factory=list)
    leader: int = 0
    cluster_id: int = 0
    performed: list[Step] = field(default_factory=list)
    events: list[tuple[str, str, bool]] = field(default_factory=list)
    crash_at: int | None = None  # raise Crash instead of performing the mutation with this index
    unreachable: bool = False
    learners_never_start: bool = False
    uids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(0x101))

    # --- ClusterAccess ---------------------------------------------------------------------------
    def observe(self, spec: ClusterSpec) -> Observed:
        self.spec = spec
        self.settle()
        members = None
        if not self.unreachable and self.cluster_id:
            members = MembersObs(
                tuple(
                    MemberObs(
                        id=m.id,
                        name=m.name,
                        peer_urls=(m.peer_url,),
                        learner=m.learner,
                        healthy=m.started and not m.down and self.leader != 0,
                        raft_index=100 if m.started else 0,
                        version="3.5.0",
                    )
                    for m in self.members
                ),
                cluster_id=self.cluster_id,
                leader_id=self.leader,
            )
        sts = self.objects.get(f"StatefulSet/{spec.name}")
        return Observed(
            statefulset=StatefulSetObs(self.sts_replicas or 0, self.template_revision, len(self.ready()))
            if sts
            else None,
            pods=tuple(
                PodObs(o, p.uid, ready=o in self.ready(), revision=p.revision, ip=f"10.0.0.{o}")
                for o, p in sorted(self.pods.items())
            ),
            pvcs=tuple(
                PvcObs(o, u, deleting=o in self.pvc_deleting, size=self.pvc_sizes.get(o, ""))
                for o, u in sorted(self.pvcs.items())
            ),
            members=members,
            object_hashes={k: o["metadata"]["annotations"][HASH_ANNOTATION] for k, o in self.objects.items()},
        )

    def write_status(self, status: Mapping[str, Any]) -> None:
        self.status = dict(status)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append((reason, message, warning))

    def perform(self, spec: ClusterSpec, step: Step, objects: Mapping[str, Object]) -> None:
        if self.crash_at is not None and len(self.performed) == self.crash_at:
            self.crash_at = None
            raise Crash(step.name)
        self.performed.append(step)
        if isinstance(step, ApplyObjects):
            for key in step.keys:
                if key.startswith("StatefulSet/") and key in self.objects:
                    # Only the template is patched: the claim template and replicas stay.
                    template = objects[key]["spec"]["template"]
                    self.objects[key] = {
                        **self.objects[key],
                        "spec": {**self.objects[key]["spec"], "template": template},
                    }
                    self.objects[key]["metadata"] = objects[key]["metadata"]
                    continue
                if key.startswith("StatefulSet/"):
                    self.sts_replicas = step.statefulset_replicas
                self.objects[key] = dict(objects[key])
        elif isinstance(step, ScaleStatefulSet):
            self.sts_replicas = step.replicas
        elif isinstance(step, AddLearner):
            self.add_learner(step.peer_url)
        elif isinstance(step, PromoteLearner):
            self.promote(step.member_id)
        elif isinstance(step, MoveLeader):
            target = self.member(step.to_id)
            if self.leader != step.from_id or target is None or target.learner or not target.started:
                raise EtcdRefused("bad leader transferee")
            self.leader = step.to_id
        elif isinstance(step, RemoveMember):
            self.remove(step.member_id)
        elif isinstance(step, DeletePVC):
            if step.ordinal in self.pods:
                self.pvc_deleting.add(step.ordinal)  # pvc-protection holds it while a pod uses it
            else:
                self.pvcs.pop(step.ordinal, None)
        elif isinstance(step, ResizePVC):
            self.pvc_sizes[step.ordinal] = step.size
        elif isinstance(step, ReplacePod | RollPod):
            self.pods.pop(step.ordinal, None)
            restarted = self.member_at(step.ordinal)
            if isinstance(step, RollPod) and restarted is not None:
                restarted.down = False  # a restart with its data intact cures a hung member
        else:
            raise AssertionError(f"the model does not know {step}")

    # --- etcd's rules ----------------------------------------------------------------------------
    def member(self, member_id: int) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    def member_at(self, ordinal: int) -> Member | None:
        return next((m for m in self.members if m.peer_url == self.spec.peer_url(ordinal)), None)

    def add_learner(self, peer_url: str) -> None:
        if any(m.peer_url == peer_url for m in self.members):
            raise EtcdRefused("etcdserver: Peer URLs already exists")
        if any(m.learner for m in self.members):
            raise EtcdRefused("etcdserver: too many learner members in cluster")
        self.members.append(Member(next(self.ids), peer_url, learner=True))

    def promote(self, member_id: int) -> None:
        member = self.member(member_id)
        if member is None or not member.learner:
            raise EtcdRefused("etcdserver: can only promote a learner member")
        if not member.started:
            raise EtcdRefused("etcdserver: can only promote a learner member which is in sync with leader")
        member.learner = False

    def remove(self, member_id: int) -> None:
        member = self.member(member_id)
        if member is None:
            raise EtcdRefused("etcdserver: member not found")
        voters = [m for m in self.members if not m.learner]
        started_after = [m for m in voters if m.id != member_id and m.started and not m.down]
        if not member.learner and len(started_after) < quorum(len(voters) - 1):
            raise EtcdRefused("etcdserver: re-configuration failed due to not enough started members")
        self.members.remove(member)
        if self.leader == member_id:
            self.leader = next((m.id for m in self.members if not m.learner and m.started), 0)

    # --- the StatefulSet controller, kubelet and members starting ----------------------------------
    def ready(self) -> set[int]:
        by_url = {m.peer_url: m for m in self.members}
        out = set()
        for ordinal in self.pods:
            member = by_url.get(self.spec.peer_url(ordinal))
            if member and member.started and not member.learner and not member.down and self.leader:
                out.add(ordinal)
        return out

    def settle(self) -> None:
        if self.sts_replicas is None:
            return
        for ordinal in [o for o in self.pods if o >= self.sts_replicas]:
            del self.pods[ordinal]
        for ordinal in list(self.pvc_deleting):
            if ordinal not in self.pods:
                self.pvc_deleting.discard(ordinal)
                self.pvcs.pop(ordinal, None)
        for ordinal in range(self.sts_replicas):
            if ordinal not in self.pods:
                if ordinal not in self.pvcs:
                    self.pvcs[ordinal] = f"pvc-{next(self.uids)}"
                    self.pvc_sizes[ordinal] = self.claim_template_size()
                self.pods[ordinal] = Pod(f"pod-{next(self.uids)}", self.template_revision, self.pvcs[ordinal])
        self.form_cluster()
        for ordinal, pod in self.pods.items():
            member = self.member_at(ordinal)
            if member is None:
                continue  # a removed member's pod exits: "the member has been permanently removed"
            if member.learner and self.learners_never_start:
                continue
            owner = self.pvc_owner.get(pod.pvc_uid)
            if owner is not None and owner != member.id:
                continue  # the volume holds another (removed) member's data: the pod crash-loops
            if member.started and member.pvc_uid != pod.pvc_uid:
                member.down = True  # its data was lost: etcd cannot run an old ID on an empty log
                self.pvc_owner[pod.pvc_uid] = member.id  # ...and the failed start wrote to the new volume
            elif not member.down:
                member.started, member.name, member.pvc_uid = True, self.spec.pod_name(ordinal), pod.pvc_uid
                self.pvc_owner[pod.pvc_uid] = member.id

    def claim_template_size(self) -> str:
        """The StatefulSet's claim template is immutable: it keeps the size it was created with."""
        sts = self.objects[f"StatefulSet/{self.spec.name}"]
        size: str = sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        return size

    def form_cluster(self) -> None:
        config = self.objects.get(f"ConfigMap/{self.spec.config_map}")
        if self.cluster_id or config is None or config["data"]["ETCD_INITIAL_CLUSTER_STATE"] != "new":
            return
        names = [pair.split("=", 1) for pair in config["data"]["ETCD_INITIAL_CLUSTER"].split(",")]
        started = [n for n, _ in names if int(n.rsplit("-", 1)[1]) in self.pods]
        if len(started) < quorum(len(names)):
            return
        self.members = [Member(next(self.ids), url, learner=False) for _, url in names]
        self.cluster_id = 0xC1
        self.leader = self.members[0].id

    # --- helpers for the tests -------------------------------------------------------------------
    def voters(self) -> list[str]:
        return sorted(m.name for m in self.members if not m.learner)

    def lose_data(self, ordinal: int) -> None:
        """The PVC of a member is deleted together with its pod (the StatefulSet recreates both)."""
        self.pods.pop(ordinal, None)
        self.pvcs.pop(ordinal, None)
        self.settle()

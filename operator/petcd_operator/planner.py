"""Pure: (spec, observed cluster, what status recorded, now) -> the one next step.

No I/O here. The handler observes the world, asks `plan`, records `Plan.operation` (with the step's
name) in status, then performs `Plan.step` and observes again. Every decision is re-derived from live
state, and a count mismatch is resolved only through an operation recorded before its first
mutation, so an operator killed between any two calls converges (operator-lessons §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from petcd_operator.spec import ClusterSpec, quantity_bytes, quorum
from petcd_operator.state import MemberObs, MembersObs, Observed, Operation, Recorded

LEARNER_TIMEOUT_SECONDS = 300.0
# etcd refuses MemberPromote until the learner's match index reaches 90 % of the leader's.
PROMOTE_READY_FRACTION = 0.9


# --- steps ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """A step that changes the world (Kubernetes objects or the etcd member list)."""

    mutating = True

    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Bootstrap(Step):
    replicas: int  # the bootstrap members: ordinals 0..replicas-1 start with initial-cluster-state=new


@dataclass(frozen=True)
class ApplyObjects(Step):
    keys: tuple[str, ...]  # "Kind/name" of the objects to create or update
    statefulset_replicas: int  # used only if the StatefulSet has to be created


@dataclass(frozen=True)
class AddLearner(Step):
    ordinal: int
    peer_url: str


@dataclass(frozen=True)
class ScaleStatefulSet(Step):
    replicas: int


@dataclass(frozen=True)
class PromoteLearner(Step):
    ordinal: int
    member_id: int


@dataclass(frozen=True)
class MoveLeader(Step):
    from_id: int
    to_id: int


@dataclass(frozen=True)
class RemoveMember(Step):
    ordinal: int
    member_id: int


@dataclass(frozen=True)
class DeletePVC(Step):
    ordinal: int


@dataclass(frozen=True)
class ResizePVC(Step):
    """Grow a member's PVC to spec.storage.size (the StatefulSet's claim template is immutable)."""

    ordinal: int
    size: str


@dataclass(frozen=True)
class ReplacePod(Step):
    """Delete the pod of a replaced member so it restarts, empty, as the new learner."""

    ordinal: int


@dataclass(frozen=True)
class RollPod(Step):
    """Delete an outdated pod (OnDelete update strategy) so it restarts with the new template."""

    ordinal: int


@dataclass(frozen=True)
class FinishOperation(Step):
    operation: Operation
    forget_volume: int | None = None  # ordinal whose recorded volume UID no longer applies


@dataclass(frozen=True)
class Wait(Step):
    """Nothing to do until the world moves; `degraded` marks reasons that need attention."""

    reason: str
    message: str
    degraded: bool = False
    mutating = False


@dataclass(frozen=True)
class RefuseScaleDown(Step):
    reason: str
    message: str
    mutating = False


@dataclass(frozen=True)
class InSync(Step):
    mutating = False


@dataclass(frozen=True)
class Plan:
    operation: Operation | None  # what status.operation must say while `step` is performed
    step: Step


# --- helpers -------------------------------------------------------------------------------------
def stale_objects(desired: Mapping[str, str], observed: Mapping[str, str]) -> tuple[str, ...]:
    """Objects that are missing or carry another spec hash than the one rendered from the spec."""
    return tuple(key for key, digest in desired.items() if observed.get(key) != digest)


def volume_identity(spec: ClusterSpec, observed: Observed, ordinal: int) -> str:
    """The UID of the data a member runs on: its PVC, or for ephemeral storage its pod."""
    item = observed.pod(ordinal) if spec.storage.ephemeral else observed.pvc(ordinal)
    return item.uid if item else ""


@dataclass(frozen=True)
class _View:
    """The member list indexed the ways the planner asks about it."""

    spec: ClusterSpec
    observed: Observed
    members: MembersObs
    now: float
    learner_timeout: float

    def member(self, ordinal: int) -> MemberObs | None:
        url = self.spec.peer_url(ordinal)
        return next((m for m in self.members.members if url in m.peer_urls), None)

    @property
    def voters(self) -> list[MemberObs]:
        return [m for m in self.members.members if not m.learner]

    def healthy_voters(self, excluding: int = 0) -> list[MemberObs]:
        return [m for m in self.voters if m.healthy and m.id != excluding]

    def ordinal(self, member: MemberObs) -> int | None:
        for url in member.peer_urls:
            ordinal = self.spec.ordinal_of_peer_url(url)
            if ordinal is not None:
                return ordinal
        return None

    @property
    def sts_replicas(self) -> int:
        return self.observed.statefulset.replicas if self.observed.statefulset else 0

    def quorum_without(self, member: MemberObs) -> bool:
        """Whether the healthy voters other than `member` form a quorum of the voters left."""
        if member.learner:
            return True
        return len(self.healthy_voters(excluding=member.id)) >= quorum(len(self.voters) - 1)

    def new_leader(self, leaving: MemberObs) -> MemberObs | None:
        """The lowest-ordinal healthy voter other than `leaving`."""
        candidates = [m for m in self.healthy_voters(excluding=leaving.id) if m.started]
        return min(candidates, key=lambda m: (self.ordinal(m) is None, self.ordinal(m) or 0), default=None)

    def move_leader_off(self, member: MemberObs) -> MoveLeader | None:
        if self.members.leader_id != member.id:
            return None
        target = self.new_leader(member)
        return MoveLeader(member.id, target.id) if target else None

    def caught_up(self, learner: MemberObs) -> bool:
        leader = self.members.by_id(self.members.leader_id)
        if leader is None or not leader.raft_index or not learner.raft_index:
            return True  # unknown: let etcd decide (it answers LearnerNotReady)
        return learner.raft_index >= PROMOTE_READY_FRACTION * leader.raft_index

    def overdue(self, operation: Operation) -> bool:
        return self.now - operation.started_at > self.learner_timeout


# --- the planner ---------------------------------------------------------------------------------
def plan(
    spec: ClusterSpec,
    observed: Observed,
    recorded: Recorded,
    desired_hashes: Mapping[str, str],
    now: float,
    learner_timeout: float = LEARNER_TIMEOUT_SECONDS,
) -> Plan:
    operation = recorded.operation
    if recorded.bootstrap_replicas == 0:
        return Plan(None, Bootstrap(spec.replicas))
    stale = stale_objects(desired_hashes, observed.object_hashes)
    if stale:
        return Plan(operation, ApplyObjects(stale, _statefulset_size(spec, observed, recorded)))
    members = observed.members
    if members is None or members.leader_id == 0:
        if recorded.cluster_id == 0:
            return Plan(
                operation, Wait("WaitingForFirstQuorum", "the bootstrap members have not elected a leader")
            )
        return Plan(operation, Wait("MembersUnreachable", "no member answered with a leader", degraded=True))
    if recorded.cluster_id and members.cluster_id != recorded.cluster_id:
        message = f"members report cluster ID {members.cluster_id:x}, status recorded {recorded.cluster_id:x}"
        return Plan(operation, Wait("ClusterIDMismatch", message, degraded=True))
    view = _View(spec, observed, members, now, learner_timeout)
    foreign = [m for m in members.members if view.ordinal(m) is None]
    if foreign:
        urls = ", ".join(u for m in foreign for u in m.peer_urls)
        return Plan(
            operation, Wait("ForeignMember", f"members not managed by this resource: {urls}", degraded=True)
        )
    if len(view.healthy_voters()) < quorum(len(view.voters)):
        message = f"{len(view.healthy_voters())} of {len(view.voters)} voting members are healthy"
        return Plan(operation, Wait("QuorumLost", message, degraded=True))
    if operation is not None:
        return _continue(view, operation)
    return _start(view, recorded)


def _statefulset_size(spec: ClusterSpec, observed: Observed, recorded: Recorded) -> int:
    """How many replicas a (re)created StatefulSet starts with: the bootstrap size, then the members."""
    if recorded.cluster_id == 0 or observed.members is None:
        return recorded.bootstrap_replicas
    ordinals = [spec.ordinal_of_peer_url(u) for m in observed.members.members for u in m.peer_urls]
    return max((o + 1 for o in ordinals if o is not None), default=recorded.bootstrap_replicas)


def _continue(view: _View, operation: Operation) -> Plan:
    if operation.type == "ScaleUp":
        if view.spec.replicas <= operation.ordinal:
            # The spec shrank while we were adding this member: take it out again (a learner is always safe).
            turned = Operation("ScaleDown", operation.ordinal, operation.peer_url, started_at=view.now)
            return _with(turned, _scale_down(view, turned))
        return _with(operation, _scale_up(view, operation))
    if operation.type == "ScaleDown":
        return _with(operation, _scale_down(view, operation))
    if operation.type == "Replace":
        return _with(operation, _replace(view, operation))
    if operation.type == "Roll":
        return _with(operation, _roll(view, operation))
    return Plan(None, FinishOperation(operation))


def _with(operation: Operation, step: Step) -> Plan:
    return Plan(None if isinstance(step, FinishOperation) else operation, step)


def _scale_up(view: _View, op: Operation) -> Step:
    k = op.ordinal
    member = view.member(k)
    if member is None:
        pod, pvc = view.observed.pod(k), view.observed.pvc(k)
        if pod is not None:
            if view.sts_replicas > k:
                return ScaleStatefulSet(k)  # a pod we never added a member for: take it away first
            return Wait("PodTerminating", f"waiting for the old pod {view.spec.pod_name(k)} to go")
        if pvc is not None:
            # A leftover PVC holds an old member's data and ID; the new member must start empty.
            if pvc.deleting:
                return Wait("PVCTerminating", f"waiting for the old PVC {view.spec.pvc_name(k)} to go")
            return DeletePVC(k)
        return AddLearner(k, view.spec.peer_url(k))
    if view.sts_replicas < k + 1:
        return ScaleStatefulSet(k + 1)
    return _promote_when_ready(view, op, member)


def _promote_when_ready(view: _View, op: Operation, member: MemberObs) -> Step:
    """The tail of scale-up and replace: wait for the learner, promote it, wait until it is healthy."""
    name = view.spec.pod_name(op.ordinal)
    if member.learner:
        if member.started and member.healthy and view.caught_up(member):
            return PromoteLearner(op.ordinal, member.id)
        if view.overdue(op):
            return Wait(
                "LearnerStuck", f"learner {name} has not caught up since {op.started_at:.0f}", degraded=True
            )
        return Wait("LearnerCatchingUp", f"waiting for learner {name} to start and catch up")
    if not member.healthy:
        if view.overdue(op):
            return Wait("MemberNotHealthy", f"member {name} is not healthy after promotion", degraded=True)
        return Wait("MemberStarting", f"waiting for member {name} to become healthy")
    return FinishOperation(op, forget_volume=op.ordinal if op.type == "Replace" else None)


def _scale_down(view: _View, op: Operation) -> Step:
    k = op.ordinal
    member = view.member(k)
    if member is not None:
        if view.spec.replicas > k and view.sts_replicas > k:
            return FinishOperation(op)  # wanted again before anything was removed: nothing to undo
        if not view.quorum_without(member):
            return Wait(
                "QuorumAtRisk", f"removing {view.spec.pod_name(k)} now would lose quorum", degraded=True
            )
        move = view.move_leader_off(member)
        if move is not None:
            return move
        return RemoveMember(k, member.id)
    if view.sts_replicas > k:
        return ScaleStatefulSet(k)
    if view.observed.pod(k) is not None:
        return Wait("PodTerminating", f"waiting for pod {view.spec.pod_name(k)} to go")
    pvc = view.observed.pvc(k)
    if pvc is not None and not pvc.deleting and view.spec.pvc_retention.when_scaled == "Delete":
        return DeletePVC(k)
    return FinishOperation(op, forget_volume=k)


def _replace(view: _View, op: Operation) -> Step:
    k = op.ordinal
    member = view.member(k)
    if member is not None and op.member_id and member.id == op.member_id:
        if not view.quorum_without(member):
            return Wait(
                "QuorumAtRisk", f"replacing {view.spec.pod_name(k)} now would lose quorum", degraded=True
            )
        move = view.move_leader_off(member)
        if move is not None:
            return move
        return RemoveMember(k, member.id)
    if member is None:
        return AddLearner(k, view.spec.peer_url(k))
    pod = view.observed.pod(k)
    if not view.spec.storage.ephemeral and op.volume_uid:
        pvc = view.observed.pvc(k)
        if pvc is not None and pvc.uid == op.volume_uid:
            if not pvc.deleting:
                return DeletePVC(k)
            if pod is not None and not pod.deleting:
                return ReplacePod(k)  # the pod holds the old claim; the StatefulSet recreates both
            return Wait("PVCTerminating", f"waiting for the old PVC {view.spec.pvc_name(k)} to go")
    if pod is not None and pod.uid == op.pod_uid and not pod.deleting:
        return ReplacePod(k)
    return _promote_when_ready(view, op, member)


def _roll(view: _View, op: Operation) -> Step:
    k = op.ordinal
    pod = view.observed.pod(k)
    member = view.member(k)
    if pod is not None and pod.uid == op.pod_uid:
        if member is not None:
            move = view.move_leader_off(member)
            if move is not None:
                return move
        if not pod.deleting:
            return RollPod(k)
        return Wait("PodTerminating", f"waiting for pod {view.spec.pod_name(k)} to restart")
    if pod is None or not pod.ready or member is None or not member.healthy:
        degraded = view.overdue(op)
        return Wait("PodRestarting", f"waiting for pod {view.spec.pod_name(k)} to rejoin", degraded=degraded)
    return FinishOperation(op)


def _start(view: _View, recorded: Recorded) -> Plan:
    spec, observed, now = view.spec, view.observed, view.now
    by_ordinal = {view.ordinal(m): m for m in view.members.members}

    # A learner or a member beyond the StatefulSet without a recorded operation: adopt it.
    for ordinal, listed in sorted(by_ordinal.items(), key=lambda item: item[0] or 0):
        if ordinal is not None and (listed.learner or ordinal >= view.sts_replicas):
            kind = "ScaleUp" if ordinal < spec.replicas else "ScaleDown"
            return _begin(view, Operation(kind, ordinal, spec.peer_url(ordinal), started_at=now))

    # A pod whose member was removed, or whose data was lost: replace it, one at a time.
    for k in range(view.sts_replicas):
        member = by_ordinal.get(k)
        current = volume_identity(spec, observed, k)
        known = recorded.volumes.get(k, "")
        if member is not None and not (known and current and current != known):
            continue
        if member is not None and not view.quorum_without(member):
            message = f"replacing {spec.pod_name(k)} would lose quorum"
            return Plan(None, Wait("ReplaceBlocked", message, degraded=True))
        pvc, pod = observed.pvc(k), observed.pod(k)
        return _begin(
            view,
            Operation(
                "Replace",
                k,
                spec.peer_url(k),
                member_id=member.id if member else 0,
                volume_uid=pvc.uid if pvc else "",
                pod_uid=pod.uid if pod else "",
                started_at=now,
            ),
        )

    voters = view.voters
    unhealthy = [spec.pod_name(view.ordinal(m) or 0) for m in voters if not m.healthy]
    if spec.replicas > len(voters):
        if unhealthy:
            return Plan(
                None, Wait("WaitingForHealthyMembers", f"unhealthy: {', '.join(unhealthy)}", degraded=True)
            )
        k = view.sts_replicas
        return _begin(view, Operation("ScaleUp", k, spec.peer_url(k), started_at=now))
    if spec.replicas < len(voters):
        k = max(o for o in by_ordinal if o is not None)
        victim = by_ordinal[k]
        if not view.quorum_without(victim):
            survivors = len(view.healthy_voters(excluding=victim.id))
            message = (
                f"removing {spec.pod_name(k)} would leave {survivors} healthy of {len(voters) - 1}"
                f" voting members, fewer than a quorum of {quorum(len(voters) - 1)}"
            )
            return Plan(None, RefuseScaleDown("QuorumWouldBeLost", message))
        others_unhealthy = [n for n in unhealthy if n != spec.pod_name(k)]
        if others_unhealthy:
            return Plan(
                None, Wait("WaitingForHealthyMembers", f"unhealthy: {', '.join(others_unhealthy)}", True)
            )
        return _begin(view, Operation("ScaleDown", k, spec.peer_url(k), started_at=now))
    rolling = _start_roll(view)
    if not isinstance(rolling.step, InSync):
        return rolling
    resize = _smaller_pvc(view)  # last: a storage class that cannot expand must not block the rest
    return Plan(None, resize) if resize is not None else rolling


def _smaller_pvc(view: _View) -> ResizePVC | None:
    """The first member PVC that asks for less storage than the spec (growth only; CEL refuses shrink)."""
    spec = view.spec
    if spec.storage.ephemeral:
        return None
    wanted = quantity_bytes(spec.storage.size)
    for pvc in view.observed.pvcs:
        member_pvc = pvc.ordinal < view.sts_replicas and pvc.size and not pvc.deleting
        if member_pvc and quantity_bytes(pvc.size) < wanted:
            return ResizePVC(pvc.ordinal, spec.storage.size)
    return None


def _start_roll(view: _View) -> Plan:
    """Rolling update, one pod at a time: unhealthy pods first, then followers, the leader last."""
    sts = view.observed.statefulset
    if sts is None or not sts.update_revision:
        return Plan(None, InSync())
    outdated = [p for p in view.observed.pods if p.revision and p.revision != sts.update_revision]
    if not outdated:
        return Plan(None, InSync())

    def rank(pod_ordinal: int) -> tuple[int, int]:
        member = view.member(pod_ordinal)
        pod = view.observed.pod(pod_ordinal)
        healthy = member is not None and member.healthy and pod is not None and pod.ready
        is_leader = member is not None and member.id == view.members.leader_id
        return (0 if not healthy else 2 if is_leader else 1, -pod_ordinal)

    target = min((p.ordinal for p in outdated), key=rank)
    healthy_target = rank(target)[0] != 0
    if healthy_target and len(view.voters) >= 3 and len(view.healthy_voters()) - 1 < quorum(len(view.voters)):
        return Plan(None, Wait("WaitingForHealthyMembers", "a rolling restart now would lose quorum", True))
    pod = view.observed.pod(target)
    op = Operation(
        "Roll", target, view.spec.peer_url(target), pod_uid=pod.uid if pod else "", started_at=view.now
    )
    return _begin(view, op)


def _begin(view: _View, operation: Operation) -> Plan:
    """Start an operation: its first step is whatever continuing it would do."""
    plan_ = _continue(view, operation)
    if isinstance(plan_.step, FinishOperation):
        return Plan(None, InSync())
    return plan_


def with_step(plan_: Plan) -> Operation | None:
    """The operation as status must show it while the plan's step runs."""
    if plan_.operation is None:
        return None
    return replace(plan_.operation, step=plan_.step.name)


def refresh_record(spec: ClusterSpec, observed: Observed, recorded: Recorded) -> Recorded:
    """Facts to persist before planning: the cluster ID once a leader exists, and the data volume
    each healthy voter runs on (a different volume later means its data was lost: replace it)."""
    members = observed.members
    if members is None or members.leader_id == 0:
        return recorded
    cluster_id = recorded.cluster_id or members.cluster_id
    busy = recorded.operation.ordinal if recorded.operation else None
    volumes = dict(recorded.volumes)
    listed: set[int] = set()
    for member in members.members:
        ordinal = next((o for o in map(spec.ordinal_of_peer_url, member.peer_urls) if o is not None), None)
        if ordinal is None:
            continue
        listed.add(ordinal)
        identity = volume_identity(spec, observed, ordinal)
        if ordinal != busy and ordinal not in volumes and identity and member.healthy and not member.learner:
            volumes[ordinal] = identity
    sts_replicas = observed.statefulset.replicas if observed.statefulset else 0
    for ordinal in list(volumes):
        if ordinal not in listed and ordinal >= sts_replicas and ordinal != busy:
            del volumes[ordinal]
    return replace(recorded, cluster_id=cluster_id, volumes=volumes)

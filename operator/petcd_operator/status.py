"""Pure: (spec, observed, recorded, plan) -> the EtcdCluster status (conditions, phase, members...)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from petcd_operator.manifests import selector_string
from petcd_operator.planner import InSync, Plan, RefuseScaleDown, Wait
from petcd_operator.spec import ClusterSpec, quorum
from petcd_operator.state import Observed, Recorded, format_time

OPERATION_REASONS = {
    "ScaleUp": "ScalingUp",
    "ScaleDown": "ScalingDown",
    "Replace": "ReplacingMember",
    "Roll": "RollingUpdate",
}
PHASES = {"ScaleUp": "Scaling", "ScaleDown": "Scaling", "Replace": "Repairing", "Roll": "Upgrading"}


def member_entries(spec: ClusterSpec, observed: Observed) -> list[dict[str, Any]]:
    if observed.members is None:
        return []
    entries = []
    for m in observed.members.members:
        ordinal = next((o for o in map(spec.ordinal_of_peer_url, m.peer_urls) if o is not None), None)
        entries.append(
            {
                "name": m.name or (spec.pod_name(ordinal) if ordinal is not None else ""),
                "id": f"{m.id:x}",
                "peerURLs": list(m.peer_urls),
                "clientURLs": list(m.client_urls),
                "learner": m.learner,
                "leader": m.id == observed.members.leader_id,
                "healthy": m.healthy,
            }
        )
    return sorted(entries, key=lambda e: str(e["name"]))


def _condition(kind: str, value: bool, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if value else "False", "reason": reason, "message": message}


def conditions(spec: ClusterSpec, observed: Observed, plan: Plan) -> list[dict[str, Any]]:
    step = plan.step
    members = observed.members
    voters = [m for m in members.members if not m.learner] if members else []
    healthy = [m for m in voters if m.healthy]
    available = bool(members and members.leader_id and len(healthy) >= quorum(len(voters)))
    if available:
        availability = ("QuorumHealthy", f"{len(healthy)} of {len(voters)} voting members healthy")
    elif isinstance(step, Wait):
        availability = (step.reason, step.message)
    else:
        availability = ("NoQuorum", "no quorum of healthy voting members")

    if plan.operation is not None:
        reason = OPERATION_REASONS.get(plan.operation.type, plan.operation.type)
        progressing = (
            True,
            reason,
            f"{plan.operation.type} {spec.pod_name(plan.operation.ordinal)}: {step.name}",
        )
    elif step.mutating:
        progressing = (True, step.name, f"performing {step.name}")
    elif isinstance(step, InSync):
        progressing = (False, "Reconciled", f"{spec.replicas} members, as specified")
    else:
        progressing = (False, getattr(step, "reason", step.name), getattr(step, "message", ""))

    # A learner or the member an operation is working on is expected to be unhealthy for a while.
    busy_url = plan.operation.peer_url if plan.operation else None
    unhealthy = sorted(
        m.name or f"{m.id:x}"
        for m in (members.members if members else ())
        if not m.healthy and not m.learner and busy_url not in m.peer_urls
    )
    if isinstance(step, RefuseScaleDown) or (isinstance(step, Wait) and step.degraded):
        degraded = (True, step.reason, step.message)
    elif unhealthy:
        degraded = (True, "UnhealthyMembers", f"unhealthy: {', '.join(unhealthy)}")
    else:
        degraded = (False, "AllMembersHealthy", "every member answers with a leader")
    return [
        _condition("Available", available, *availability),
        _condition("Progressing", *progressing),
        _condition("Degraded", *degraded),
    ]


def with_transition_times(
    new: Sequence[dict[str, Any]], previous: Sequence[Mapping[str, Any]], now: float
) -> list[dict[str, Any]]:
    """Keep lastTransitionTime when a condition's status did not change."""
    before = {c.get("type"): c for c in previous}
    out = []
    for condition in new:
        old = before.get(condition["type"])
        same = old is not None and old.get("status") == condition["status"] and old.get("lastTransitionTime")
        stamp = old["lastTransitionTime"] if same and old else format_time(now)
        out.append({**condition, "lastTransitionTime": stamp})
    return out


def phase(recorded: Recorded, plan: Plan, condition_list: Sequence[Mapping[str, Any]]) -> str:
    state = {c["type"]: c["status"] == "True" for c in condition_list}
    if recorded.cluster_id == 0:
        return "Creating"
    if not state.get("Available"):
        return "Unavailable"
    if plan.operation is not None:
        return PHASES.get(plan.operation.type, "Progressing")
    if state.get("Degraded"):
        return "Degraded"
    return "Running"


def summarize(
    spec: ClusterSpec,
    observed: Observed,
    recorded: Recorded,
    plan: Plan,
    previous_conditions: Sequence[Mapping[str, Any]],
    now: float,
) -> dict[str, Any]:
    """The whole status the handler writes after planning (the operation is written separately)."""
    condition_list = with_transition_times(conditions(spec, observed, plan), previous_conditions, now)
    members = observed.members
    versions = Counter(m.version for m in (members.members if members else ()) if m.version)
    leader = members.by_id(members.leader_id) if members else None
    sts = observed.statefulset
    return {
        "observedGeneration": spec.generation,
        "phase": phase(recorded, plan, condition_list),
        "conditions": condition_list,
        "replicas": sts.replicas if sts else 0,
        "readyReplicas": sts.ready_replicas if sts else 0,
        "selector": selector_string(spec),
        "members": member_entries(spec, observed),
        "memberCount": len(members.members) if members else 0,
        "leader": (leader.name or f"{leader.id:x}") if leader else "",
        "currentVersion": min(versions, key=lambda v: v) if versions else "",
        **{k: v for k, v in recorded.to_status().items() if k != "operation"},
    }

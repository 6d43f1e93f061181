"""The reconcile loop over an abstract cluster: observe -> record -> plan -> write status -> perform.

`ClusterAccess` is implemented by the Kubernetes/etcd shell (handlers.py) and, in the unit tests, by
a model of the world that can be crashed between any two calls. The order here is the safety
argument: the operation and its step reach status before the step touches the world.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from petcd_operator.manifests import Object, desired_hashes, desired_objects
from petcd_operator.planner import (
    AddLearner,
    Bootstrap,
    FinishOperation,
    MoveLeader,
    Plan,
    PromoteLearner,
    RefuseScaleDown,
    RemoveMember,
    ReplacePod,
    Step,
    plan,
    refresh_record,
    with_step,
)
from petcd_operator.spec import ClusterSpec
from petcd_operator.state import Observed, Recorded
from petcd_operator.status import summarize

MAX_STEPS_PER_RECONCILE = 25


class ClusterAccess(Protocol):
    def observe(self, spec: ClusterSpec) -> Observed: ...

    def write_status(self, status: Mapping[str, Any]) -> None: ...

    def perform(self, spec: ClusterSpec, step: Step, objects: Mapping[str, Object]) -> None: ...

    def event(self, reason: str, message: str, warning: bool = False) -> None: ...


@dataclass(frozen=True)
class Pass:
    plan: Plan
    status: dict[str, Any]


def membership_event(spec: ClusterSpec, step: Step) -> tuple[str, str] | None:
    """The Event to emit after a membership change (reason, message), or None."""
    if isinstance(step, AddLearner):
        return "MemberAdded", f"added {spec.pod_name(step.ordinal)} ({step.peer_url}) as a learner"
    if isinstance(step, PromoteLearner):
        return (
            "MemberPromoted",
            f"promoted {spec.pod_name(step.ordinal)} ({step.member_id:x}) to voting member",
        )
    if isinstance(step, RemoveMember):
        return "MemberRemoved", f"removed {spec.pod_name(step.ordinal)} ({step.member_id:x})"
    if isinstance(step, MoveLeader):
        return "LeaderMoved", f"moved leadership from {step.from_id:x} to {step.to_id:x}"
    if isinstance(step, ReplacePod):
        return "MemberReplaced", f"deleted {spec.pod_name(step.ordinal)} to restart it as a new member"
    return None


def reconcile_pass(
    spec: ClusterSpec, access: ClusterAccess, status: Mapping[str, Any], now: float, learner_timeout: float
) -> Pass:
    observed = access.observe(spec)
    recorded = refresh_record(spec, observed, Recorded.from_status(status))
    objects = desired_objects(spec, recorded, observed.members, statefulset_replicas=0)
    next_plan = plan(spec, observed, recorded, desired_hashes(objects), now, learner_timeout)
    step = next_plan.step
    if isinstance(step, Bootstrap):
        recorded = replace(recorded, bootstrap_replicas=step.replicas)
    elif isinstance(step, FinishOperation):
        volumes = {k: v for k, v in recorded.volumes.items() if k != step.forget_volume}
        recorded = replace(recorded, operation=None, volumes=volumes)
    else:
        recorded = recorded.with_operation(with_step(next_plan))
    new_status = summarize(spec, observed, recorded, next_plan, status.get("conditions") or [], now)
    new_status["operation"] = recorded.operation.to_status() if recorded.operation else None
    access.write_status(new_status)  # before the step: a crash after this line redoes or resumes it
    if step.mutating and not isinstance(step, Bootstrap | FinishOperation):
        access.perform(spec, step, objects)
    event = membership_event(spec, step)
    if event:
        access.event(*event)
    if isinstance(step, FinishOperation):
        access.event(
            "OperationFinished", f"{step.operation.type} {spec.pod_name(step.operation.ordinal)} done"
        )
    if isinstance(step, RefuseScaleDown):
        access.event(step.reason, step.message, warning=True)
    return Pass(next_plan, new_status)


def reconcile(
    spec: ClusterSpec,
    access: ClusterAccess,
    status: Mapping[str, Any],
    clock: Callable[[], float],
    learner_timeout: float,
    on_step: Callable[[Plan], None] = lambda _plan: None,
) -> Plan:
    """Perform steps until the planner has to wait for the world (or a bounded number of steps)."""
    current: Mapping[str, Any] = status
    last: Plan | None = None
    for _ in range(MAX_STEPS_PER_RECONCILE):
        result = reconcile_pass(spec, access, current, clock(), learner_timeout)
        on_step(result.plan)
        current, last = result.status, result.plan
        if not result.plan.step.mutating:
            break
    assert last is not None
    return last

"""Prometheus metrics of the operator (prometheus-client), served on the metrics port by main."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from petcd_operator.planner import Plan, Step
from petcd_operator.reconciler import membership_event
from petcd_operator.spec import ClusterSpec
from petcd_operator.state import MembersObs

RECONCILES = Counter(
    "petcd_operator_reconciles_total", "Reconcile runs per EtcdCluster.", ["namespace", "cluster"]
)
ERRORS = Counter(
    "petcd_operator_reconcile_errors_total",
    "Reconcile runs that ended in an error, by error kind.",
    ["namespace", "cluster", "kind"],
)
DURATION = Histogram(
    "petcd_operator_reconcile_duration_seconds",
    "Time of one reconcile run (observe, plan, perform steps).",
    ["namespace", "cluster"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STEPS = Counter(
    "petcd_operator_steps_total", "Steps decided by the planner, by step.", ["namespace", "cluster", "step"]
)
MEMBERSHIP_CHANGES = Counter(
    "petcd_operator_membership_changes_total",
    "Membership changes performed (MemberAdded, MemberPromoted, MemberRemoved, LeaderMoved, MemberReplaced).",
    ["namespace", "cluster", "change"],
)
MEMBERS = Gauge(
    "petcd_operator_cluster_members",
    "Members of each EtcdCluster as last observed, by role (voter, learner, healthy).",
    ["namespace", "cluster", "role"],
)


def record_step(spec: ClusterSpec, plan: Plan) -> None:
    STEPS.labels(spec.namespace, spec.name, plan.step.name).inc()


def record_performed(spec: ClusterSpec, step: Step) -> None:
    event = membership_event(spec, step)
    if event is not None:
        MEMBERSHIP_CHANGES.labels(spec.namespace, spec.name, event[0]).inc()


def record_members(spec: ClusterSpec, members: MembersObs | None) -> None:
    listed = members.members if members else ()
    MEMBERS.labels(spec.namespace, spec.name, "voter").set(sum(not m.learner for m in listed))
    MEMBERS.labels(spec.namespace, spec.name, "learner").set(sum(m.learner for m in listed))
    MEMBERS.labels(spec.namespace, spec.name, "healthy").set(sum(m.healthy for m in listed))

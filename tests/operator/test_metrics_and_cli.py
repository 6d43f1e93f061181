"""metrics.py counters and gauges as the handlers feed them, and petcd-operator's flags."""

from __future__ import annotations

from operator_world import World
from petcd_operator import main, metrics
from petcd_operator.reconciler import reconcile_pass
from prometheus_client import REGISTRY
from test_planner import Clock, make_spec


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


def test_steps_membership_changes_and_member_gauges() -> None:
    world, clock = World(make_spec(3)), Clock()
    spec = world.spec
    labels = {"namespace": spec.namespace, "cluster": spec.name}
    added_before = sample("petcd_operator_membership_changes_total", change="MemberAdded", **labels)
    for _ in range(60):
        result = reconcile_pass(world.spec, world, world.status, clock.tick(), 300.0)
        metrics.record_step(world.spec, result.plan)
        if result.plan.step.mutating:
            metrics.record_performed(world.spec, result.plan.step)
        if (
            world.spec.replicas == 3
            and world.status.get("phase") == "Running"
            and not result.plan.step.mutating
        ):
            world.spec = make_spec(4)
    assert (
        sample("petcd_operator_membership_changes_total", change="MemberAdded", **labels) == added_before + 1
    )
    assert sample("petcd_operator_steps_total", step="PromoteLearner", **labels) >= 1
    metrics.record_members(spec, world.observe(spec).members)
    assert sample("petcd_operator_cluster_members", role="voter", **labels) == 4
    assert sample("petcd_operator_cluster_members", role="healthy", **labels) == 4
    metrics.record_members(spec, None)
    assert sample("petcd_operator_cluster_members", role="voter", **labels) == 0


def test_flags() -> None:
    args = main.parse_args(["--namespace", "a", "--namespace", "b", "--metrics-port", "0"])
    assert args.namespace == ["a", "b"] and args.metrics_port == 0 and not args.peering
    args = main.parse_args(["--all-namespaces", "--peering", "petcd", "--learner-timeout", "60"])
    assert args.all_namespaces and args.peering == "petcd" and args.learner_timeout == 60.0

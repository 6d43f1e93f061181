"""The planner and reconcile loop against a model of Kubernetes + etcd (tests/operator/operator_world.py).

Every scenario runs the real reconcile loop; the crash tests kill it before each mutation of a
scale-up and a scale-down and check that a restarted operator converges without an unsafe call.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from operator_world import Crash, World
from petcd_operator.planner import (
    AddLearner,
    ApplyObjects,
    DeletePVC,
    InSync,
    MoveLeader,
    Plan,
    PromoteLearner,
    RefuseScaleDown,
    RemoveMember,
    ReplacePod,
    ResizePVC,
    RollPod,
    ScaleStatefulSet,
    Step,
    Wait,
    plan,
)
from petcd_operator.reconciler import reconcile_pass
from petcd_operator.spec import ClusterSpec, parse, quantity_bytes
from petcd_operator.state import MemberObs, MembersObs, Observed, Recorded, StatefulSetObs

TIMEOUT = 300.0


def make_spec(replicas: int = 3, **spec: Any) -> ClusterSpec:
    body = {
        "metadata": {"name": "etcd", "namespace": "ns", "uid": "u-1"},
        "spec": {"replicas": replicas, **spec},
    }
    return parse(body)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def tick(self, seconds: float = 1.0) -> float:
        self.now += seconds
        return self.now


def run(world: World, clock: Clock, passes: int = 300) -> Plan:
    """Reconcile until the planner is in sync (or returns the same wait twice with nothing to do)."""
    last: Plan | None = None
    for _ in range(passes):
        result = reconcile_pass(world.spec, world, world.status, clock.tick(), TIMEOUT)
        if isinstance(result.plan.step, InSync | RefuseScaleDown):
            return result.plan
        if isinstance(result.plan.step, Wait) and last is not None and last.step == result.plan.step:
            return result.plan
        last = result.plan
    raise AssertionError(f"no convergence after {passes} passes; last step {last}")


def bootstrapped(replicas: int = 3) -> tuple[World, Clock]:
    world, clock = World(make_spec(replicas)), Clock()
    assert isinstance(run(world, clock).step, InSync)
    world.performed.clear()
    world.events.clear()
    return world, clock


def membership_steps(world: World) -> list[Step]:
    return [s for s in world.performed if not isinstance(s, ApplyObjects)]


def condition(world: World, kind: str) -> dict[str, Any]:
    return next(c for c in world.status["conditions"] if c["type"] == kind)


def assert_converged(world: World, replicas: int) -> None:
    names = [f"etcd-{i}" for i in range(replicas)]
    assert world.voters() == names
    assert not any(m.learner for m in world.members)
    assert world.sts_replicas == replicas
    assert sorted(world.pvcs) == list(range(replicas))
    assert world.status["operation"] is None
    assert condition(world, "Available")["status"] == "True"
    assert condition(world, "Degraded")["status"] == "False"
    assert world.status["members"] and len(world.status["members"]) == replicas


# --- bootstrap -----------------------------------------------------------------------------------
def test_bootstrap_creates_objects_then_records_the_cluster_and_switches_to_existing() -> None:
    world, clock = World(make_spec(3)), Clock()
    final = run(world, clock)
    assert isinstance(final.step, InSync)
    assert_converged(world, 3)
    assert world.status["bootstrapReplicas"] == 3
    assert world.status["clusterID"] == "c1"
    config = world.objects["ConfigMap/etcd-config"]["data"]
    assert config["ETCD_INITIAL_CLUSTER_STATE"] == "existing"
    assert config["ETCD_INITIAL_CLUSTER"].count("=") == 3
    assert world.status["phase"] == "Running"
    assert sorted(world.status["volumes"]) == ["0", "1", "2"]


def test_bootstrap_waits_for_first_quorum_without_membership_changes() -> None:
    world, clock = World(make_spec(3)), Clock()
    for _ in range(3):
        reconcile_pass(world.spec, world, world.status, clock.tick(), TIMEOUT)
    # The StatefulSet exists, but no leader yet in this pass order: nothing but object creation.
    assert all(isinstance(s, ApplyObjects) for s in world.performed)
    assert world.objects["ConfigMap/etcd-config"]["data"]["ETCD_INITIAL_CLUSTER_STATE"] in {"new", "existing"}


# --- scale up / down -----------------------------------------------------------------------------
def test_scale_up_adds_one_learner_at_a_time_and_promotes_it() -> None:
    world, clock = bootstrapped(3)
    world.spec = make_spec(5)
    assert isinstance(run(world, clock).step, InSync)
    assert_converged(world, 5)
    kinds = [type(s) for s in membership_steps(world)]
    assert kinds == [AddLearner, ScaleStatefulSet, PromoteLearner] * 2
    # The ConfigMap listing the learner is rewritten between MemberAdd and the StatefulSet scale.
    first_scale = world.performed.index(next(s for s in world.performed if isinstance(s, ScaleStatefulSet)))
    assert any(
        isinstance(s, ApplyObjects) and "ConfigMap/etcd-config" in s.keys
        for s in world.performed[:first_scale]
    )
    assert [r for r, _, _ in world.events].count("MemberAdded") == 2
    assert [r for r, _, _ in world.events].count("MemberPromoted") == 2


def test_scale_down_removes_the_highest_ordinal_then_its_pvc() -> None:
    world, clock = bootstrapped(5)
    world.spec = make_spec(3)
    assert isinstance(run(world, clock).step, InSync)
    assert_converged(world, 3)
    steps = membership_steps(world)
    assert [type(s) for s in steps] == [RemoveMember, ScaleStatefulSet, DeletePVC] * 2
    assert [s.ordinal for s in steps if isinstance(s, RemoveMember)] == [4, 3]
    assert sorted(world.status["volumes"]) == ["0", "1", "2"]


def test_one_to_three_and_back_to_one() -> None:
    world, clock = bootstrapped(1)
    world.spec = make_spec(3)
    run(world, clock)
    assert_converged(world, 3)
    world.spec = make_spec(1)
    run(world, clock)
    assert_converged(world, 1)


def test_leader_is_moved_off_a_member_before_it_is_removed() -> None:
    world, clock = bootstrapped(5)
    world.leader = world.member_at(4).id  # type: ignore[union-attr]
    world.spec = make_spec(4)
    run(world, clock)
    steps = membership_steps(world)
    assert isinstance(steps[0], MoveLeader) and isinstance(steps[1], RemoveMember)
    assert steps[0].to_id == world.member_at(0).id  # type: ignore[union-attr]
    assert_converged(world, 4)


def test_scale_down_is_refused_when_the_healthy_survivors_are_no_quorum() -> None:
    world, clock = bootstrapped(3)
    world.member_at(1).down = True  # type: ignore[union-attr]
    world.spec = make_spec(2)
    final = run(world, clock)
    assert isinstance(final.step, RefuseScaleDown)
    assert membership_steps(world) == []
    degraded = condition(world, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "QuorumWouldBeLost")
    assert any(reason == "QuorumWouldBeLost" and warning for reason, _, warning in world.events)


def test_scale_down_may_remove_the_unhealthy_member_itself() -> None:
    world, clock = bootstrapped(3)
    world.member_at(2).down = True  # type: ignore[union-attr]
    world.spec = make_spec(2)
    run(world, clock)
    assert_converged(world, 2)


def test_scale_up_waits_while_a_member_is_unhealthy() -> None:
    world, clock = bootstrapped(3)
    world.member_at(0).down = True  # type: ignore[union-attr]
    world.spec = make_spec(4)
    final = run(world, clock)
    assert isinstance(final.step, Wait) and final.step.reason == "WaitingForHealthyMembers"
    assert membership_steps(world) == []


def test_a_stuck_learner_times_out_into_degraded_and_can_be_scaled_away() -> None:
    world, clock = bootstrapped(3)
    world.learners_never_start = True
    world.spec = make_spec(4)
    final = run(world, clock)
    assert isinstance(final.step, Wait) and final.step.reason == "LearnerCatchingUp"
    assert condition(world, "Degraded")["status"] == "False"
    clock.tick(TIMEOUT + 1)
    final = run(world, clock)
    assert isinstance(final.step, Wait) and final.step.reason == "LearnerStuck"
    assert condition(world, "Degraded")["reason"] == "LearnerStuck"
    assert condition(world, "Available")["status"] == "True"  # a learner never costs quorum
    world.spec = make_spec(3)
    run(world, clock)
    assert_converged(world, 3)


def test_spec_lowered_during_a_scale_up_removes_the_learner() -> None:
    world, clock = bootstrapped(3)
    world.spec = make_spec(4)
    for _ in range(5):
        reconcile_pass(world.spec, world, world.status, clock.tick(), TIMEOUT)
        if world.performed and isinstance(world.performed[-1], AddLearner):
            break
    assert isinstance(world.performed[-1], AddLearner)
    world.spec = make_spec(3)
    run(world, clock)
    assert_converged(world, 3)


# --- the operator killed between any two steps ----------------------------------------------------
def clean_run_length(start: int, end: int) -> int:
    world, clock = bootstrapped(start)
    world.spec = make_spec(end)
    run(world, clock)
    return len(world.performed)


@pytest.mark.parametrize(("start", "end"), [(3, 5), (5, 3), (1, 3), (3, 1)])
def test_a_crash_before_any_step_converges_after_restart(start: int, end: int) -> None:
    steps = clean_run_length(start, end)
    assert steps >= 3
    for crash_at in range(steps):
        world, clock = bootstrapped(start)
        world.spec = make_spec(end)
        world.crash_at = crash_at
        with pytest.raises(Crash):
            run(world, clock)
        operation_at_crash = world.status.get("operation")
        # A new operator process: only what the world (and the resource's status) holds survives.
        run(world, clock)
        assert_converged(world, end)
        if operation_at_crash is not None:
            assert operation_at_crash["step"]  # the step was in status before it was attempted


@pytest.mark.parametrize(("start", "end"), [(3, 5), (5, 3)])
def test_two_crashes_in_a_row_still_converge(start: int, end: int) -> None:
    steps = clean_run_length(start, end)
    for crash_at in range(steps - 1):
        world, clock = bootstrapped(start)
        world.spec = make_spec(end)
        world.crash_at = crash_at
        with pytest.raises(Crash):
            run(world, clock)
        world.crash_at = len(world.performed) + 1
        with contextlib.suppress(Crash):
            run(world, clock)
        run(world, clock)
        assert_converged(world, end)


# --- pods and data -------------------------------------------------------------------------------
def test_a_deleted_pod_with_its_pvc_rejoins_without_membership_change() -> None:
    world, clock = bootstrapped(3)
    ids = sorted(m.id for m in world.members)
    world.pods.pop(1)
    run(world, clock)
    assert membership_steps(world) == []
    assert sorted(m.id for m in world.members) == ids
    assert_converged(world, 3)


def test_a_pod_that_lost_its_pvc_is_replaced_by_a_new_member() -> None:
    world, clock = bootstrapped(3)
    old = world.member_at(1)
    assert old is not None
    world.lose_data(1)
    run(world, clock)
    kinds = [type(s) for s in membership_steps(world)]
    assert kinds[:2] == [RemoveMember, AddLearner]
    assert ReplacePod in kinds and PromoteLearner in kinds
    new = world.member_at(1)
    assert new is not None and new.id != old.id
    assert_converged(world, 3)
    assert any(reason == "MemberReplaced" for reason, _, _ in world.events)


def test_replacing_the_leader_moves_leadership_first() -> None:
    world, clock = bootstrapped(3)
    world.leader = world.member_at(2).id  # type: ignore[union-attr]
    world.lose_data(2)
    # The leader's data is gone; in the model it is down, so etcd would elect another leader.
    world.leader = world.member_at(0).id  # type: ignore[union-attr]
    run(world, clock)
    assert_converged(world, 3)


def test_a_pod_whose_member_was_removed_is_re_added() -> None:
    world, clock = bootstrapped(3)
    world.remove(world.member_at(2).id)  # type: ignore[union-attr]
    run(world, clock)
    kinds = [type(s) for s in membership_steps(world)]
    assert kinds[0] is AddLearner and DeletePVC in kinds
    assert_converged(world, 3)


def test_a_crash_during_replace_converges() -> None:
    world, clock = bootstrapped(3)
    world.lose_data(1)
    run(world, clock)
    steps = len(world.performed)
    for crash_at in range(steps):
        world, clock = bootstrapped(3)
        world.lose_data(1)
        world.crash_at = crash_at
        with pytest.raises(Crash):
            run(world, clock)
        run(world, clock)
        assert_converged(world, 3)


# --- rolling update -------------------------------------------------------------------------------
def test_rolling_update_goes_unhealthy_first_then_followers_then_the_leader_after_move_leader() -> None:
    world, clock = bootstrapped(3)
    world.leader = world.member_at(0).id  # type: ignore[union-attr]
    world.member_at(1).down = True  # type: ignore[union-attr]
    world.template_revision = "rev2"
    run(world, clock)
    steps = membership_steps(world)
    rolled = [s.ordinal for s in steps if isinstance(s, RollPod)]
    assert rolled == [1, 2, 0]
    move = steps.index(next(s for s in steps if isinstance(s, MoveLeader)))
    assert isinstance(steps[move + 1], RollPod) and steps[move + 1].ordinal == 0
    assert all(p.revision == "rev2" for p in world.pods.values())
    assert_converged(world, 3)


def test_an_image_change_rolls_through_a_template_change() -> None:
    world, clock = bootstrapped(3)
    world.spec = dataclasses.replace(world.spec, image="petcd/petcd:0.2.0", version="0.2.0")
    run(world, clock)  # the model keeps one revision; the template patch is what we check here
    assert any(isinstance(s, ApplyObjects) and s.keys == ("StatefulSet/etcd",) for s in world.performed)


# --- storage growth -------------------------------------------------------------------------------
def test_a_larger_storage_size_grows_every_member_pvc_one_at_a_time() -> None:
    world, clock = bootstrapped(3)
    world.spec = make_spec(3, storage={"size": "2Gi"})
    assert isinstance(run(world, clock).step, InSync)
    resized = [s.ordinal for s in membership_steps(world) if isinstance(s, ResizePVC)]
    assert resized == [0, 1, 2] and set(world.pvc_sizes.values()) == {"2Gi"}
    world.performed.clear()
    world.spec = make_spec(4, storage={"size": "2Gi"})
    run(world, clock)
    # The new member's PVC comes from the (immutable) claim template at 1Gi, then grows.
    assert [s.ordinal for s in membership_steps(world) if isinstance(s, ResizePVC)] == [3]
    assert world.pvc_sizes[3] == "2Gi"
    assert_converged(world, 4)


@pytest.mark.parametrize(
    ("quantity", "size"), [("1Gi", 2**30), ("500M", 5e8), ("1.5Ki", 1536), ("1e3", 1000)]
)
def test_quantities(quantity: str, size: float) -> None:
    assert quantity_bytes(quantity) == size


# --- refusals and waits ----------------------------------------------------------------------------
def test_unreachable_members_mean_no_mutation_and_unavailable() -> None:
    world, clock = bootstrapped(3)
    world.unreachable = True
    world.spec = make_spec(5)
    final = run(world, clock)
    assert isinstance(final.step, Wait) and final.step.reason == "MembersUnreachable"
    assert membership_steps(world) == []
    assert condition(world, "Available")["status"] == "False"
    assert world.status["phase"] == "Unavailable"


def test_a_different_cluster_id_stops_everything() -> None:
    world, clock = bootstrapped(3)
    world.cluster_id = 0xBAD
    world.spec = make_spec(5)
    final = run(world, clock)
    assert isinstance(final.step, Wait) and final.step.reason == "ClusterIDMismatch"
    assert membership_steps(world) == []


def test_quorum_lost_blocks_scaling() -> None:
    world, clock = bootstrapped(3)
    for ordinal in (1, 2):
        world.member_at(ordinal).down = True  # type: ignore[union-attr]
    world.spec = make_spec(1)
    final = run(world, clock)
    assert isinstance(final.step, Wait) and final.step.reason == "QuorumLost"
    assert membership_steps(world) == []


def test_without_a_recorded_operation_fewer_members_never_shrink_the_statefulset() -> None:
    spec = make_spec(3)
    members = MembersObs(
        tuple(MemberObs(i + 1, f"etcd-{i}", (spec.peer_url(i),), healthy=True) for i in range(2)), 7, 1
    )
    observed = Observed(statefulset=StatefulSetObs(3, "r"), members=members)
    recorded = Recorded(bootstrap_replicas=3, cluster_id=7)
    step = plan(spec, observed, recorded, {}, 0.0).step
    assert not isinstance(step, ScaleStatefulSet)
    # The missing ordinal is re-added as a member (a pod whose member is gone), never a shrink.
    assert isinstance(step, AddLearner) and step.ordinal == 2


def test_a_foreign_member_is_reported_not_touched() -> None:
    spec = make_spec(3)
    listed = [MemberObs(i + 1, f"etcd-{i}", (spec.peer_url(i),), healthy=True) for i in range(3)]
    listed.append(MemberObs(9, "stranger", ("http://10.1.1.1:2380",), healthy=True))
    observed = Observed(statefulset=StatefulSetObs(3, "r"), members=MembersObs(tuple(listed), 7, 1))
    step = plan(spec, observed, Recorded(bootstrap_replicas=3, cluster_id=7), {}, 0.0).step
    assert isinstance(step, Wait) and step.reason == "ForeignMember" and step.degraded

"""A Pod's status as the kubelet reports it: phase, conditions and container statuses, from the
kubelet's record of its containers. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from testenv.kubelet.containers import ContainerRun, now_rfc3339

Obj = dict[str, Any]


@dataclass
class ContainerView:
    """A container's spec with its run record and probe verdicts."""

    spec: Obj
    run: ContainerRun
    ready: bool
    started: bool


def container_state(run: ContainerRun) -> Obj:
    if run.pid is not None:
        return {"running": {"startedAt": run.started_at}}
    if run.waiting is not None:
        reason, message = run.waiting
        return {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    if run.termination is not None:
        return run.termination.as_state()
    return {"waiting": {"reason": "ContainerCreating"}}


def container_status(view: ContainerView) -> Obj:
    run = view.run
    status: Obj = {
        "name": run.name,
        "image": view.spec["image"],
        "imageID": view.spec["image"],
        "ready": view.ready,
        "started": view.started,
        "restartCount": run.restart_count,
        "state": container_state(run),
        "lastState": run.last_termination.as_state() if run.last_termination else {},
    }
    if run.pid is not None:
        status["containerID"] = f"process://{run.pid}"
    return status


def phase(init_failed: bool, init_done: bool, runs: Sequence[ContainerRun]) -> str:
    if init_failed:
        return "Failed"
    if not init_done or any(run.started_at is None for run in runs):
        return "Pending"
    if any(run.pid is not None for run in runs):
        return "Running"
    finished = [run.termination for run in runs if run.waiting is None and run.termination is not None]
    if len(finished) < len(runs):
        return "Running"  # some container is waiting to be restarted
    return "Succeeded" if all(t.exit_code == 0 for t in finished if t is not None) else "Failed"


class ConditionClock:
    """Keeps each condition's lastTransitionTime until its status changes."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, str]] = {}

    def condition(self, kind: str, true: bool, reason: str = "") -> Obj:
        status = "True" if true else "False"
        previous = self._seen.get(kind)
        if previous is None or previous[0] != status:
            self._seen[kind] = (status, now_rfc3339())
        condition: Obj = {"type": kind, "status": status, "lastTransitionTime": self._seen[kind][1]}
        if reason and not true:
            condition["reason"] = reason
        return condition


def pod_status(
    *,
    clock: ConditionClock,
    pod_ip: str | None,
    host_ip: str,
    start_time: str,
    sandbox_ready: bool,
    init_views: Sequence[ContainerView],
    init_done: bool,
    init_failed: bool,
    views: Sequence[ContainerView],
    message: str = "",
) -> Obj:
    current = phase(init_failed, init_done, [view.run for view in views])
    all_ready = current == "Running" and all(view.ready for view in views)
    reason = "PodCompleted" if current in ("Succeeded", "Failed") else "ContainersNotReady"
    status: Obj = {
        "phase": current,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "conditions": [
            clock.condition("PodReadyToStartContainers", sandbox_ready),
            clock.condition("Initialized", init_done, "ContainersNotInitialized"),
            clock.condition("Ready", all_ready, reason),
            clock.condition("ContainersReady", all_ready, reason),
            clock.condition("PodScheduled", True),
        ],
        "containerStatuses": [container_status(view) for view in views],
    }
    if init_views:
        status["initContainerStatuses"] = [container_status(view) for view in init_views]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if message:
        status["message"] = message
    return status

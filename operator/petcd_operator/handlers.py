"""Thin kopf handlers: every trigger runs the same level-triggered reconcile for one EtcdCluster.

create/update/resume react at once; a timer re-runs the reconcile every few seconds. A per-cluster
lock keeps two reconciles of one cluster from overlapping (the later one is skipped: the timer
comes back). Failed calls are logged and retried on the next tick.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException

from petcd_operator import metrics
from petcd_operator.kube import Kube, load_config
from petcd_operator.manifests import Object, desired_hashes, desired_objects
from petcd_operator.members import Endpoints, LearnerNotReady, MemberClient, MembershipError
from petcd_operator.planner import (
    LEARNER_TIMEOUT_SECONDS,
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
from petcd_operator.reconciler import reconcile
from petcd_operator.spec import (
    CLIENT_PORT,
    DEFAULT_IMAGE_REPOSITORY,
    GROUP,
    PLURAL,
    VERSION,
    ClusterSpec,
    parse,
)
from petcd_operator.state import MembersObs, Observed, Recorded

RECONCILE_INTERVAL_SECONDS = 5.0
# e.g. "after:AddLearner": the end-to-end tests kill the operator between two steps with it.
FAILPOINT = os.environ.get("PETCD_OPERATOR_FAILPOINT", "")
Logger = logging.Logger | logging.LoggerAdapter[Any]


@dataclass
class OperatorConfig:
    """Settings from main's flags (or environment variables when kopf is run directly)."""

    default_image: str = os.environ.get("PETCD_OPERATOR_DEFAULT_IMAGE", f"{DEFAULT_IMAGE_REPOSITORY}:latest")
    cluster_domain: str = os.environ.get("PETCD_OPERATOR_CLUSTER_DOMAIN", "cluster.local")
    learner_timeout: float = float(os.environ.get("PETCD_OPERATOR_LEARNER_TIMEOUT", LEARNER_TIMEOUT_SECONDS))
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, uid: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(uid, threading.Lock())


CONFIG = OperatorConfig()
_clients: dict[str, Any] = {}


def _kube() -> Kube:
    if "kube" not in _clients:
        load_config()
        _clients["kube"] = Kube()
    kube: Kube = _clients["kube"]
    return kube


class KubeAccess:
    """ClusterAccess over the Kubernetes API and the members' gRPC endpoints."""

    def __init__(self, kube: Kube, members: MemberClient, body: Mapping[str, Any], logger: Logger) -> None:
        self.kube, self.members, self.body, self.logger = kube, members, body, logger
        self.endpoints = Endpoints({})
        self.last_members: MembersObs | None = None

    def observe(self, spec: ClusterSpec) -> Observed:
        pods = self.kube.pods(spec)
        self.endpoints = Endpoints({spec.peer_url(p.ordinal): f"{p.ip}:{CLIENT_PORT}" for p in pods if p.ip})
        self.last_members = self.members.observe(self.endpoints) if self.endpoints.by_peer_url else None
        metrics.record_members(spec, self.last_members)
        # Keys of every object we may own; the ConfigMap is rendered with whatever is known now.
        keys = list(desired_hashes(desired_objects(spec, Recorded(bootstrap_replicas=1), None, 0)))
        return Observed(
            statefulset=self.kube.statefulset(spec),
            pods=tuple(pods),
            pvcs=tuple(self.kube.pvcs(spec)),
            members=self.last_members,
            object_hashes=self.kube.object_hashes(spec, keys),
        )

    def write_status(self, status: Mapping[str, Any]) -> None:
        spec = parse(self.body, default_image=CONFIG.default_image, cluster_domain=CONFIG.cluster_domain)
        self.kube.replace_status(spec, status)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        kopf.event(
            kopf.Body(cast(Any, dict(self.body))),
            type="Warning" if warning else "Normal",
            reason=reason,
            message=message,
        )
        self.logger.info("event reason=%s message=%s", reason, message)

    def _leader_target(self, member_id: int) -> str:
        member = self.last_members.by_id(member_id) if self.last_members else None
        for url in member.peer_urls if member else ():
            if url in self.endpoints.by_peer_url:
                return self.endpoints.by_peer_url[url]
        raise MembershipError(f"no endpoint for the leader {member_id:x}")

    def perform(self, spec: ClusterSpec, step: Step, objects: Mapping[str, Object]) -> None:
        self.logger.info("step cluster=%s/%s step=%s", spec.namespace, spec.name, step)
        if isinstance(step, ApplyObjects):
            for key in step.keys:
                obj = objects[key]
                if obj["kind"] == "StatefulSet":
                    obj = {**obj, "spec": {**obj["spec"], "replicas": step.statefulset_replicas}}
                self.kube.apply(obj)
        elif isinstance(step, ScaleStatefulSet):
            self.kube.scale_statefulset(spec, step.replicas)
        elif isinstance(step, AddLearner):
            self.members.add_learner(self.endpoints, step.peer_url)
        elif isinstance(step, PromoteLearner):
            self.members.promote(self.endpoints, step.member_id, spec.peer_url(step.ordinal))
        elif isinstance(step, MoveLeader):
            self.members.move_leader(self._leader_target(step.from_id), step.to_id)
        elif isinstance(step, RemoveMember):
            self.members.remove(self.endpoints, step.member_id, spec.peer_url(step.ordinal))
        elif isinstance(step, DeletePVC):
            self.kube.delete_pvc(spec, step.ordinal)
        elif isinstance(step, ResizePVC):
            self.kube.resize_pvc(spec, step.ordinal, step.size)
        elif isinstance(step, ReplacePod | RollPod):
            self.kube.delete_pod(spec, step.ordinal)
        else:
            raise kopf.PermanentError(f"no way to perform {step}")
        metrics.record_performed(spec, step)
        if FAILPOINT and f"after:{step.name}" == FAILPOINT:
            # Test-only crash point (as etcd's gofail): die right after this step, before any other.
            self.logger.warning("failpoint %s: exiting", FAILPOINT)
            os._exit(17)


def reconcile_cluster(namespace: str, name: str, logger: Logger) -> None:
    kube = _kube()
    try:
        body = kube.read_cluster(namespace, name)  # fresh: the event may be older than our writes
    except ApiException as error:
        if error.status == 404:
            return
        raise
    if body["metadata"].get("deletionTimestamp"):
        return
    try:
        spec = parse(body, default_image=CONFIG.default_image, cluster_domain=CONFIG.cluster_domain)
    except ValueError as error:
        raise kopf.PermanentError(str(error)) from error
    lock = CONFIG.lock(spec.uid)
    if not lock.acquire(blocking=False):
        return  # a reconcile of this cluster is running; it or the next resync sees this change
    try:
        metrics.RECONCILES.labels(namespace, name).inc()
        access = KubeAccess(kube, MemberClient(), body, logger)
        with metrics.DURATION.labels(namespace, name).time():
            reconcile(
                spec,
                access,
                body.get("status") or {},
                time.time,
                CONFIG.learner_timeout,
                on_step=lambda plan: metrics.record_step(spec, plan),
            )
    except LearnerNotReady as error:
        logger.info("learner not ready yet: %s", error)
    except MembershipError as error:
        metrics.ERRORS.labels(namespace, name, "membership").inc()
        logger.warning("membership call failed, retrying at the next event or resync: %s", error)
    except ApiException as error:
        metrics.ERRORS.labels(namespace, name, f"api-{error.status}").inc()
        detail = f"{error.status} {error.reason}: {str(error.body)[:300]}"
        logger.warning("Kubernetes API call failed, retrying at the next event or resync: %s", detail)
    finally:
        lock.release()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our own annotation prefix; nothing in status.kopf (the structural schema would prune it).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.INFO
    settings.execution.max_workers = 8


@kopf.on.create(GROUP, VERSION, PLURAL, id="create")
@kopf.on.update(GROUP, VERSION, PLURAL, id="update", field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL, id="resume")
def on_change(*, namespace: str | None, name: str, logger: Logger, **_: Any) -> None:
    reconcile_cluster(namespace or "default", name, logger)


# The timer is the level-triggered heartbeat: waits (a learner catching up, a pod restarting) make
# progress without sleeping in a handler. kopf puts a finalizer on resources with timers, so an
# EtcdCluster is deleted only while an operator runs.
@kopf.timer(GROUP, VERSION, PLURAL, id="tick", interval=RECONCILE_INTERVAL_SECONDS, initial_delay=2)
def on_timer(*, namespace: str | None, name: str, logger: Logger, **_: Any) -> None:
    reconcile_cluster(namespace or "default", name, logger)

"""Runs one Pod: its sandbox, volumes, init containers, containers, probes, restarts and
termination, one `sync` at a time (the kubelet calls it every tick with the Pod's latest object)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testenv.kubeapi import ApiError, KubeApi
from testenv.kubelet import images, probes, sandbox
from testenv.kubelet.apisources import ApiSources
from testenv.kubelet.containers import ContainerRun, now_rfc3339
from testenv.kubelet.podenv import PodContext, container_env, expand
from testenv.kubelet.probes import ProbeState, ProbeTarget
from testenv.kubelet.status import ConditionClock, ContainerView, pod_status
from testenv.kubelet.volumes import container_mounts, generated, materialize
from testenv.network import PodNetworkLayout

Obj = dict[str, Any]
log = logging.getLogger("kubelet")
BACKOFF_START = 1.0
BACKOFF_CAP = 16.0
STABLE_RUN_SECONDS = 60.0
DEFAULT_GRACE = 30.0
# Like a real kubelet's sync period: tokens are renewed and ConfigMap/Secret edits appear.
VOLUME_REFRESH_SECONDS = 60.0
PROBE_KINDS = {"startup": "startupProbe", "readiness": "readinessProbe", "liveness": "livenessProbe"}


@dataclass(frozen=True)
class NodeContext:
    api: KubeApi
    sources: ApiSources
    layout: PodNetworkLayout
    root: Path
    host_ip: str
    api_port: int
    nameserver: str
    probes: ThreadPoolExecutor


def backoff(restarts: int) -> float:
    return float(min(BACKOFF_START * 2 ** max(restarts - 1, 0), BACKOFF_CAP))


class PodWorker:
    def __init__(self, node: NodeContext, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.dir: Path = node.root / "pods" / self.uid
        self.pod_ip: str | None = None
        self.netns: str | None = None
        self.start_time = now_rfc3339()
        self.init_done = not pod["spec"].get("initContainers")
        self.init_failed = False
        self.runs = {c["name"]: ContainerRun(c["name"]) for c in pod["spec"]["containers"]}
        self.init_runs = {c["name"]: ContainerRun(c["name"]) for c in pod["spec"].get("initContainers", [])}
        self.volume_paths: dict[str, Path] | None = None
        self.next_refresh = time.monotonic() + VOLUME_REFRESH_SECONDS
        self.envs: dict[str, dict[str, str]] = {}
        self.message = ""
        self.clock = ConditionClock()
        self.reported: Obj | None = None
        self._saved = ""

    @property
    def name(self) -> str:
        name: str = self.pod["metadata"]["name"]
        return name

    # ---- persistence (a restarted kubelet adopts running Pods) ----

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def save(self) -> None:
        record = {
            "pod_ip": self.pod_ip,
            "netns": self.netns,
            "start_time": self.start_time,
            "init_done": self.init_done,
            "init_failed": self.init_failed,
            "namespace": self.pod["metadata"]["namespace"],
            "name": self.pod["metadata"]["name"],
            "containers": [r.to_json() for r in self.runs.values()],
            "init_containers": [r.to_json() for r in self.init_runs.values()],
        }
        text = json.dumps(record, indent=1)
        if text != self._saved:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.state_file)
            self._saved = text

    def restore(self, record: Obj) -> None:
        self.pod_ip, self.netns = record["pod_ip"], record["netns"]
        self.start_time = record["start_time"]
        self.init_done, self.init_failed = record["init_done"], record["init_failed"]
        for saved in record["containers"]:
            self.runs[saved["name"]] = ContainerRun.from_json(saved)
        for saved in record["init_containers"]:
            self.init_runs[saved["name"]] = ContainerRun.from_json(saved)

    # ---- the sync ----

    @property
    def final(self) -> bool:
        return self.init_failed or (
            self.init_done
            and all(r.started_at and not r.running and r.waiting is None for r in self.runs.values())
        )

    def context(self) -> PodContext:
        node = self.node
        return PodContext(self.pod, self.pod_ip or "", node.host_ip, node.host_ip, node.api_port)

    def sync(self, pod: Obj) -> bool:
        """Move the Pod one step on; False once it is gone (deleted from the API and cleaned up)."""
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            return self.terminate(self.grace(), delete=True)
        if self.final:
            self._release_sandbox()
            return True
        if self.netns is None:
            # Containers start on the next sync, after the Pod's IP is reported: DNS names of the
            # Pod (EndpointSlices) follow its IP, and programs often resolve their own at start.
            self._create_sandbox()
            return True
        if self.volume_paths is None and not self._materialize_volumes():
            return True
        if time.monotonic() >= self.next_refresh:
            self._refresh_volumes()
        if not self.init_done:
            self._sync_init_containers()
            if not self.init_done:
                return True
        for spec in pod["spec"]["containers"]:
            self._sync_container(spec, self.runs[spec["name"]], self.restart_policy)
        return True

    def grace(self) -> float:
        metadata, spec = self.pod["metadata"], self.pod["spec"]
        value = metadata.get("deletionGracePeriodSeconds", spec.get("terminationGracePeriodSeconds"))
        return float(DEFAULT_GRACE if value is None else value)

    def _create_sandbox(self) -> None:
        used = []
        for state in (self.node.root / "pods").glob("*/state.json"):
            used.append(json.loads(state.read_text()).get("pod_ip"))
        try:
            self.pod_ip = sandbox.allocate_ip(self.node.layout, [ip for ip in used if ip])
            self.netns = sandbox.create(self.node.layout, self.pod, self.pod_ip, self.node.nameserver)
        except RuntimeError as error:
            self.message = f"sandbox: {error}"
            self.pod_ip = self.netns = None
            return
        self.save()

    def _release_sandbox(self) -> None:
        if self.netns is not None:
            sandbox.destroy(self.netns)
            self.netns = None
            self.save()

    def _materialize_volumes(self) -> bool:
        paths = {}
        try:
            for volume in self.pod["spec"].get("volumes", []):
                paths[volume["name"]] = materialize(volume, self.dir, self.context(), self.node.sources)
        except images.ImageError as error:
            for container_run in [*self.init_runs.values(), *self.runs.values()]:
                if container_run.started_at is None:
                    container_run.waiting = ("ContainerCreating", error.message)
            return False
        self.volume_paths = paths
        return True

    def _refresh_volumes(self) -> None:
        self.next_refresh = time.monotonic() + VOLUME_REFRESH_SECONDS
        for volume in self.pod["spec"].get("volumes", []):
            if generated(volume):
                try:
                    materialize(volume, self.dir, self.context(), self.node.sources)
                except images.ImageError as error:
                    log.warning("pod %s volume %s not refreshed: %s", self.name, volume["name"], error)

    def _sync_init_containers(self) -> None:
        for spec in self.pod["spec"].get("initContainers", []):
            container_run = self.init_runs[spec["name"]]
            if container_run.succeeded_once:
                continue
            # An init container is retried until it succeeds, unless the Pod never restarts.
            policy = "Never" if self.restart_policy == "Never" else "OnFailure"
            self._sync_container(spec, container_run, policy)
            if container_run.termination is not None and container_run.waiting is None:
                self.init_failed = container_run.termination.exit_code != 0
            if not container_run.succeeded_once:
                return
        self.init_done = True

    @property
    def restart_policy(self) -> str:
        policy: str = self.pod["spec"].get("restartPolicy", "Always")
        return policy

    def _sync_container(self, spec: Obj, container_run: ContainerRun, policy: str) -> None:
        directory = self.dir / "containers" / spec["name"]
        ended = container_run.poll(directory)
        if ended is not None:
            log.info(
                "pod %s container %s exited: %s (%s)", self.name, spec["name"], ended.exit_code, ended.reason
            )
            self._after_exit(spec, container_run, policy)
        if container_run.running:
            container_run.enforce_deadline()
            self._probe(spec, container_run)
            return
        pending = container_run.started_at is None or container_run.waiting is not None
        if pending and time.monotonic() >= container_run.next_start:
            self._start(spec, container_run)

    def _after_exit(self, spec: Obj, container_run: ContainerRun, policy: str) -> None:
        ended = container_run.termination
        assert ended is not None
        if policy == "Never" or (policy == "OnFailure" and ended.exit_code == 0):
            return
        ran = time.monotonic() - container_run.started_monotonic
        delay = BACKOFF_START if ran >= STABLE_RUN_SECONDS else backoff(container_run.restart_count + 1)
        container_run.last_termination, container_run.termination = ended, None
        container_run.waiting = (
            "CrashLoopBackOff",
            f"back-off {delay:g}s restarting failed container={spec['name']} pod={self.name}",
        )
        container_run.next_start = time.monotonic() + delay

    def _start(self, spec: Obj, container_run: ContainerRun) -> None:
        assert self.netns is not None and self.volume_paths is not None
        try:
            profile = images.profile_for(spec["image"])
            env = container_env(self.context(), spec, self.node.sources, sandbox.pod_hostname(self.pod))
            command = [expand(word, env) for word in spec.get("command", [])]
            args = [expand(word, env) for word in spec.get("args", [])]
            argv = images.container_argv(profile, command, args)
            mounts = container_mounts(spec, self.volume_paths)
        except images.ImageError as error:
            log.warning(
                "pod %s container %s cannot start: %s: %s", self.name, spec["name"], error.reason, error
            )
            reason = (
                "ImagePullBackOff"
                if container_run.waiting and container_run.waiting[0] == "ErrImagePull"
                else error.reason
            )
            container_run.waiting = (reason, error.message)
            container_run.next_start = time.monotonic() + BACKOFF_CAP / 2
            return
        if container_run.started_at is not None:
            container_run.restart_count += 1
        log.info("pod %s container %s: starting %s", self.name, spec["name"], argv)
        self.envs[spec["name"]] = env
        container_run.start(
            self.netns,
            self.dir / "containers" / spec["name"],
            self.dir / "logs" / f"{spec['name']}.log",
            argv,
            env,
            mounts,
            sandbox.pod_hostname(self.pod),
            spec.get("workingDir", "/"),
        )
        self.save()

    # ---- probes ----

    def _probe(self, spec: Obj, container_run: ContainerRun) -> None:
        now = time.monotonic()
        if not container_run.probes:
            container_run.probes = {
                kind: ProbeState.starting(spec[field], container_run.started_monotonic)
                for kind, field in PROBE_KINDS.items()
                if field in spec
            }
        for state in container_run.probes.values():
            if state.pending is not None and state.pending.done():
                success, message = state.pending.result()
                state.pending = None
                state.record(success, message, now)
        startup = container_run.probes.get("startup")
        liveness = container_run.probes.get("liveness")
        if startup is not None and startup.healthy is False:
            self._kill_for_probe(spec, container_run, "Startup", startup)
        elif liveness is not None and liveness.healthy is False:
            self._kill_for_probe(spec, container_run, "Liveness", liveness)
        started = startup is None or startup.healthy is True
        for kind, state in container_run.probes.items():
            if (kind == "startup") != started and state.due(now):
                state.pending = self.node.probes.submit(
                    probes.run, self._probe_spec(spec, state.spec), self._target(spec, container_run)
                )

    def _kill_for_probe(self, spec: Obj, container_run: ContainerRun, kind: str, state: ProbeState) -> None:
        if container_run.kill_deadline is None:
            self.message = f"{kind} probe failed: {state.message}"
            log.info("pod %s container %s: %s, killing it", self.name, spec["name"], self.message)
            grace = float(state.spec.get("terminationGracePeriodSeconds", self.grace()))
            container_run.stop(grace, "Error")

    def _probe_spec(self, spec: Obj, probe: Obj) -> Obj:
        """An exec probe's program mapped like the container's own."""
        if "exec" not in probe:
            return probe
        try:
            argv = images.container_argv(images.profile_for(spec["image"]), probe["exec"]["command"], None)
        except images.ImageError:
            return probe
        return {**probe, "exec": {"command": argv}}

    def _target(self, spec: Obj, container_run: ContainerRun) -> ProbeTarget:
        ports = {p["name"]: int(p["containerPort"]) for p in spec.get("ports", []) if p.get("name")}
        prefix = ["nsenter", "-t", str(container_run.pid), "-m", "-u", "-n", "--"]
        env = self.envs.get(spec["name"]) or {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        }
        return ProbeTarget(self.pod_ip or "", ports, prefix, env)

    def _view(self, spec: Obj, container_run: ContainerRun) -> ContainerView:
        def passed(kind: str) -> bool:
            """No such probe in the spec, or it has succeeded (its state exists only once probing began)."""
            state = container_run.probes.get(kind)
            return PROBE_KINDS[kind] not in spec or (state is not None and state.healthy is True)

        started = container_run.running and passed("startup")
        ready = started and container_run.kill_deadline is None and passed("readiness")
        return ContainerView(spec, container_run, ready, started)

    def status(self) -> Obj:
        spec = self.pod["spec"]
        return pod_status(
            clock=self.clock,
            pod_ip=self.pod_ip,
            host_ip=self.node.host_ip,
            start_time=self.start_time,
            sandbox_ready=self.netns is not None,
            init_views=[self._view(c, self.init_runs[c["name"]]) for c in spec.get("initContainers", [])],
            init_done=self.init_done,
            init_failed=self.init_failed,
            views=[self._view(c, self.runs[c["name"]]) for c in spec["containers"]],
            message=self.message,
        )

    # ---- the end ----

    def terminate(self, grace: float, delete: bool) -> bool:
        """SIGTERM every container, SIGKILL after `grace`; once all are gone, tear the sandbox down and
        (when asked) remove the Pod from the API. False once finished."""
        alive = False
        for container_run in [*self.init_runs.values(), *self.runs.values()]:
            container_run.poll(self.dir / "containers" / container_run.name)
            if container_run.running:
                container_run.stop(grace)
                container_run.enforce_deadline()
                alive = True
        if alive:
            return True
        self._release_sandbox()
        if delete:
            metadata = self.pod["metadata"]
            body = {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
            try:
                self.node.api.delete(
                    f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}", body
                )
            except ApiError as error:
                if error.status != 409:  # 409: a newer Pod of that name; ours is gone already
                    raise
        logs = self.dir / "logs"
        if logs.is_dir():  # kept for a post-mortem, like /var/log/pods
            kept = self.node.root / "logs" / f"{self.pod['metadata']['namespace']}_{self.name}_{self.uid}"
            kept.parent.mkdir(parents=True, exist_ok=True)
            logs.rename(kept)
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

"""The kubelet's loop: list the Pods bound to this Node, sync each one's worker, report status,
keep the Node Ready and provision volumes. State under the root directory lets a restarted kubelet
adopt the Pods its predecessor started (their processes do not depend on the kubelet)."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import urllib3

from testenv.kubeapi import ApiError, KubeApi, Obj
from testenv.kubelet.apisources import ApiSources
from testenv.kubelet.node import NodeAgent
from testenv.kubelet.podworker import NodeContext, PodWorker
from testenv.kubelet.provisioner import Provisioner
from testenv.kubelet.serviceproxy import ServiceProxy, service_backends
from testenv.network import PodNetworkLayout

log = logging.getLogger("kubelet")
HEARTBEAT_SECONDS = 10.0
ORPHAN_GRACE = 2.0
FINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class KubeletConfig:
    kubeconfig: str
    node_name: str
    root: str
    network_index: int
    api_port: int
    tick_seconds: float = 0.3

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=1))

    @classmethod
    def read(cls, path: Path) -> KubeletConfig:
        return cls(**json.loads(path.read_text()))


class Kubelet:
    def __init__(self, config: KubeletConfig) -> None:
        self.config = config
        self.api = KubeApi(Path(config.kubeconfig))
        layout = PodNetworkLayout(config.network_index)
        root = Path(config.root)
        self.node = NodeContext(
            api=self.api,
            sources=ApiSources(self.api),
            layout=layout,
            root=root,
            host_ip=layout.gateway,
            api_port=config.api_port,
            nameserver=layout.gateway,
            probes=ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe"),
        )
        self.agent = NodeAgent(self.api, config.node_name, layout.gateway)
        self.provisioner = Provisioner(self.api, root / "volumes")
        self.service_proxy = ServiceProxy(layout.bridge, layout.service_subnet)
        self.workers: dict[str, PodWorker] = {}
        self.stopping = False

    def adopt(self) -> None:
        """Take over the Pods a previous kubelet left running."""
        for state_file in sorted((self.node.root / "pods").glob("*/state.json")):
            record = json.loads(state_file.read_text())
            uid = state_file.parent.name
            pod = self.api.get_or_none(f"/api/v1/namespaces/{record['namespace']}/pods/{record['name']}")
            placeholder = pod if pod and pod["metadata"]["uid"] == uid else None
            worker = PodWorker(self.node, placeholder or _placeholder(record, uid))
            worker.restore(record)
            self.workers[uid] = worker
            log.info(
                "adopted pod %s/%s (%s)",
                record["namespace"],
                record["name"],
                "running" if placeholder else "orphan",
            )

    def tick(self) -> None:
        pods = self.api.items("/api/v1/pods", {"fieldSelector": f"spec.nodeName={self.config.node_name}"})
        self.provisioner.sync()
        services = self.api.items("/api/v1/services")
        slices = self.api.items("/apis/discovery.k8s.io/v1/endpointslices")
        self.service_proxy.update(
            service_backends(services, slices, (self.node.host_ip, self.config.api_port))
        )
        listed = set()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            listed.add(uid)
            worker = self.workers.get(uid)
            if worker is None:
                if pod.get("status", {}).get("phase") in FINAL_PHASES:
                    # Finished before this kubelet started: nothing runs; a deleted one is removed.
                    if pod["metadata"].get("deletionTimestamp"):
                        with contextlib.suppress(ApiError):
                            PodWorker(self.node, pod).terminate(0, delete=True)
                    continue
                worker = self.workers[uid] = PodWorker(self.node, pod)
                log.info("new pod %s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])
            self._sync(worker, pod)
        for uid, worker in list(self.workers.items()):
            if uid not in listed and not worker.terminate(ORPHAN_GRACE, delete=False):
                log.info("removed pod %s", worker.name)
                del self.workers[uid]

    def _sync(self, worker: PodWorker, pod: Obj) -> None:
        try:
            if not worker.sync(pod):
                log.info("deleted pod %s/%s", pod["metadata"]["namespace"], worker.name)
                del self.workers[worker.uid]
                return
            worker.save()
            status = worker.status()
            if status != worker.reported:
                metadata = pod["metadata"]
                path = f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/status"
                self.api.merge_patch(path, {"metadata": {"uid": worker.uid}, "status": status})
                worker.reported = status
        except ApiError as error:
            if error.status not in (404, 409):
                log.warning("pod %s: %s", worker.name, error)
        except Exception:
            log.error("pod %s: %s", worker.name, traceback.format_exc())

    def run(self) -> None:
        self.agent.register()
        self.provisioner.install()
        self.adopt()
        log.info("node %s ready; %d pods adopted", self.config.node_name, len(self.workers))
        next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
        while not self.stopping:
            started = time.monotonic()
            try:
                self.tick()
                if started >= next_heartbeat:
                    self.agent.heartbeat()
                    next_heartbeat = started + HEARTBEAT_SECONDS
            except (ApiError, urllib3.exceptions.HTTPError, OSError) as error:
                log.warning("tick: %s", error)
            time.sleep(max(0.0, self.config.tick_seconds - (time.monotonic() - started)))
        self.node.probes.shutdown(wait=False, cancel_futures=True)
        self.service_proxy.close()


def _placeholder(record: Obj, uid: str) -> Obj:
    """A Pod gone from the API while no kubelet ran: enough of it to stop its containers."""
    return {
        "metadata": {"name": record["name"], "namespace": record["namespace"], "uid": uid},
        "spec": {"containers": [{"name": c["name"], "image": ""} for c in record["containers"]]},
    }


def main(config_path: Path) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    kubelet = Kubelet(KubeletConfig.read(config_path))

    def stop(signum: int, frame: FrameType | None) -> None:
        kubelet.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kubelet.run()

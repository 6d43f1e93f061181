"""End-to-end helpers: the operator as a host process, EtcdCluster reads, and a checking writer."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from petcd.proto import rpc_pb2, rpc_pb2_grpc
from testenv.fixtures import KubeCluster
from testenv.kubeapi import Obj
from testenv.processes import LoggedProcess, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "etcdcluster.yaml"
UPSTREAM_ETCD_IMAGE = "quay.io/coreos/etcd:v3.4.23"
PETCD_IMAGE = "petcd/petcd:0.1.0"
WAIT = 240.0
TIMINGS: list[tuple[str, str, float]] = []  # (test, what, seconds): printed at the end, never asserted


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Operator:
    """petcd-operator on the host, watching one namespace, restartable; killed at the end."""

    def __init__(self, cluster: KubeCluster, namespace: str, log_dir: Path) -> None:
        self.cluster, self.namespace, self.log_dir = cluster, namespace, log_dir
        self.process: LoggedProcess | None = None
        self.metrics_port = 0

    def start(self, failpoint: str = "") -> None:
        self.stop()
        self.metrics_port = free_port()
        env = self.cluster.env()
        env["PETCD_OPERATOR_FAILPOINT"] = failpoint
        env["PYTHONUNBUFFERED"] = "1"
        argv = [
            sys.executable,
            "-m",
            "petcd_operator.main",
            f"--namespace={self.namespace}",
            f"--metrics-port={self.metrics_port}",
            f"--liveness=http://127.0.0.1:{free_port()}/healthz",
            f"--default-image={PETCD_IMAGE}",
            "--learner-timeout=120",
        ]
        self.process = LoggedProcess("petcd-operator", argv, self.log_dir / "operator.log", env=env)

    def exited(self) -> bool:
        return self.process is not None and not self.process.running()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5)
            self.process = None

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines) if self.process else ""


def example(name: str, image: str | None, replicas: int | None = None) -> Obj:
    body: Obj = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"]["name"] = name
    if image:
        body["spec"]["image"] = image
    if replicas is not None:
        body["spec"]["replicas"] = replicas
    return body


@dataclass
class EtcdClusterHandle:
    cluster: KubeCluster
    namespace: str
    name: str

    @property
    def path(self) -> str:
        return f"/apis/petcd.io/v1alpha1/namespaces/{self.namespace}/etcdclusters/{self.name}"

    def get(self) -> Obj:
        return self.cluster.api.get(self.path)

    def status(self) -> Obj:
        status: Obj = self.get().get("status") or {}
        return status

    def condition(self, kind: str) -> Obj:
        return next((c for c in self.status().get("conditions", []) if c["type"] == kind), {})

    def scale(self, replicas: int) -> None:
        self.cluster.kubectl(
            "scale", "-n", self.namespace, f"etcdcluster/{self.name}", f"--replicas={replicas}"
        )

    def patch_spec(self, spec: Obj) -> None:
        self.cluster.api.merge_patch(self.path, {"spec": spec})

    def converged(self, replicas: int) -> bool:
        """Available, nothing in progress, `replicas` healthy voters and Ready pods, generation observed."""
        body = self.get()
        status = body.get("status") or {}
        members = status.get("members", [])
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return (
            status.get("observedGeneration") == body["metadata"]["generation"]
            and conditions.get("Available") == "True"
            and conditions.get("Progressing") == "False"
            and not status.get("operation")
            and len(members) == replicas
            and status.get("readyReplicas") == replicas
            and all(m["healthy"] and not m["learner"] for m in members)
        )

    def wait_converged(self, replicas: int, timeout: float = WAIT, operator: Operator | None = None) -> float:
        started = time.monotonic()

        def done() -> bool:
            if operator is not None and operator.exited():
                raise AssertionError(f"the operator exited:\n{operator.log_tail()}")
            return self.converged(replicas)

        try:
            wait_for(done, timeout, f"{self.name} to converge at {replicas} members", interval=1)
        except TimeoutError as error:
            detail = yaml.safe_dump(self.status())
            tail = operator.log_tail() if operator else ""
            raise AssertionError(f"{error}\nstatus:\n{detail}\noperator:\n{tail}") from error
        return time.monotonic() - started

    def pods(self) -> list[Obj]:
        selector = {"labelSelector": f"petcd.io/cluster={self.name}"}
        return self.cluster.api.items(f"/api/v1/namespaces/{self.namespace}/pods", selector)

    def pvc_names(self) -> list[str]:
        claims = self.cluster.api.items(f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims")
        return sorted(c["metadata"]["name"] for c in claims if not c["metadata"].get("deletionTimestamp"))

    def wait_pvcs(self, replicas: int) -> None:
        """Exactly the PVCs of ordinals 0..replicas-1 (scale-down deletes the others)."""
        wanted = [f"data-{self.name}-{i}" for i in range(replicas)]
        wait_for(lambda: self.pvc_names() == wanted, WAIT, f"exactly the PVCs of {replicas} members", 1)

    def endpoints(self) -> list[str]:
        return [f"{p['status']['podIP']}:2379" for p in self.pods() if p.get("status", {}).get("podIP")]

    def member_ids(self) -> dict[str, str]:
        return {m["name"]: m["id"] for m in self.status().get("members", [])}


@dataclass
class Writer:
    """Writes keys continuously to whichever member answers; records every acknowledged write."""

    endpoints: Callable[[], list[str]]
    acknowledged: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            for target in self.endpoints():
                key, value = f"w/{n:06d}", f"v{n}"
                try:
                    with grpc.insecure_channel(target) as channel:
                        stub: Any = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
                        stub.Put(rpc_pb2.PutRequest(key=key.encode(), value=value.encode()), timeout=3)
                except grpc.RpcError:
                    self.failures += 1
                    continue
                self.acknowledged[key] = value
                n += 1
                break
            self.stop_event.wait(0.05)

    def stop_and_verify(self, endpoints: list[str]) -> int:
        """Stop writing, then read every key back (linearizable) and check no acknowledged write is lost."""
        self.stop_event.set()
        if self.thread:
            self.thread.join(timeout=30)
        for target in endpoints:
            try:
                with grpc.insecure_channel(target) as channel:
                    stub: Any = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
                    response = stub.Range(rpc_pb2.RangeRequest(key=b"w/", range_end=b"w0"), timeout=10)
            except grpc.RpcError:
                continue
            stored = {kv.key.decode(): kv.value.decode() for kv in response.kvs}
            lost = {k: v for k, v in self.acknowledged.items() if stored.get(k) != v}
            assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {sorted(lost)[:5]}"
            return len(self.acknowledged)
        raise AssertionError("no member answered the final read")


def record(test: str, what: str, seconds: float) -> None:
    TIMINGS.append((test, what, seconds))
    print(f"[timing] {test}: {what} {seconds:.1f}s", file=sys.stderr, flush=True)


def operator_env_ok() -> bool:
    return os.geteuid() == 0 or bool(os.environ.get("KUBECONFIG"))

"""pytest fixtures for tests that need Kubernetes (loaded by tests/conftest.py as a plugin).

- `kube_cluster` (session): the local cluster started once per session, or the cluster KUBECONFIG
  names when that variable is set (tests then run unchanged against it).
- `namespace`: a fresh namespace per test, deleted afterwards.

PETCD_TESTENV_ETCD_SERVERS (comma-separated client URLs) makes the local cluster's API server use
that store instead of starting Debian's etcd.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from testenv import toolchain
from testenv.kubeapi import KubeApi, Obj
from testenv.network import NETNS_DIR
from testenv.processes import wait_for
from testenv.toolchain import Toolchain

if TYPE_CHECKING:
    from testenv.cluster import LocalCluster


class KubeCluster:
    """What a test needs of a cluster, whichever started it."""

    def __init__(self, kubeconfig: Path, local: LocalCluster | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.local = local  # a testenv.cluster.LocalCluster when this session started it
        self.api = KubeApi(kubeconfig)

    @functools.cached_property
    def tools(self) -> Toolchain:
        """kubectl and helm (built on first use when missing, as for a cluster given by KUBECONFIG)."""
        return toolchain.ensure()

    @property
    def server_address(self) -> str:
        """The API server's host: on a local cluster also the Pods' gateway and DNS server."""
        host = self.api.server.split("://", 1)[1].rsplit(":", 1)[0]
        return host

    def env(self) -> dict[str, str]:
        return dict(os.environ, KUBECONFIG=str(self.kubeconfig))

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        return self._run([self.tools["kubectl"], *args], check, timeout)

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        return self._run([self.tools["helm"], *args], check, timeout)

    def _run(self, argv: Sequence[str], check: bool, timeout: float) -> str:
        result = subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def pod(self, namespace: str, name: str) -> Obj | None:
        return self.api.get_or_none(f"/api/v1/namespaces/{namespace}/pods/{name}")

    def pod_netns(self, namespace: str, name: str) -> str:
        """The network namespace of a Pod run by a process kubelet on this machine."""
        pod = self.pod(namespace, name)
        assert pod is not None, f"pod {namespace}/{name} not found"
        suffix = "-" + pod["metadata"]["uid"].replace("-", "")[:12]
        found = [entry.name for entry in NETNS_DIR.glob(f"*{suffix}")] if NETNS_DIR.is_dir() else []
        assert found, f"pod {namespace}/{name} has no network namespace on this machine"
        return found[0]

    def exec_in_pod(
        self, namespace: str, name: str, argv: Sequence[str], timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a host program inside the Pod's network namespace, with its /etc/hosts and
        /etc/resolv.conf (so cluster DNS names resolve as they do for the Pod)."""
        netns = self.pod_netns(namespace, name)
        result = subprocess.run(
            ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} in {namespace}/{name} failed:\n{result.stdout}{result.stderr}"
            )
        return result

    def container_pid(self, namespace: str, name: str, container: str | None = None) -> int:
        pod = self.pod(namespace, name)
        assert pod is not None, f"pod {namespace}/{name} not found"
        statuses = pod["status"].get("containerStatuses", [])
        status = next(s for s in statuses if container is None or s["name"] == container)
        scheme, _, pid = status.get("containerID", "").partition("://")
        assert scheme == "process", f"{namespace}/{name} is not run by a process kubelet (or not running)"
        return int(pid)

    def container_environment(
        self, namespace: str, name: str, container: str | None = None
    ) -> dict[str, str]:
        """The environment of the container's program: the child of the kubelet's shim that carries
        the container's variables (not the shim's `mount` runs, nor a child not yet exec'd)."""
        shim = self.container_pid(namespace, name, container)
        found: dict[str, str] = {}

        def program_started() -> bool:
            for child in Path(f"/proc/{shim}/task/{shim}/children").read_text().split():
                try:
                    entries = Path(f"/proc/{child}/environ").read_text().split("\0")
                except OSError:
                    continue
                environ = dict(entry.split("=", 1) for entry in entries if "=" in entry)
                if "KUBERNETES_SERVICE_HOST" in environ:
                    found.update(environ)
                    return True
            return False

        wait_for(program_started, 60, f"the program of {namespace}/{name} to start")
        return found

    def exec_in_container(
        self,
        namespace: str,
        name: str,
        argv: Sequence[str],
        container: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run a host program in the container's network, mount (volumes) and UTS namespaces."""
        pid = self.container_pid(namespace, name, container)
        command = ["nsenter", "-t", str(pid), "-m", "-u", "-n", "--", *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)

    def pod_log(self, namespace: str, name: str, container: str) -> str:
        """A container's output, from the process kubelet's files (all restarts appended)."""
        if self.local is None:
            return self.kubectl("logs", "-n", namespace, name, "-c", container, check=False)
        pod = self.pod(namespace, name)
        assert pod is not None
        path = self.local.kubelet_root / "pods" / pod["metadata"]["uid"] / "logs" / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_pod(self, namespace: str, name: str, condition: str = "Ready", timeout: float = 120) -> Obj:
        """Wait for the Pod to exist with the condition True; returns it."""

        def satisfied() -> bool:
            pod = self.pod(namespace, name)
            conditions = pod.get("status", {}).get("conditions", []) if pod else []
            return any(c["type"] == condition and c["status"] == "True" for c in conditions)

        wait_for(satisfied, timeout, f"pod {namespace}/{name} to be {condition}", interval=0.5)
        pod = self.pod(namespace, name)
        assert pod is not None
        return pod


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    existing = os.environ.get("KUBECONFIG")
    if existing:
        yield KubeCluster(Path(existing))
        return
    if os.geteuid() != 0:
        pytest.skip("the local cluster needs root (network namespaces, bind mounts)")
    from testenv.cluster import LocalCluster

    store = os.environ.get("PETCD_TESTENV_ETCD_SERVERS")  # e.g. a petcd cluster as the API server's store
    cluster = LocalCluster(etcd_servers=store.split(",") if store else None)
    try:
        cluster.start(lambda line: print(f"[testenv] {line}", flush=True))
        yield KubeCluster(cluster.kubeconfig, cluster)
    finally:
        cluster.stop()


def namespace_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"{base}-{uuid.uuid4().hex[:5]}"


@pytest.fixture
def namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    local = kube_cluster.local
    if local is not None and local.kubelet is not None:
        local.kubelet.check_running()  # a crashed kubelet explains every later failure: say so first
    name = namespace_name(request.node.name)
    api = kube_cluster.api
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(
        lambda: api.get_or_none(f"/api/v1/namespaces/{name}/serviceaccounts/default") is not None,
        60,
        f"the default ServiceAccount of {name}",
    )
    yield name
    api.delete(f"/api/v1/namespaces/{name}")

"""A whole local cluster: pod network, control plane and the process kubelet, started and stopped
together. The kubelet is a separate process so tests can kill and restart it."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from testenv import toolchain
from testenv.controlplane import ControlPlane, ControlPlaneConfig
from testenv.kubeapi import KubeApi
from testenv.kubelet.agent import KubeletConfig
from testenv.network import LOCK_DIR, ClusterNetwork
from testenv.processes import LoggedProcess, kill_recorded_groups, record_groups, wait_for

TESTS_DIR = Path(__file__).resolve().parents[1]
NODE_NAME = "testenv-node"
READY_TIMEOUT = 60.0


class LocalCluster:
    def __init__(self, run_dir: Path | None = None, etcd_servers: list[str] | None = None) -> None:
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="petcd-testenv-"))
        self.etcd_servers = etcd_servers
        self.network: ClusterNetwork | None = None
        self.control_plane: ControlPlane | None = None
        self.kubelet: LoggedProcess | None = None
        self.startup_seconds = 0.0

    @property
    def kubeconfig(self) -> Path:
        return self.run_dir / "kubeconfig"

    @property
    def processes_file(self) -> Path:
        assert self.network is not None
        return LOCK_DIR / f"cluster-{self.network.layout.index}.pids"

    @property
    def kubelet_root(self) -> Path:
        return self.run_dir / "kubelet"

    def start(self, say: Callable[[str], None] = lambda line: None) -> None:
        started = time.monotonic()
        tools = toolchain.ensure(say)
        try:
            self.network = ClusterNetwork()
            # A predecessor on this index killed with SIGKILL left its control plane running, bound
            # to the addresses this cluster is about to use.
            kill_recorded_groups(self.processes_file)
            self.network.create()
            layout = self.network.layout
            say(f"pod network {layout.subnet} on bridge {layout.bridge}")
            config = ControlPlaneConfig(
                self.run_dir,
                layout.gateway,
                service_cidr=str(layout.service_subnet),
                etcd_servers=self.etcd_servers,
            )
            self.control_plane = ControlPlane(config, tools)
            self.control_plane.start()
            plane = self.control_plane
            say(f"control plane up in {plane.startup_seconds:.1f}s at {plane.server}")
            self.start_kubelet()
            self._wait_usable()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        say(f"cluster ready in {self.startup_seconds:.1f}s; logs in {self.run_dir / 'logs'}")

    def _wait_usable(self) -> None:
        api = KubeApi(self.kubeconfig)

        def node_ready() -> bool:
            assert self.kubelet is not None
            self.kubelet.check_running()
            node = api.get_or_none(f"/api/v1/nodes/{NODE_NAME}")
            taints = node["spec"].get("taints", []) if node else [{}]
            return node is not None and not taints

        wait_for(node_ready, READY_TIMEOUT, f"node {NODE_NAME} to be Ready and untainted")
        # Pods can only be created once the namespace's ServiceAccount exists.
        wait_for(
            lambda: api.get_or_none("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            READY_TIMEOUT,
            "the default ServiceAccount",
        )

    def start_kubelet(self) -> None:
        assert self.network is not None and self.control_plane is not None
        config = KubeletConfig(
            kubeconfig=str(self.kubeconfig),
            node_name=NODE_NAME,
            root=str(self.kubelet_root),
            network_index=self.network.layout.index,
            api_port=self.control_plane.config.api_port,
        )
        config_path = self.run_dir / "kubelet.json"
        config.write(config_path)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
        self.kubelet = LoggedProcess(
            "kubelet",
            [sys.executable, "-m", "testenv.kubelet", str(config_path)],
            self.run_dir / "logs" / "kubelet.log",
            env=env,
        )
        record_groups(self.processes_file, [p.pid for p in [*self.control_plane.processes, self.kubelet]])

    def kill_kubelet(self) -> None:
        """A kubelet crash: SIGKILL, its Pods' processes keep running."""
        if self.kubelet is not None:
            self.kubelet.kill()
            self.kubelet = None

    def stop(self) -> None:
        if self.kubelet is not None:
            self.kubelet.stop()
            self.kubelet = None
        if self.network is not None:
            self.processes_file.unlink(missing_ok=True)
            self.network.release()  # kills every Pod process left in the cluster's namespaces
            self.network = None
        if self.control_plane is not None:
            self.control_plane.stop()
            self.control_plane = None
        # Data goes; logs (the control plane's and every container's) stay for a post-mortem.
        for bulky in [
            self.run_dir / "etcd",
            self.kubelet_root / "volumes",
            *self.kubelet_root.glob("pods/*/volumes"),
        ]:
            shutil.rmtree(bulky, ignore_errors=True)

"""The Kubernetes control plane on this machine: a store (Debian's etcd unless endpoints are given),
kube-apiserver, kube-controller-manager, kube-scheduler and CoreDNS, each a process logging into the
run directory. Everything listens on one address (the pod network's gateway, so Pods reach the API
server and DNS) except the private etcd, which stays on loopback."""

from __future__ import annotations

import base64
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import yaml

from testenv import petcd_store
from testenv import pki as pki_module
from testenv.processes import LoggedProcess, wait_for
from testenv.toolchain import Toolchain

CLUSTER_DOMAIN = "cluster.local"
CONTEXT = "testenv"
START_TIMEOUT = 90.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def write_kubeconfig(path: Path, server: str, tls: pki_module.Pki) -> None:
    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CONTEXT, "cluster": {"server": server, "certificate-authority-data": b64(tls.ca_cert)}}
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64(tls.admin_cert),
                    "client-key-data": b64(tls.admin_key),
                },
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "admin"}}],
        "current-context": CONTEXT,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def corefile(address: str, port: int, kubeconfig: Path) -> str:
    # No cache: records must follow Pod and EndpointSlice changes at once, as tests expect.
    return f"""{CLUSTER_DOMAIN}:{port} in-addr.arpa:{port} {{
    bind {address}
    errors
    log
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa {{
        kubeconfig {kubeconfig} {CONTEXT}
        pods insecure
    }}
}}
"""


@dataclass
class ControlPlaneConfig:
    run_dir: Path
    address: str
    api_port: int = 6443
    dns_port: int = 53
    # ClusterIPs; the first one is the `kubernetes` Service's.
    service_cidr: str = "10.96.0.0/16"
    # The store: None starts Debian's etcd on loopback; a list points the API server elsewhere
    # (e.g. a petcd cluster).
    etcd_servers: list[str] | None = None
    # Without etcd_servers: "etcd" (Debian's, one member) or "petcd" (3 members); PETCD_TESTENV_STORE.
    store: str = field(default_factory=petcd_store.store_from_environment)
    extra_apiserver_flags: list[str] = field(default_factory=list)


class ControlPlane:
    def __init__(self, config: ControlPlaneConfig, tools: Toolchain) -> None:
        self.config = config
        self.tools = tools
        self.processes: list[LoggedProcess] = []
        self.logs = config.run_dir / "logs"
        self.kubeconfig = config.run_dir / "kubeconfig"
        self.kubernetes_service_ip = str(ipaddress.IPv4Network(config.service_cidr).network_address + 1)
        self.pki = pki_module.generate(config.run_dir / "pki", [config.address, self.kubernetes_service_ip])
        self.etcd_servers: list[str] = list(config.etcd_servers or [])
        self.petcd_members: list[petcd_store.PetcdMember] = []

    @property
    def server(self) -> str:
        return f"https://{self.config.address}:{self.config.api_port}"

    def _start(self, name: str, argv: list[str]) -> LoggedProcess:
        process = LoggedProcess(name, argv, self.logs / f"{name}.log", cwd=self.config.run_dir)
        self.processes.append(process)
        return process

    def start(self) -> None:
        started = time.monotonic()
        try:
            if self.etcd_servers:
                pass
            elif self.config.store == "petcd":
                self._start_petcd()
            else:
                self._start_etcd()
            apiserver = self._start_apiserver()
            write_kubeconfig(self.kubeconfig, self.server, self.pki)
            wait_for(lambda: self._api_ready(apiserver), START_TIMEOUT, "kube-apiserver /readyz")
            self._start_controllers()
            dns = self._start_coredns()
            wait_for(lambda: self._dns_ready(dns), START_TIMEOUT, "CoreDNS to answer")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        argv = ["etcd", "--name", "store", "--data-dir", str(self.config.run_dir / "etcd")]
        argv += ["--listen-client-urls", client_url, "--advertise-client-urls", client_url]
        argv += ["--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url]
        argv += ["--initial-cluster", f"store={peer_url}", "--log-level", "warn"]
        self._start("etcd", argv)
        self.etcd_servers = [client_url]

    def _start_petcd(self) -> None:
        self.petcd_members, processes = petcd_store.start(self.config.run_dir, self.logs)
        self.processes += processes
        self.etcd_servers = [m.client_url for m in self.petcd_members]
        self.config.extra_apiserver_flags += petcd_store.apiserver_flags()

    def _start_apiserver(self) -> LoggedProcess:
        tls = self.pki
        argv = [
            self.tools["kube-apiserver"],
            f"--etcd-servers={','.join(self.etcd_servers)}",
            f"--bind-address={self.config.address}",
            f"--advertise-address={self.config.address}",
            f"--secure-port={self.config.api_port}",
            f"--tls-cert-file={tls.serving_cert}",
            f"--tls-private-key-file={tls.serving_key}",
            f"--client-ca-file={tls.ca_cert}",
            f"--service-account-key-file={tls.sa_public_key}",
            f"--service-account-signing-key-file={tls.sa_private_key}",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-cluster-ip-range={self.config.service_cidr}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # With the default reconciler the API server waits ~60 s on shutdown to remove its
            # endpoint when the store is already gone.
            "--endpoint-reconciler-type=none",
            *self.config.extra_apiserver_flags,
        ]
        return self._start("kube-apiserver", argv)

    def _api_ready(self, apiserver: LoggedProcess) -> bool:
        apiserver.check_running()
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        connection = http.client.HTTPSConnection(
            self.config.address, self.config.api_port, context=context, timeout=2
        )
        try:
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def _start_controllers(self) -> None:
        kubeconfig = f"--kubeconfig={self.kubeconfig}"
        self._start(
            "kube-controller-manager",
            [
                self.tools["kube-controller-manager"],
                kubeconfig,
                "--secure-port=0",
                "--leader-elect=false",
                f"--service-account-private-key-file={self.pki.sa_private_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                "--use-service-account-credentials=true",
                # The process kubelet keeps its Node Ready itself; without this controller a node
                # whose kubelet is stopped for a while is not tainted and emptied.
                "--controllers=*,-node-lifecycle-controller",
            ],
        )
        self._start(
            "kube-scheduler",
            [self.tools["kube-scheduler"], kubeconfig, "--leader-elect=false", "--secure-port=0"],
        )

    def _start_coredns(self) -> LoggedProcess:
        path = self.config.run_dir / "Corefile"
        path.write_text(corefile(self.config.address, self.config.dns_port, self.kubeconfig))
        return self._start("coredns", [self.tools["coredns"], "-conf", str(path)])

    def _dns_ready(self, coredns: LoggedProcess) -> bool:
        coredns.check_running()
        query = dns.message.make_query(f"kubernetes.default.svc.{CLUSTER_DOMAIN}", "A")
        try:
            answer = dns.query.udp(query, self.config.address, port=self.config.dns_port, timeout=1)
        except (dns.exception.DNSException, OSError):
            return False
        return any(self.kubernetes_service_ip in rrset.to_text() for rrset in answer.answer)

    def stop(self) -> None:
        """Stop in reverse start order, so the API server goes before its store."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

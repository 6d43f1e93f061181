"""The process kubelet's pure rules, checked without a cluster: images, command lines, environment
expansion, DNS files, probe thresholds and Pod phases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testenv.kubelet import images, podenv, sandbox
from testenv.kubelet.containers import ContainerRun, Termination
from testenv.kubelet.probes import ProbeState
from testenv.kubelet.serviceproxy import service_backends
from testenv.kubelet.status import phase

pytestmark = pytest.mark.unit


def fake_which(name: str) -> str | None:
    known = {
        "etcd": "/usr/bin/etcd",
        "etcdctl": "/usr/bin/etcdctl",
        "petcd": "/venv/bin/petcd",
        "sh": "/bin/sh",
    }
    return known.get(name.rsplit("/", 1)[-1])


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("quay.io/coreos/etcd:v3.5.17", "quay.io/coreos/etcd"),
        ("localhost:5000/petcd:dev", "localhost:5000/petcd"),
        ("registry.k8s.io/etcd@sha256:abc", "registry.k8s.io/etcd"),
        ("petcd", "petcd"),
    ],
)
def test_repository_drops_tag_and_digest_but_not_a_registry_port(image: str, repository: str) -> None:
    assert images.repository(image) == repository


def test_upstream_etcd_images_run_debians_etcd_and_unknown_images_are_refused() -> None:
    for image in (
        "quay.io/coreos/etcd:v3.4.23",
        "gcr.io/etcd-development/etcd:v3.5.0",
        "registry.k8s.io/etcd:3.5",
    ):
        profile = images.profile_for(image)
        assert images.container_argv(profile, None, None, fake_which) == ["/usr/bin/etcd"]
    with pytest.raises(images.ImageError) as refused:
        images.profile_for("nginx:1.27")
    assert refused.value.reason == "ErrImagePull"
    assert "nginx:1.27" in refused.value.message


def test_command_replaces_entrypoint_and_args_replace_cmd() -> None:
    profile = images.ImageProfile(
        entrypoint=("petcd",), cmd=("--name", "default"), executables={"petcd": "petcd"}
    )
    assert images.container_argv(profile, None, None, fake_which) == ["/venv/bin/petcd", "--name", "default"]
    assert images.container_argv(profile, None, ["--name", "x"], fake_which) == [
        "/venv/bin/petcd",
        "--name",
        "x",
    ]
    assert images.container_argv(profile, ["/usr/local/bin/petcd"], None, fake_which) == ["/venv/bin/petcd"]
    etcd = images.profile_for("quay.io/coreos/etcd:v3.4.23")
    argv = images.container_argv(etcd, ["/usr/local/bin/etcdctl", "endpoint", "health"], None, fake_which)
    assert argv == ["/usr/bin/etcdctl", "endpoint", "health"]
    with pytest.raises(images.ImageError, match="executable file not found"):
        images.container_argv(etcd, ["/opt/nothing"], None, fake_which)


def test_petcd_entrypoint_and_cmd_come_from_the_dockerfile(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        'FROM python:3.11\nENTRYPOINT ["petcd"]\nCMD ["--data-dir", \\\n "/var/lib/petcd"]\n'
    )
    profile = images.petcd_profile(dockerfile)
    assert (profile.entrypoint, profile.cmd) == (("petcd",), ("--data-dir", "/var/lib/petcd"))
    assert images.petcd_profile(tmp_path / "missing").entrypoint == ("petcd",)


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)-$(B)", "1-two"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$1"),
        ("plain $A", "plain $A"),
    ],
)
def test_expansion_follows_kubernetes(text: str, expanded: str) -> None:
    assert podenv.expand(text, {"A": "1", "B": "two"}) == expanded


class Sources:
    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return {"color": "blue"} if name == "cm" else None

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return None


def context(**spec: Any) -> podenv.PodContext:
    pod = {"metadata": {"name": "p-0", "namespace": "ns", "uid": "u", "labels": {"app": "x"}}, "spec": spec}
    return podenv.PodContext(pod, "10.244.0.5", "10.244.0.1", "10.244.0.1", 6443)


def test_environment_order_references_and_missing_sources() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "URL", "value": "http://$(NAME):2379 $(LATER)"},
            {"name": "LATER", "value": "late"},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}},
        ],
    }
    env = podenv.container_env(context(), container, Sources(), "p-0")
    assert env["URL"] == "http://p-0:2379 $(LATER)"
    assert (env["APP"], env["CM_color"], env["KUBERNETES_SERVICE_PORT"]) == ("x", "blue", "6443")
    assert "OPT" not in env
    missing = {"env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(images.ImageError, match='secret "nope" not found'):
        podenv.container_env(context(), missing, Sources(), "p-0")


def test_hosts_and_resolv_conf_of_a_statefulset_pod() -> None:
    pod = context(hostname="etcd-0", subdomain="etcd").pod
    pod["metadata"]["name"] = "etcd-0"
    hosts = sandbox.hosts_file(pod, "10.244.0.5")
    assert "10.244.0.5\tetcd-0.etcd.ns.svc.cluster.local etcd-0\n" in hosts
    resolv = sandbox.resolv_conf(pod, "10.244.0.1")
    search = "search ns.svc.cluster.local svc.cluster.local cluster.local\n"
    assert resolv == search + "nameserver 10.244.0.1\noptions ndots:5\n"
    assert sandbox.resolv_conf(context(dnsPolicy="Default").pod, "10.244.0.1") is None


def test_probe_thresholds() -> None:
    state = ProbeState.starting({"periodSeconds": 1, "failureThreshold": 2, "successThreshold": 2}, 0.0)
    assert state.healthy is None
    state.record(False, "refused", 1.0)
    assert state.healthy is None
    state.record(False, "refused", 2.0)
    assert state.healthy is False
    state.record(True, "", 3.0)
    assert state.healthy is False
    state.record(True, "", 4.0)
    assert state.healthy is True
    assert not state.due(4.5) and state.due(5.0)


def ended(code: int) -> Termination:
    return Termination(code, "Completed" if code == 0 else "Error", "t0", "t1")


def test_pod_phase() -> None:
    fresh = ContainerRun("c")
    running = ContainerRun("c", pid=10, started_at="t0", waiting=None)
    done = ContainerRun("c", started_at="t0", waiting=None, termination=ended(0))
    failed = ContainerRun("c", started_at="t0", waiting=None, termination=ended(1))
    restarting = ContainerRun(
        "c", started_at="t0", waiting=("CrashLoopBackOff", ""), last_termination=ended(1)
    )
    assert phase(False, True, [fresh]) == "Pending"
    assert phase(False, False, [running]) == "Pending"
    assert phase(True, False, [fresh]) == "Failed"
    assert phase(False, True, [running, done]) == "Running"
    assert phase(False, True, [restarting]) == "Running"
    assert phase(False, True, [done, done]) == "Succeeded"
    assert phase(False, True, [done, failed]) == "Failed"


def test_service_backends_follow_ready_endpoints_by_port_name() -> None:
    services = [
        {
            "metadata": {"namespace": "ns", "name": "web"},
            "spec": {
                "clusterIP": "10.245.0.9",
                "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}],
            },
        },
        {
            "metadata": {"namespace": "ns", "name": "headless"},
            "spec": {"clusterIP": "None", "ports": [{"port": 1}]},
        },
        {
            "metadata": {"namespace": "default", "name": "kubernetes"},
            "spec": {"clusterIP": "10.245.0.1", "ports": [{"name": "https", "port": 443}]},
        },
    ]
    endpoint_slice = {
        "metadata": {"namespace": "ns", "labels": {"kubernetes.io/service-name": "web"}},
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [
            {"addresses": ["10.244.0.3"], "conditions": {"ready": True}},
            {"addresses": ["10.244.0.4"], "conditions": {"ready": False}},
            {"addresses": ["10.244.0.2"]},
        ],
    }
    table = service_backends(services, [endpoint_slice], ("10.244.0.1", 6443))
    assert table == {
        ("10.245.0.9", 80): [("10.244.0.2", 8080), ("10.244.0.3", 8080)],
        ("10.245.0.1", 443): [("10.244.0.1", 6443)],
    }

"""Where the control plane's programs come from: KUBEBUILDER_ASSETS first, then the versioned build
cache, and a build plan for whatever is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from testenv import toolchain
from testenv.network import PodNetworkLayout

pytestmark = pytest.mark.unit


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_kubebuilder_assets_come_before_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = executable(toolchain.bin_dir() / "kube-apiserver")
    assert toolchain.bin_dir().is_relative_to(tmp_path / "cache" / "petcd-tools")
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    assert toolchain.locate("kube-apiserver") == cached
    assets = executable(tmp_path / "assets" / "kube-apiserver")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets.parent))
    assert toolchain.locate("kube-apiserver") == assets
    assert toolchain.locate("kube-scheduler") is None


def test_the_cache_key_names_every_pinned_version() -> None:
    key = toolchain.version_key()
    for version in (toolchain.KUBERNETES_VERSION, toolchain.COREDNS_VERSION, toolchain.HELM_VERSION):
        assert version in key


def test_build_plan_covers_only_what_is_missing(tmp_path: Path) -> None:
    steps = toolchain.plan_builds(["kube-scheduler", "kubectl", "helm"], tmp_path)
    assert [step.outputs for step in steps] == [("kube-scheduler", "kubectl"), ("helm",)]
    k8s = steps[0]
    assert k8s.in_module and "k8s.io/kubernetes/cmd/kube-scheduler" in k8s.argv
    ldflags = k8s.argv[k8s.argv.index("-ldflags") + 1]
    assert f"gitVersion={toolchain.KUBERNETES_VERSION}" in ldflags
    assert steps[1].argv[-1] == f"{toolchain.HELM_MODULE}/cmd/helm@{toolchain.HELM_VERSION}"
    assert toolchain.plan_builds([], tmp_path) == []


def test_pod_network_names_fit_linux_limits() -> None:
    layout = PodNetworkLayout(199)
    uid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert all(len(name) <= 15 for name in (*layout.veth_names(uid), layout.bridge))
    assert layout.netns_name(uid) == "pk199-0f8fad5bd9cb"
    assert (str(layout.subnet), layout.gateway) == ("10.244.199.0/24", "10.244.199.1")

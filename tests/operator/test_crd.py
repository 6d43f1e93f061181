"""The CRD: structural, its defaults equal the operator's, and the status the operator writes fits
its status schema (a structural CRD silently prunes undeclared fields). The chart's copy is checked
in test_packaging.py; the CEL rules are checked by a real API server in the e2e tier."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from operator_world import World
from petcd_operator.spec import DEFAULT_IMAGE_REPOSITORY, parse
from test_planner import Clock, make_spec, run

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "etcdclusters.petcd.io.yaml"


def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return loaded


def version() -> dict[str, Any]:
    versions: list[dict[str, Any]] = crd()["spec"]["versions"]
    assert [v["name"] for v in versions] == ["v1alpha1"]
    return versions[0]


def schema(part: str) -> dict[str, Any]:
    found: dict[str, Any] = version()["schema"]["openAPIV3Schema"]["properties"][part]
    return found


def as_json_schema(node: Any) -> Any:
    """OpenAPI v3 `nullable` -> JSON Schema; the x-kubernetes-* keys are ignored by jsonschema."""
    if isinstance(node, dict):
        out = {k: as_json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in node:
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [as_json_schema(v) for v in node]
    return node


def apply_defaults(node: dict[str, Any], value: Any) -> Any:
    """What the API server does with `default:` on the way in (enough for our schema)."""
    if node.get("type") != "object" or not isinstance(value, dict):
        return value
    out = dict(value)
    for name, child in node.get("properties", {}).items():
        if name not in out and "default" in child:
            out[name] = child["default"]
        if name in out:
            out[name] = apply_defaults(child, out[name])
    return out


def test_names_subresources_and_printer_columns() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == "etcdclusters.petcd.io"
    assert (spec["group"], spec["names"]["kind"], spec["names"]["shortNames"]) == (
        "petcd.io",
        "EtcdCluster",
        ["etcd"],
    )
    v = version()
    assert v["subresources"]["status"] == {}
    assert v["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = [c["name"] for c in v["additionalPrinterColumns"]]
    assert columns[:6] == ["Replicas", "Ready", "Members", "Leader", "Version", "Available"]
    assert columns[-1] == "Age"


def walk_structural(node: dict[str, Any], path: str) -> None:
    assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
    for name, child in node.get("properties", {}).items():
        walk_structural(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        walk_structural(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        walk_structural(node["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural() -> None:
    walk_structural(version()["schema"]["openAPIV3Schema"], "")


def test_crd_defaults_equal_the_operators_defaults() -> None:
    empty = {"metadata": {"name": "x", "uid": "u"}}
    defaulted = {"metadata": {"name": "x", "uid": "u"}, "spec": apply_defaults(schema("spec"), {})}
    assert parse(defaulted) == parse(empty)
    assert parse(empty).image.startswith(DEFAULT_IMAGE_REPOSITORY)


def test_the_example_validates() -> None:
    example = yaml.safe_load((ROOT / "examples" / "etcdcluster.yaml").read_text())
    assert (example["apiVersion"], example["kind"]) == ("petcd.io/v1alpha1", "EtcdCluster")
    jsonschema.validate(example["spec"], as_json_schema(schema("spec")))
    parse(example)


def test_an_invalid_spec_is_rejected_by_the_schema() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"replicas": 0}, as_json_schema(schema("spec")))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"pvcRetentionPolicy": {"whenScaled": "Keep"}}, as_json_schema(schema("spec")))


def test_cel_rules_name_the_immutable_and_shrink_checks() -> None:
    rules = [r["rule"] for r in schema("spec")["properties"]["storage"]["x-kubernetes-validations"]]
    assert any("compareTo(quantity(oldSelf.size)) >= 0" in r for r in rules)
    assert any("oldSelf.ephemeral" in r for r in rules)
    assert any("oldSelf.storageClassName" in r for r in rules)


@pytest.mark.parametrize("scenario", ["steady", "scaling", "degraded"])
def test_the_status_the_operator_writes_fits_the_schema(scenario: str) -> None:
    world, clock = World(make_spec(3)), Clock()
    run(world, clock)
    if scenario == "scaling":
        world.learners_never_start = True
        world.spec = make_spec(4)
        run(world, clock)
        assert world.status["operation"] is not None
    if scenario == "degraded":
        world.member_at(1).down = True  # type: ignore[union-attr]
        run(world, clock)
    status_schema = as_json_schema(schema("status"))
    status_schema["additionalProperties"] = False  # every field we write must be declared
    jsonschema.validate(world.status, status_schema)


@pytest.mark.parametrize(
    "image",
    [
        "petcd/petcd:0.1.0",
        "registry.local:5000/petcd@sha256:ab",
        "quay.io/coreos/etcd:v3.4.23",
        "x/petcd-operator:1",
    ],
)
def test_the_cel_flavor_rule_agrees_with_the_operator(image: str) -> None:
    rule = next(r["rule"] for r in schema("spec")["x-kubernetes-validations"] if "petcd" in r["rule"])
    pattern = re.search(r"matches\('([^']+)'\)", rule)
    assert pattern is not None
    in_cel = re.search(pattern.group(1), image) is not None  # CEL's matches() is an unanchored RE2 search
    operator_flavor = parse({"metadata": {"name": "x", "uid": "u"}, "spec": {"image": image}}).flavor
    assert in_cel == (operator_flavor == "petcd")

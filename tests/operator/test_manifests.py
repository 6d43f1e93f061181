"""Builders: spec parsing and every object the operator renders."""

from __future__ import annotations

from typing import Any

import pytest
from petcd_operator.manifests import (
    HASH_ANNOTATION,
    client_service,
    config_map,
    desired_objects,
    headless_service,
    pod_disruption_budget,
    statefulset,
    statefulset_update,
)
from petcd_operator.spec import ClusterSpec, SpecError, parse
from petcd_operator.state import MemberObs, MembersObs, Recorded


def make_spec(uid: str = "u-1", **spec: Any) -> ClusterSpec:
    return parse({"metadata": {"name": "demo", "namespace": "ns", "uid": uid, "generation": 4}, "spec": spec})


def env_of(obj: dict[str, Any]) -> dict[str, Any]:
    container = obj["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_defaults() -> None:
    spec = make_spec()
    assert (spec.replicas, spec.generation, spec.storage.size, spec.storage.ephemeral) == (3, 4, "1Gi", False)
    assert spec.image.startswith("petcd/petcd:") and spec.flavor == "petcd"
    assert spec.pvc_retention.when_scaled == "Delete" and spec.pvc_retention.when_deleted == "Retain"
    assert spec.peer_url(2) == "http://demo-2.demo.ns.svc.cluster.local:2380"
    assert spec.ordinal_of_peer_url(spec.peer_url(7)) == 7
    assert spec.ordinal_of_peer_url("http://other-1.demo.ns.svc.cluster.local:2380") is None


def test_image_and_version() -> None:
    upstream = make_spec(image="gcr.io/etcd-development/etcd:v3.5.17")
    assert (upstream.flavor, upstream.version, upstream.has_health_endpoints) == ("etcd", "3.5.17", True)
    old = make_spec(image="quay.io/coreos/etcd:v3.4.23")
    assert (old.flavor, old.has_health_endpoints) == ("etcd", False)
    pinned = make_spec(version="0.2.0")
    assert pinned.image == "petcd/petcd:0.2.0"
    registry_port = make_spec(image="registry.local:5000/petcd")
    assert registry_port.flavor == "petcd"


@pytest.mark.parametrize("flag", ["name", "initial-cluster-state", "data-dir"])
def test_options_may_not_override_managed_flags(flag: str) -> None:
    with pytest.raises(SpecError, match=flag):
        make_spec(options={flag: "x"})


def test_replicas_below_one_is_refused() -> None:
    with pytest.raises(SpecError):
        make_spec(replicas=0)


def test_headless_service_publishes_unready_addresses_with_srv_port_names() -> None:
    svc = headless_service(make_spec())
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"etcd-client": 2379, "etcd-server": 2380}
    owner = svc["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("EtcdCluster", "u-1", True)


def test_client_service_serves_the_client_port() -> None:
    svc = client_service(make_spec())
    assert svc["metadata"]["name"] == "demo-client"
    assert [p["port"] for p in svc["spec"]["ports"]] == [2379]
    assert svc["spec"]["selector"] == headless_service(make_spec())["spec"]["selector"]


def test_statefulset_shape() -> None:
    sts = statefulset(make_spec(), replicas=3)
    spec = sts["spec"]
    assert spec["replicas"] == 3 and spec["serviceName"] == "demo"
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "OnDelete"}
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "ownerReferences" not in claim["metadata"]  # data never cascades with the resource
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["petcd"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"].startswith("/readyz")
    assert container["envFrom"] == [{"configMapRef": {"name": "demo-config"}}]
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    env = env_of(sts)
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["ETCD_NAME"] == "$(POD_NAME)"
    assert env["ETCD_INITIAL_ADVERTISE_PEER_URLS"] == "http://$(POD_NAME).demo.ns.svc.cluster.local:2380"
    assert env["ETCD_ADVERTISE_CLIENT_URLS"] == "http://$(POD_NAME).demo.ns.svc.cluster.local:2379"
    names = [e["name"] for e in container["env"]]
    assert names.index("POD_NAME") < names.index("ETCD_NAME")  # $(VAR) expands only earlier variables
    assert "ETCD_INITIAL_CLUSTER_STATE" not in env  # comes from the operator-written ConfigMap


def test_statefulset_options_tuning_and_pod_overrides() -> None:
    sts = statefulset(
        make_spec(
            options={"snapshot-count": "500"},
            quotaBackendBytes=1 << 30,
            autoCompaction={"mode": "revision", "retention": "1000"},
            heartbeatInterval=50,
            electionTimeout=500,
            resources={"requests": {"cpu": "100m"}},
            pod={"nodeSelector": {"disk": "ssd"}, "labels": {"team": "a"}, "priorityClassName": "high"},
        ),
        replicas=1,
    )
    env = env_of(sts)
    assert env["ETCD_SNAPSHOT_COUNT"] == "500"
    assert env["ETCD_QUOTA_BACKEND_BYTES"] == str(1 << 30)
    assert (env["ETCD_AUTO_COMPACTION_MODE"], env["ETCD_AUTO_COMPACTION_RETENTION"]) == ("revision", "1000")
    assert (env["ETCD_HEARTBEAT_INTERVAL"], env["ETCD_ELECTION_TIMEOUT"]) == ("50", "500")
    template = sts["spec"]["template"]
    assert template["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert template["spec"]["priorityClassName"] == "high"
    assert template["metadata"]["labels"]["team"] == "a"
    assert template["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "100m"}}


def test_ephemeral_storage_uses_empty_dir() -> None:
    sts = statefulset(make_spec(storage={"ephemeral": True}), replicas=1)
    assert "volumeClaimTemplates" not in sts["spec"]
    assert sts["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_old_upstream_etcd_gets_health_probes_and_the_etcd_command() -> None:
    container = statefulset(make_spec(image="quay.io/coreos/etcd:v3.4.23"), 1)["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["command"] == ["etcd"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "tcpSocket" in container["livenessProbe"]


def test_hash_follows_the_template_not_the_replicas() -> None:
    spec = make_spec()
    a, b = statefulset(spec, 1), statefulset(spec, 5)
    assert a["metadata"]["annotations"][HASH_ANNOTATION] == b["metadata"]["annotations"][HASH_ANNOTATION]
    c = statefulset(make_spec(image="petcd/petcd:9.9.9"), 1)
    assert c["metadata"]["annotations"][HASH_ANNOTATION] != a["metadata"]["annotations"][HASH_ANNOTATION]
    patch = {op["path"]: op["value"] for op in statefulset_update(c)}
    assert patch["/spec/template"] == c["spec"]["template"]
    assert {"/spec/updateStrategy", "/spec/persistentVolumeClaimRetentionPolicy"} <= set(patch)
    assert patch["/metadata/annotations/petcd.io~1spec-hash"] == c["metadata"]["annotations"][HASH_ANNOTATION]
    assert not any(path.startswith(("/spec/replicas", "/spec/selector")) for path in patch)


def test_config_map_is_new_only_before_the_cluster_id_is_recorded() -> None:
    spec = make_spec()
    before = config_map(spec, Recorded(bootstrap_replicas=3), None)
    assert before is not None
    assert before["data"]["ETCD_INITIAL_CLUSTER_STATE"] == "new"
    assert before["data"]["ETCD_INITIAL_CLUSTER"] == ",".join(
        f"demo-{i}={spec.peer_url(i)}" for i in range(3)
    )
    members = MembersObs(
        (
            MemberObs(1, "demo-0", (spec.peer_url(0),)),
            MemberObs(2, "demo-1", (spec.peer_url(1),)),
            MemberObs(9, "", (spec.peer_url(3),), learner=True),  # added, not started yet: no name
        ),
        cluster_id=5,
        leader_id=1,
    )
    after = config_map(spec, Recorded(bootstrap_replicas=3, cluster_id=5), members)
    assert after is not None
    assert after["data"]["ETCD_INITIAL_CLUSTER_STATE"] == "existing"
    assert after["data"]["ETCD_INITIAL_CLUSTER"] == ",".join(
        f"demo-{i}={spec.peer_url(i)}" for i in (0, 1, 3)
    )
    # Without a member list after bootstrap, the ConfigMap is left as it is (never guessed).
    assert config_map(spec, Recorded(bootstrap_replicas=3, cluster_id=5), None) is None


def test_token_is_unique_per_resource() -> None:
    a = config_map(make_spec(uid="aaa"), Recorded(bootstrap_replicas=1), None)
    b = config_map(make_spec(uid="bbb"), Recorded(bootstrap_replicas=1), None)
    assert a and b
    assert a["data"]["ETCD_INITIAL_CLUSTER_TOKEN"] != b["data"]["ETCD_INITIAL_CLUSTER_TOKEN"]


@pytest.mark.parametrize(("replicas", "min_available"), [(1, 1), (3, 2), (4, 3), (5, 3)])
def test_pdb_is_at_quorum(replicas: int, min_available: int) -> None:
    pdb = pod_disruption_budget(make_spec(replicas=replicas))
    assert pdb["spec"]["minAvailable"] == min_available
    assert pod_disruption_budget(make_spec(pdb={"minAvailable": 1}))["spec"]["minAvailable"] == 1


def test_desired_objects_and_pdb_opt_out() -> None:
    keys = set(desired_objects(make_spec(), Recorded(bootstrap_replicas=3), None, 3))
    assert keys == {
        "Service/demo",
        "Service/demo-client",
        "ConfigMap/demo-config",
        "StatefulSet/demo",
        "PodDisruptionBudget/demo",
    }
    no_pdb = desired_objects(make_spec(pdb={"enabled": False}), Recorded(bootstrap_replicas=3), None, 3)
    assert "PodDisruptionBudget/demo" not in no_pdb

"""The operator end to end on the local control plane (tests/testenv), while a client writes
continuously and finally checks that no acknowledged write was lost.

Member images: every case runs with petcd, our product, and with upstream etcd (Debian's etcd
behind an etcd image name), which proves the operator speaks etcd's real protocol. Both together
took about 8 minutes (11 cases) on a shared 2-core machine, within the e2e budget; should they outgrow
~15 minutes, keep the full list for petcd and, for upstream etcd, apply -> Available, scale
3 -> 5 -> 3 and the operator killed mid scale-up. The helm case reconciles one upstream etcd member.
Times from apply to Available and per scale step are printed (not asserted).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from e2e_support import (
    PETCD_IMAGE,
    ROOT,
    UPSTREAM_ETCD_IMAGE,
    WAIT,
    EtcdClusterHandle,
    Operator,
    Writer,
    example,
    record,
)
from testenv.fixtures import KubeCluster
from testenv.kubeapi import ApiError
from testenv.processes import wait_for

IMAGES = [pytest.param(PETCD_IMAGE, id="petcd"), pytest.param(UPSTREAM_ETCD_IMAGE, id="etcd")]


def create(operator: Operator, namespace: str, image: str, replicas: int = 3) -> EtcdClusterHandle:
    operator.cluster.api.create(
        f"/apis/petcd.io/v1alpha1/namespaces/{namespace}/etcdclusters", example("example", image, replicas)
    )
    return EtcdClusterHandle(operator.cluster, namespace, "example")


def started(
    operator: Operator, namespace: str, image: str, replicas: int = 3
) -> tuple[EtcdClusterHandle, Writer]:
    handle = create(operator, namespace, image, replicas)
    handle.wait_converged(replicas, operator=operator)
    writer = Writer(handle.endpoints)
    writer.start()
    return handle, writer


def step(handle: EtcdClusterHandle, operator: Operator, replicas: int, test: str) -> None:
    handle.scale(replicas)
    seconds = handle.wait_converged(replicas, operator=operator)
    record(test, f"scale to {replicas}", seconds)
    handle.wait_pvcs(replicas)


@pytest.mark.parametrize("image", IMAGES)
def test_apply_becomes_available_and_is_found_by_srv(
    operator: Operator, namespace: str, image: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cluster = operator.cluster
    manifest = ROOT / "examples" / "etcdcluster.yaml"
    if image != PETCD_IMAGE:  # the example runs the default (petcd) image: the same file, another image
        manifest = tmp_path / "etcdcluster.yaml"
        manifest.write_text(yaml.safe_dump(example("example", image)))
    began = time.monotonic()
    cluster.kubectl("apply", "-n", namespace, "-f", str(manifest))
    handle = EtcdClusterHandle(cluster, namespace, "example")
    handle.wait_converged(3, operator=operator)
    record(request.node.name, "apply -> Available with 3 members", time.monotonic() - began)
    writer = Writer(handle.endpoints)
    writer.start()

    domain = f"example.{namespace}.svc.cluster.local"
    listing = cluster.exec_in_pod(
        namespace, "example-0", ["etcdctl", "--discovery-srv", domain, "member", "list", "-w", "simple"]
    ).stdout
    rows = [line.split(", ") for line in listing.splitlines() if line.strip()]
    assert sorted(r[2] for r in rows) == ["example-0", "example-1", "example-2"]
    assert all(r[1] == "started" for r in rows)

    table = cluster.kubectl("get", "etcd", "-n", namespace).splitlines()
    assert table[0].split() == [
        "NAME",
        "REPLICAS",
        "READY",
        "MEMBERS",
        "LEADER",
        "VERSION",
        "AVAILABLE",
        "AGE",
    ]
    assert table[1].split()[1:4] == ["3", "3", "3"] and table[1].split()[6] == "True"
    status = handle.status()
    assert status["clusterID"] and status["bootstrapReplicas"] == 3 and status["phase"] == "Running"
    config = cluster.api.get(f"/api/v1/namespaces/{namespace}/configmaps/example-config")["data"]
    assert config["ETCD_INITIAL_CLUSTER_STATE"] == "existing"  # everything from now on joins
    for refused, rule in (
        ({"storage": {"size": "512Mi"}}, "storage.size cannot shrink"),
        ({"storage": {"ephemeral": True}}, "storage.ephemeral is immutable"),
        ({"options": {"initial-cluster-state": "new"}}, "options may not set flags the operator manages"),
        (
            {"image": UPSTREAM_ETCD_IMAGE if image == PETCD_IMAGE else PETCD_IMAGE},
            "spec.image cannot switch between petcd and upstream etcd",
        ),
    ):
        with pytest.raises(ApiError) as rejected:
            handle.patch_spec(refused)
        assert rejected.value.status == 422 and rule in str(rejected.value)
    time.sleep(2)
    assert writer.stop_and_verify(handle.endpoints()) > 0


@pytest.mark.parametrize("image", IMAGES)
def test_scale_3_5_3_then_1_and_back_to_3(
    operator: Operator, namespace: str, image: str, request: pytest.FixtureRequest
) -> None:
    handle, writer = started(operator, namespace, image)
    for replicas in (5, 3, 1, 3):
        step(handle, operator, replicas, request.node.name)
    events = operator.cluster.kubectl("get", "events", "-n", namespace, "-o", "json")
    reasons = [e["reason"] for e in json.loads(events)["items"]]
    assert reasons.count("MemberAdded") >= 4 and reasons.count("MemberRemoved") >= 4
    assert writer.stop_and_verify(handle.endpoints()) > 0


@pytest.mark.parametrize("image", IMAGES)
def test_a_deleted_pod_rejoins_and_a_deleted_pod_with_its_pvc_becomes_a_new_member(
    operator: Operator, namespace: str, image: str
) -> None:
    handle, writer = started(operator, namespace, image)
    api = operator.cluster.api
    ids = handle.member_ids()
    pods = f"/api/v1/namespaces/{namespace}/pods"

    old = api.get(f"{pods}/example-1")["metadata"]["uid"]
    api.delete(f"{pods}/example-1")
    wait_for(
        lambda: (p := api.get_or_none(f"{pods}/example-1")) is not None and p["metadata"]["uid"] != old,
        WAIT,
        "pod",
    )
    handle.wait_converged(3, operator=operator)
    assert handle.member_ids() == ids  # same member, same data: no membership change

    api.delete(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data-example-2")
    api.delete(f"{pods}/example-2")
    wait_for(
        lambda: handle.member_ids().get("example-2") not in (None, ids["example-2"]), WAIT, "a new member"
    )
    handle.wait_converged(3, operator=operator)
    after = handle.member_ids()
    assert after["example-0"] == ids["example-0"] and after["example-2"] != ids["example-2"]
    assert writer.stop_and_verify(handle.endpoints()) > 0


@pytest.mark.parametrize("image", IMAGES)
def test_the_operator_killed_mid_scale_up_and_mid_scale_down_converges(
    operator: Operator, namespace: str, image: str
) -> None:
    handle, writer = started(operator, namespace, image)
    for failpoint, replicas, kind in (
        ("after:AddLearner", 4, "ScaleUp"),
        ("after:RemoveMember", 3, "ScaleDown"),
    ):
        operator.start(failpoint=failpoint)
        handle.scale(replicas)
        wait_for(operator.exited, WAIT, f"the operator to die at {failpoint}", interval=0.5)
        operation = handle.status().get("operation") or {}
        assert operation.get("type") == kind, operation  # recorded before the step it died after
        operator.start()
        handle.wait_converged(replicas, operator=operator)
        handle.wait_pvcs(replicas)
    assert writer.stop_and_verify(handle.endpoints()) > 0


@pytest.mark.parametrize("image", IMAGES)
def test_an_image_change_rolls_one_pod_at_a_time_leader_last(
    operator: Operator, namespace: str, image: str, request: pytest.FixtureRequest
) -> None:
    handle, writer = started(operator, namespace, image)
    leader = handle.status()["leader"]
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in handle.pods()}
    # Another name for the same release: a new template, so every pod must restart once.
    new_image = (
        image.replace("quay.io/coreos/etcd", "gcr.io/etcd-development/etcd") if "etcd:" in image else image
    )
    began = time.monotonic()
    handle.patch_spec(
        {"image": new_image} if new_image != image else {"options": {"snapshot-count": "20000"}}
    )
    unavailable = 0

    def rolled() -> bool:
        nonlocal unavailable
        if handle.condition("Available").get("status") == "False":
            unavailable += 1
        pods = {p["metadata"]["name"]: p["metadata"]["uid"] for p in handle.pods()}
        return all(pods.get(name) not in (None, uid) for name, uid in uids.items()) and handle.converged(3)

    wait_for(rolled, WAIT, "every pod restarted with the new template", interval=1)
    record(request.node.name, "rolling update of 3 members", time.monotonic() - began)
    assert unavailable == 0, "quorum was lost during the rolling update"
    steps = re.findall(r"step=(RollPod\(ordinal=\d\)|MoveLeader)", operator.log_tail(400))
    rolls = [s for s in steps if s.startswith("RollPod")]
    assert len(rolls) == 3 and rolls[-1] == f"RollPod(ordinal={leader.rsplit('-', 1)[1]})"
    assert steps[steps.index(rolls[-1]) - 1] == "MoveLeader"
    assert writer.stop_and_verify(handle.endpoints()) > 0


def test_helm_install_test_and_uninstall(crds: KubeCluster, namespace: str) -> None:
    cluster = crds
    release = "petcd"
    cluster.helm(
        "install",
        release,
        str(ROOT / "charts" / "petcd-operator"),
        "--namespace",
        namespace,
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--set",
        "liveness.port=8081",
        "--wait",
        "--timeout",
        "180s",
    )
    api = cluster.api
    (pod,) = api.items(
        f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": "app.kubernetes.io/name=petcd-operator"}
    )
    assert pod["spec"]["serviceAccountName"] == "petcd-petcd-operator"
    api.create(
        f"/apis/petcd.io/v1alpha1/namespaces/{namespace}/etcdclusters",
        example("example", UPSTREAM_ETCD_IMAGE, 1),
    )
    EtcdClusterHandle(cluster, namespace, "example").wait_converged(1)
    cluster.helm("test", release, "--namespace", namespace, "--timeout", "120s")
    cluster.helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "120s")
    assert api.get_or_none(f"/apis/apps/v1/namespaces/{namespace}/deployments/petcd-petcd-operator") is None
    assert api.get_or_none(f"/api/v1/namespaces/{namespace}/serviceaccounts/petcd-petcd-operator") is None
    assert (
        api.get_or_none("/apis/rbac.authorization.k8s.io/v1/clusterroles/petcd-petcd-operator-crds") is None
    )
    assert (
        api.get_or_none(
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/petcd-petcd-operator"
        )
        is None
    )
    wait_for(
        lambda: (
            not api.items(
                f"/api/v1/namespaces/{namespace}/pods",
                {"labelSelector": "app.kubernetes.io/name=petcd-operator"},
            )
        ),
        120,
        "the operator Pod to go",
    )

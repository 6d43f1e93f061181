"""kube-apiserver on a 3-member petcd cluster: what the API server asks of its store, through kubectl
and the API (issue 11). Every wait is bounded; the cluster comes from conftest.petcd_cluster."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from testenv.fixtures import KubeCluster
from testenv.kubeapi import ApiError, KubeApi, Obj
from testenv.processes import LoggedProcess, wait_for

CONFIGMAPS = 1000
CUSTOM_RESOURCES = 200
PAGE = 50
WORKERS = 8
GROUP = "k8sonpetcd.example.com"
ETCD_IMAGE = "registry.k8s.io/etcd:3.5.21-0"


@pytest.fixture
def ns(petcd_cluster: KubeCluster) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:6]}"
    api = petcd_cluster.api
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    api.delete(f"/api/v1/namespaces/{name}")


def create_all(count: int, create: Callable[[int], object]) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(create, range(count)))


class Watch:
    """A watch through `kubectl get --raw <path>?watch=1` in the background: one JSON event per line."""

    def __init__(self, cluster: KubeCluster, namespace: str, resource: str, path: Path) -> None:
        self.path = path
        self.kind = resource.removesuffix("s")
        argv = [
            cluster.tools["kubectl"],
            "get",
            "--raw",
            f"/api/v1/namespaces/{namespace}/{resource}?watch=1",
        ]
        self.process = subprocess.Popen(
            argv, env=cluster.env(), stdout=path.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def lines(self) -> list[str]:
        """`<TYPE> <kind>/<name>` per complete event line received so far."""
        found = []
        for line in self.path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the line still being written
            found.append(f"{event['type']} {self.kind}/{event['object']['metadata'].get('name', '')}")
        return found

    def seen(self, event: str, name: str) -> bool:
        return f"{event} {name}" in self.lines()

    def count(self, event: str) -> int:
        return sum(1 for line in self.lines() if line.startswith(event + " "))

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def watch(petcd_cluster: KubeCluster, tmp_path: Path) -> Iterator[Callable[[str, str], Watch]]:
    started: list[Watch] = []

    def start(namespace: str, resource: str) -> Watch:
        started.append(Watch(petcd_cluster, namespace, resource, tmp_path / f"watch-{len(started)}.txt"))
        return started[-1]

    yield start
    for w in started:
        w.stop()


def watching(cluster: KubeCluster, namespace: str, w: Watch) -> None:
    """Make sure the watch is established: a marker object's ADDED arrives."""
    cluster.api.create(f"/api/v1/namespaces/{namespace}/configmaps", configmap("marker"))
    wait_for(lambda: w.seen("ADDED", "configmap/marker"), 60, "the watch to see the marker")


def configmap(name: str, **labels: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"n": name},
    }


def test_readyz_reports_etcd_ok(petcd_cluster: KubeCluster) -> None:
    out = petcd_cluster.kubectl("get", "--raw", "/readyz?verbose")
    assert "[+]etcd ok" in out and "[+]etcd-readiness ok" in out, out


def test_a_thousand_configmaps_created_listed_in_chunks_watched_and_deleted(
    petcd_cluster: KubeCluster, ns: str, watch: Callable[[str, str], Watch]
) -> None:
    api = petcd_cluster.api
    w = watch(ns, "configmaps")
    watching(petcd_cluster, ns, w)
    path = f"/api/v1/namespaces/{ns}/configmaps"
    create_all(CONFIGMAPS, lambda i: api.create(path, configmap(f"cm-{i:04d}", smoke="yes")))

    names = petcd_cluster.kubectl(
        "get", "configmaps", "-n", ns, "-l", "smoke=yes", "--chunk-size=50", "-o", "name"
    )
    assert sorted(names.split()) == [f"configmap/cm-{i:04d}" for i in range(CONFIGMAPS)]
    wait_for(lambda: w.count("ADDED") >= CONFIGMAPS + 1, 120, "the watch to see every ConfigMap added")

    # One DeleteCollection (what namespace deletion uses; kubectl delete -l sends 1,000 DELETEs and
    # then waits for each object in turn, minutes on a loaded machine).
    patient = KubeApi(petcd_cluster.kubeconfig, timeout=300)  # the default 10 s is for one object
    patient.delete(f"{path}?labelSelector=smoke%3Dyes")
    wait_for(lambda: not api.items(path, {"labelSelector": "smoke=yes"}), 120, "the ConfigMaps to be deleted")
    wait_for(lambda: w.count("DELETED") >= CONFIGMAPS, 120, "the watch to see every ConfigMap deleted")
    assert {line.split()[1] for line in w.lines() if line.startswith("DELETED ")} == {
        f"configmap/cm-{i:04d}" for i in range(CONFIGMAPS)
    }


def served(api: KubeApi, path: str) -> bool:
    """The path answers: not 404 (not yet registered) nor 429 (the watch cache still initialising)."""
    try:
        api.get(path)
    except ApiError as error:
        if error.status in (404, 429, 503):
            return False
        raise
    return True


def test_custom_resources_listed_in_pages_of_one_snapshot(petcd_cluster: KubeCluster, ns: str) -> None:
    api = petcd_cluster.api
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    if api.get_or_none(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{GROUP}") is None:
        api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    petcd_cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/widgets.{GROUP}")
    path = f"/apis/{GROUP}/v1/namespaces/{ns}/widgets"
    wait_for(lambda: served(api, path), 60, "the Widget API to be served")
    create_all(
        CUSTOM_RESOURCES,
        lambda i: api.create(
            path,
            {
                "apiVersion": f"{GROUP}/v1",
                "kind": "Widget",
                "metadata": {"name": f"w-{i:03d}"},
                "spec": {"i": i},
            },
        ),
    )

    names: list[str] = []
    versions: set[str] = set()
    pages = 0
    query = {"limit": str(PAGE)}
    while True:
        page = api.get(path, query)
        pages += 1
        names += [item["metadata"]["name"] for item in page["items"]]
        versions.add(page["metadata"]["resourceVersion"])
        token = page["metadata"].get("continue")
        if not token:
            break
        query = {"limit": str(PAGE), "continue": token}
        assert pages < 2 * CUSTOM_RESOURCES // PAGE, "pagination does not end"
    assert names == [f"w-{i:03d}" for i in range(CUSTOM_RESOURCES)]
    assert pages == CUSTOM_RESOURCES // PAGE
    assert len(versions) == 1, f"pages read at different revisions: {versions}"
    listed = petcd_cluster.kubectl("get", "widgets", "-n", ns, "--chunk-size=50", "-o", "name")
    assert len(listed.split()) == CUSTOM_RESOURCES


def test_a_deployment_rolls_to_a_new_replicaset(petcd_cluster: KubeCluster, ns: str) -> None:
    def template(generation: str) -> Obj:
        return {
            "metadata": {"labels": {"app": "roll"}, "annotations": {"generation": generation}},
            "spec": {
                "containers": [
                    {
                        "name": "etcd",
                        "image": ETCD_IMAGE,
                        "command": ["etcd", "--data-dir=/var/lib/etcd", "--log-level=warn"],
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/etcd"}],
                    }
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        }

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "roll"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "roll"}}, "template": template("1")},
    }
    api = petcd_cluster.api
    api.create(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment)
    petcd_cluster.kubectl("rollout", "status", "-n", ns, "deployment/roll", "--timeout=180s", timeout=200)
    api.merge_patch(f"/apis/apps/v1/namespaces/{ns}/deployments/roll", {"spec": {"template": template("2")}})
    petcd_cluster.kubectl("rollout", "status", "-n", ns, "deployment/roll", "--timeout=180s", timeout=200)

    sets = api.items(f"/apis/apps/v1/namespaces/{ns}/replicasets")
    assert len(sets) == 2
    by_generation = {rs["spec"]["template"]["metadata"]["annotations"]["generation"]: rs for rs in sets}
    assert by_generation["2"]["status"].get("readyReplicas") == 1
    assert by_generation["1"]["spec"]["replicas"] == 0


def etcdctl(cluster: KubeCluster, *args: str) -> str:
    assert cluster.local is not None and cluster.local.control_plane is not None
    endpoints = ",".join(cluster.local.control_plane.etcd_servers)
    result = subprocess.run(
        ["etcdctl", f"--endpoints={endpoints}", "--command-timeout=10s", *args],
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout + result.stderr


def test_an_event_expires_with_its_lease(petcd_cluster: KubeCluster, ns: str) -> None:
    api = petcd_cluster.api
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "short-lived"},
        "involvedObject": {
            "kind": "ConfigMap",
            "namespace": ns,
            "name": "kube-root-ca.crt",
            "apiVersion": "v1",
        },
        "reason": "Smoke",
        "message": "expires with its lease",
        "type": "Normal",
    }
    api.create(f"/api/v1/namespaces/{ns}/events", event)
    key = f"/registry/events/{ns}/short-lived"
    stored = json.loads(etcdctl(petcd_cluster, "get", key, "-w", "json"))
    assert stored["kvs"][0]["lease"] != 0, "the Event is stored without a lease"
    path = f"/api/v1/namespaces/{ns}/events/short-lived"
    assert api.get_or_none(path) is not None
    # --event-ttl=30s plus the API server's lease reuse margin, then the leader's expiry round.
    wait_for(lambda: api.get_or_none(path) is None, 120, "the Event to expire with its lease", interval=1)
    assert json.loads(etcdctl(petcd_cluster, "get", key, "-w", "json")).get("kvs") is None


def leader_process(cluster: KubeCluster) -> tuple[int, LoggedProcess]:
    assert cluster.local is not None and cluster.local.control_plane is not None
    plane = cluster.local.control_plane
    statuses = json.loads(etcdctl(cluster, "endpoint", "status", "-w", "json"))
    leader = next(
        s["Endpoint"] for s in statuses if s["Status"]["leader"] == s["Status"]["header"]["member_id"]
    )
    member = next(m for m in plane.petcd_members if m.client_url == leader)
    index = next(i for i, p in enumerate(plane.processes) if p.name == f"petcd-{member.name}")
    return index, plane.processes[index]


def readyz_ok(cluster: KubeCluster) -> bool:
    return cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=30).strip() == "ok"


def created(api: KubeApi, path: str, body: Obj) -> bool:
    """Create, or find it already created by an earlier try whose answer was lost."""
    try:
        api.create(path, body)
    except ApiError as error:
        if error.status == 409:
            return True
        if error.status >= 500:
            return False
        raise
    return True


def test_leader_killed_while_serving_nothing_lost_and_watch_resumes(
    petcd_cluster: KubeCluster, ns: str, watch: Callable[[str, str], Watch]
) -> None:
    if petcd_cluster.local is None:
        pytest.skip("needs the locally started petcd members")
    api = petcd_cluster.api
    path = f"/api/v1/namespaces/{ns}/configmaps"
    create_all(100, lambda i: api.create(path, configmap(f"before-{i:03d}", fault="yes")))
    w = watch(ns, "configmaps")
    watching(petcd_cluster, ns, w)

    index, leader = leader_process(petcd_cluster)
    leader.kill()
    killed_at = time.monotonic()
    # A few election timeouts (1 s each) plus the API server's health check interval.
    wait_for(lambda: readyz_ok(petcd_cluster), 60, "/readyz after the leader's death", interval=0.5)
    print(f"readyz ok again {time.monotonic() - killed_at:.1f}s after SIGKILL of {leader.name}")

    wait_for(lambda: created(api, path, configmap("after-kill")), 60, "a write after the failover")
    wait_for(lambda: w.seen("ADDED", "configmap/after-kill"), 60, "the watch to resume")
    items = api.items(path, {"labelSelector": "fault=yes"})
    assert sorted(i["metadata"]["name"] for i in items) == [f"before-{i:03d}" for i in range(100)]

    plane = petcd_cluster.local.control_plane
    assert plane is not None
    plane.processes[index] = LoggedProcess(leader.name, leader.argv, leader.log_path)
    wait_for(
        lambda: etcdctl(petcd_cluster, "endpoint", "health").count("is healthy") == 3, 60, "the member back"
    )

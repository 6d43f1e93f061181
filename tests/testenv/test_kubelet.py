"""The process kubelet honours the Pod spec the way a real node does."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from testenv.fixtures import KubeCluster
from testenv.kubeapi import Obj
from testenv.processes import process_start_ticks, wait_for

ETCD_IMAGE = "quay.io/coreos/etcd:v3.4.23"
WAIT = 90.0


def pod(name: str, containers: list[Obj], **spec: object) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"test": name}},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": containers, **spec},
    }


def shell(name: str, script: str, **fields: object) -> Obj:
    """A container of the etcd image running a host shell script (the host's /bin/sh stands in)."""
    return {"name": name, "image": ETCD_IMAGE, "command": ["/bin/sh", "-c", script], **fields}


def create(cluster: KubeCluster, namespace: str, kind: str, body: Obj) -> Obj:
    return cluster.api.create(f"/api/v1/namespaces/{namespace}/{kind}", body)


def container_status(cluster: KubeCluster, namespace: str, name: str) -> Obj:
    found = cluster.pod(namespace, name)
    assert found is not None
    statuses: list[Obj] = found["status"].get("containerStatuses") or [{}]
    return statuses[0]


def exists(cluster: KubeCluster, namespace: str, name: str, path: str) -> bool:
    return cluster.exec_in_container(namespace, name, ["test", "-e", path]).returncode == 0


def test_env_volumes_identity_and_dns_config(kube_cluster: KubeCluster, namespace: str) -> None:
    create(
        kube_cluster,
        namespace,
        "configmaps",
        {"metadata": {"name": "cm"}, "data": {"color": "blue", "x": "1"}},
    )
    secret = {"metadata": {"name": "sec"}, "data": {"password": base64.b64encode(b"s3cret").decode()}}
    create(kube_cluster, namespace, "secrets", secret)
    container = shell(
        "main",
        'echo "$1" > /scratch/argument; exec sleep 3600',
        args=["sh", "$(POD_NAME)-suffix"],
        env=[
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "color"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
            {"name": "GREETING", "value": "hi $(POD_NAME) $$(POD_NAME)"},
        ],
        envFrom=[{"prefix": "CM_", "configMapRef": {"name": "cm"}}],
        volumeMounts=[
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "config", "mountPath": "/etc/testenv-config", "readOnly": True},
            {"name": "secret", "mountPath": "/etc/testenv-secret"},
        ],
    )
    volumes = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "config", "configMap": {"name": "cm", "items": [{"key": "color", "path": "colour.txt"}]}},
        {"name": "secret", "secret": {"secretName": "sec"}},
    ]
    create(kube_cluster, namespace, "pods", pod("env", [container], volumes=volumes, subdomain="sub"))
    running = kube_cluster.wait_pod(namespace, "env", timeout=WAIT)
    pod_ip = running["status"]["podIP"]

    environ = kube_cluster.container_environment(namespace, "env")
    assert environ.get("POD_NAME") == "env", environ
    assert environ["POD_IP"] == pod_ip
    assert environ["POD_NAMESPACE"] == namespace
    assert environ["COLOR"] == "blue"
    assert environ["PASSWORD"] == "s3cret"
    assert environ["GREETING"] == "hi env $(POD_NAME)"
    assert (environ["CM_color"], environ["CM_x"]) == ("blue", "1")
    assert environ["KUBERNETES_SERVICE_HOST"] == kube_cluster.server_address

    def inside(*argv: str) -> str:
        result = kube_cluster.exec_in_container(namespace, "env", argv)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert inside("hostname").strip() == "env"
    assert inside("cat", "/etc/testenv-config/colour.txt") == "blue"
    assert inside("cat", "/etc/testenv-secret/password") == "s3cret"
    assert inside("cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace") == namespace
    assert f"search {namespace}.svc.cluster.local" in inside("cat", "/etc/resolv.conf")
    assert f"{pod_ip}\tenv.sub.{namespace}.svc.cluster.local env" in inside("cat", "/etc/hosts")
    wait_for(lambda: exists(kube_cluster, namespace, "env", "/scratch/argument"), WAIT, "the script to run")
    assert inside("cat", "/scratch/argument") == "env-suffix\n"
    assert inside("sh", "-c", "echo written > /scratch/f && cat /scratch/f") == "written\n"
    read_only = kube_cluster.exec_in_container(
        namespace, "env", ["sh", "-c", "echo x > /etc/testenv-config/y"]
    )
    assert read_only.returncode != 0
    assert not Path("/scratch/f").exists(), "a volume must be visible to its container only"

    # The projected service-account token authenticates as the Pod's ServiceAccount.
    token = inside("cat", "/var/run/secrets/kubernetes.io/serviceaccount/token")
    ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    url = f"https://{environ['KUBERNETES_SERVICE_HOST']}:{environ['KUBERNETES_SERVICE_PORT']}/api/v1/nodes"
    answer = inside("curl", "-sS", "--cacert", ca, "-H", f"Authorization: Bearer {token}", url)
    assert f"system:serviceaccount:{namespace}:default" in answer


def test_restart_policies_and_exit_codes(kube_cluster: KubeCluster, namespace: str) -> None:
    create(kube_cluster, namespace, "pods", pod("crash", [shell("c", "exit 3")]))
    create(kube_cluster, namespace, "pods", pod("done", [shell("c", "exit 0")], restartPolicy="Never"))
    create(kube_cluster, namespace, "pods", pod("fail", [shell("c", "exit 7")], restartPolicy="Never"))
    create(kube_cluster, namespace, "pods", pod("retry", [shell("c", "exit 1")], restartPolicy="OnFailure"))

    def phase(name: str) -> str:
        found = kube_cluster.pod(namespace, name)
        return str(found["status"].get("phase")) if found else ""

    wait_for(lambda: phase("done") == "Succeeded", WAIT, "pod done to succeed")
    wait_for(lambda: phase("fail") == "Failed", WAIT, "pod fail to fail")
    assert container_status(kube_cluster, namespace, "fail")["state"]["terminated"]["exitCode"] == 7
    kube_cluster.api.delete(f"/api/v1/namespaces/{namespace}/pods/done")
    wait_for(lambda: kube_cluster.pod(namespace, "done") is None, WAIT, "a finished pod to be deleted")
    for name in ("crash", "retry"):

        def restarted_twice(name: str = name) -> bool:
            return int(container_status(kube_cluster, namespace, name).get("restartCount", 0)) >= 2

        wait_for(restarted_twice, WAIT, f"pod {name} to be restarted")
        status = container_status(kube_cluster, namespace, name)
        assert status["lastState"]["terminated"]["exitCode"] in (3, 1)
        assert phase(name) == "Running"


def test_probes_gate_readiness_and_restart_unhealthy_containers(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    # Ready only once the exec probe's file exists; the HTTP server answers the httpGet probe.
    web = shell(
        "web",
        "exec python3 -m http.server 8080",
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1},
        livenessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1, "failureThreshold": 3},
        startupProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 30},
    )
    create(kube_cluster, namespace, "pods", pod("web", [web]))
    wait_for(
        lambda: container_status(kube_cluster, namespace, "web").get("started") is True, WAIT, "startup probe"
    )
    assert container_status(kube_cluster, namespace, "web")["ready"] is False
    assert kube_cluster.exec_in_container(namespace, "web", ["touch", "/tmp/ready"]).returncode == 0
    kube_cluster.wait_pod(namespace, "web", "Ready", timeout=WAIT)
    assert container_status(kube_cluster, namespace, "web")["restartCount"] == 0

    dead = shell(
        "dead",
        "exec sleep 3600",
        livenessProbe={"tcpSocket": {"port": 9}, "periodSeconds": 1, "failureThreshold": 2},
    )
    create(kube_cluster, namespace, "pods", pod("dead", [dead]))
    wait_for(
        lambda: container_status(kube_cluster, namespace, "dead").get("restartCount", 0) >= 1,
        WAIT,
        "the liveness probe to restart the container",
    )


def test_unknown_image_is_refused_with_a_reason(kube_cluster: KubeCluster, namespace: str) -> None:
    create(
        kube_cluster, namespace, "pods", pod("odd", [{"name": "c", "image": "docker.io/library/busybox:1"}])
    )

    def waiting_reason() -> str:
        return str(
            container_status(kube_cluster, namespace, "odd").get("state", {}).get("waiting", {}).get("reason")
        )

    wait_for(lambda: waiting_reason() in ("ErrImagePull", "ImagePullBackOff"), WAIT, "ErrImagePull")
    message = container_status(kube_cluster, namespace, "odd")["state"]["waiting"]["message"]
    assert "docker.io/library/busybox:1" in message


def test_termination_grace_then_kill(kube_cluster: KubeCluster, namespace: str) -> None:
    script = "trap '' TERM; touch /marks/trapped; while true; do sleep 1; done"
    stubborn = shell("c", script, volumeMounts=[{"name": "marks", "mountPath": "/marks"}])
    volumes = [{"name": "marks", "emptyDir": {}}]
    create(
        kube_cluster,
        namespace,
        "pods",
        pod("stubborn", [stubborn], terminationGracePeriodSeconds=2, volumes=volumes),
    )
    kube_cluster.wait_pod(namespace, "stubborn", timeout=WAIT)
    wait_for(
        lambda: exists(kube_cluster, namespace, "stubborn", "/marks/trapped"), WAIT, "SIGTERM to be ignored"
    )
    pid = kube_cluster.container_pid(namespace, "stubborn")
    kube_cluster.api.delete(f"/api/v1/namespaces/{namespace}/pods/stubborn")
    wait_for(lambda: kube_cluster.pod(namespace, "stubborn") is None, WAIT, "the pod to be removed")
    assert process_start_ticks(pid) is None


def test_claims_outlive_pods_and_go_with_their_claim(kube_cluster: KubeCluster, namespace: str) -> None:
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    create(kube_cluster, namespace, "persistentvolumeclaims", claim)
    mounts = {"volumeMounts": [{"name": "d", "mountPath": "/data"}]}
    volumes = [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]
    writer = shell("c", "echo kept > /data/file; exec sleep 3600", **mounts)
    create(kube_cluster, namespace, "pods", pod("writer", [writer], volumes=volumes))
    kube_cluster.wait_pod(namespace, "writer", timeout=WAIT)
    bound = kube_cluster.api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data")
    volume = kube_cluster.api.get(f"/api/v1/persistentvolumes/{bound['spec']['volumeName']}")
    directory = Path(volume["spec"]["hostPath"]["path"])
    # The claim is the PersistentVolume's directory; wait for the write (Ready means started, not done).
    wait_for(lambda: (directory / "file").exists(), WAIT, "the writer to write")
    kube_cluster.api.delete(f"/api/v1/namespaces/{namespace}/pods/writer")
    wait_for(lambda: kube_cluster.pod(namespace, "writer") is None, WAIT, "the writer pod to go")

    reader = shell("c", "exec sleep 3600", **mounts)
    create(kube_cluster, namespace, "pods", pod("reader", [reader], volumes=volumes))
    kube_cluster.wait_pod(namespace, "reader", timeout=WAIT)
    assert kube_cluster.exec_in_container(namespace, "reader", ["cat", "/data/file"]).stdout == "kept\n"
    kube_cluster.api.delete(f"/api/v1/namespaces/{namespace}/pods/reader")
    wait_for(lambda: kube_cluster.pod(namespace, "reader") is None, WAIT, "the reader pod to go")

    kube_cluster.api.delete(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data")
    wait_for(lambda: not directory.exists(), WAIT, "the claim's directory to be removed")
    name = volume["metadata"]["name"]
    wait_for(
        lambda: kube_cluster.api.get_or_none(f"/api/v1/persistentvolumes/{name}") is None, WAIT, "PV gone"
    )


def test_a_restarted_kubelet_adopts_running_pods(kube_cluster: KubeCluster, namespace: str) -> None:
    if kube_cluster.local is None:
        pytest.skip("needs the kubelet this session started")
    create(kube_cluster, namespace, "pods", pod("steady", [shell("c", "exec sleep 3600")]))
    kube_cluster.wait_pod(namespace, "steady", timeout=WAIT)
    pid = kube_cluster.container_pid(namespace, "steady")

    kube_cluster.local.kill_kubelet()
    try:
        assert process_start_ticks(pid) is not None, "pods outlive their kubelet"
    finally:
        kube_cluster.local.start_kubelet()
    create(kube_cluster, namespace, "pods", pod("later", [shell("c", "exec sleep 3600")]))
    kube_cluster.wait_pod(namespace, "later", timeout=WAIT)
    assert kube_cluster.container_pid(namespace, "steady") == pid
    assert container_status(kube_cluster, namespace, "steady")["restartCount"] == 0

    kube_cluster.api.delete(f"/api/v1/namespaces/{namespace}/pods/steady")
    wait_for(lambda: kube_cluster.pod(namespace, "steady") is None, WAIT, "the adopted pod to be deleted")
    assert process_start_ticks(pid) is None, "the adopted pod's process is gone (at most a zombie)"


def test_init_containers_run_first_and_share_volumes(kube_cluster: KubeCluster, namespace: str) -> None:
    mounts = {"volumeMounts": [{"name": "work", "mountPath": "/work"}]}
    first = shell("first", "echo one > /work/steps", **mounts)
    second = shell("second", "test -f /work/steps && echo two >> /work/steps", **mounts)
    main = shell("main", "exec sleep 3600", **mounts)
    body = pod("init", [main], initContainers=[first, second], volumes=[{"name": "work", "emptyDir": {}}])
    create(kube_cluster, namespace, "pods", body)
    ready = kube_cluster.wait_pod(namespace, "init", timeout=WAIT)
    init_states = [s["state"]["terminated"]["exitCode"] for s in ready["status"]["initContainerStatuses"]]
    assert init_states == [0, 0]
    assert kube_cluster.exec_in_container(namespace, "init", ["cat", "/work/steps"]).stdout == "one\ntwo\n"


def test_cluster_ip_services_reach_ready_endpoints(kube_cluster: KubeCluster, namespace: str) -> None:
    for name in ("web-a", "web-b"):
        server = shell(
            "web",
            f"mkdir -p /site && echo {name} > /site/index.html && exec python3 -m http.server 8080 -d /site",
        )
        server["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
        server["volumeMounts"] = [{"name": "site", "mountPath": "/site"}]
        body = pod(name, [server], volumes=[{"name": "site", "emptyDir": {}}])
        body["metadata"]["labels"]["app"] = "web"
        create(kube_cluster, namespace, "pods", body)
    service = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    create(kube_cluster, namespace, "services", service)
    create(kube_cluster, namespace, "pods", pod("client", [shell("c", "exec sleep 3600")]))
    for name in ("web-a", "web-b", "client"):
        kube_cluster.wait_pod(namespace, name, timeout=WAIT)

    url = f"http://web.{namespace}.svc.cluster.local/"
    answers: set[str] = set()

    def both_answer() -> bool:
        result = kube_cluster.exec_in_pod(
            namespace, "client", ["curl", "-sS", "--max-time", "3", url], check=False
        )
        answers.add(result.stdout.strip())
        return {"web-a", "web-b"} <= answers

    wait_for(both_answer, WAIT, "the Service to reach both endpoints through its ClusterIP", interval=0.5)
    kubernetes = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-k",
        "https://kubernetes.default.svc/",
    ]
    assert kube_cluster.exec_in_pod(namespace, "client", kubernetes).stdout in ("401", "403")

"""petcd processes: watch order across leader changes, `hasleader`, request size limits and etcd's
refusals, SIGTERM and systemd's NOTIFY_SOCKET, leadership handed over on stop."""

from __future__ import annotations

import socket
import threading
import time

import grpc
from harness import Implementation, Sandbox, etcdctl, static_flags
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

PETCD = Implementation("petcd", ("petcd",))


def target(url: str) -> str:
    return url.removeprefix("http://")


def test_watch_sees_every_revision_once_in_order_across_leader_changes(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=3)
    leader = cluster.leader()
    followers = [m for m in cluster.members if m is not leader]
    events: list[tuple[int, bytes]] = []
    created = threading.Event()

    def requests():  # type: ignore[no-untyped-def]
        yield pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"o/", range_end=b"o0"))
        time.sleep(60)  # keep the stream open; the call is cancelled at the end

    with grpc.insecure_channel(target(followers[0].client_url)) as channel:
        stream = rpc_pb2_grpc.WatchStub(channel).Watch(requests())  # type: ignore[no-untyped-call]

        def read() -> None:
            for resp in stream:
                if resp.created:
                    created.set()
                events.extend((e.kv.mod_revision, e.kv.key) for e in resp.events)
                if len(events) >= 150:
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert created.wait(10)
        for i in range(150):
            if i % 50 == 0:  # three leader changes while the watch is open
                cluster.move_leader(followers[(i // 50) % 2])
            etcdctl(["put", f"o/{i:03d}", "v"], [followers[1].client_url]).check()
        reader.join(30)
        stream.cancel()
    assert [k for _, k in events] == [f"o/{i:03d}".encode() for i in range(150)]
    revisions = [r for r, _ in events]
    assert revisions == list(range(revisions[0], revisions[0] + 150)), "a gap or a duplicate"


def test_hasleader_fails_fast_without_a_leader(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=3)
    survivor = cluster.members[0]
    for m in cluster.members[1:]:
        m.kill()
    with grpc.insecure_channel(target(survivor.client_url)) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + 20
        while True:
            try:
                stub.Range(pb.RangeRequest(key=b"a", serializable=True), metadata=[("hasleader", "true")],
                           timeout=5)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
                assert exc.details() == "etcdserver: no leader"
                break
            assert time.monotonic() < deadline, "the member kept answering as if it had a leader"
            time.sleep(0.2)
        # Without the metadata a serializable read is still served locally.
        stub.Range(pb.RangeRequest(key=b"a", serializable=True), timeout=5)


def test_limits_and_refusals(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=1, names=["solo"])
    with grpc.insecure_channel(target(cluster.endpoints[0])) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        try:
            stub.Put(pb.PutRequest(key=b"big", value=b"x" * 1_600_000), timeout=10)
            raise AssertionError("a put over --max-request-bytes was accepted")
        except grpc.RpcError as exc:
            assert (exc.code(), exc.details()) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "etcdserver: request is too large",
            )
        try:
            stub.Range(pb.RangeRequest(key=b""), timeout=10)
            raise AssertionError("an empty key was accepted")
        except grpc.RpcError as exc:
            expected = (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")
            assert (exc.code(), exc.details()) == expected
    auth = cluster.etcdctl("auth", "enable")
    assert auth.returncode != 0 and "etcdserver: root user does not exist" in auth.stderr
    peer_url = cluster.members[0].address.peer_url
    add = cluster.etcdctl("member", "add", "x", f"--peer-urls={peer_url}")
    assert add.returncode != 0 and "etcdserver: Peer URLs already exists" in add.stderr


def test_sigterm_stops_cleanly_and_systemd_is_told(sandbox: Sandbox) -> None:
    PETCD.require()
    (address,) = sandbox.addresses(["solo"])
    path = str(sandbox.root / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(path)
        notify.settimeout(30)
        member = sandbox.member(PETCD, address, static_flags(address, sandbox.data_dir(address), [address]),
                                env={"NOTIFY_SOCKET": path})
        assert notify.recv(64) == b"READY=1"
        member.wait_healthy()
        etcdctl(["put", "k", "v"], [member.client_url]).check()
        assert member.terminate(grace=15) == 0
        assert notify.recv(64) == b"STOPPING=1"
    member.start()
    member.wait_healthy()
    assert etcdctl(["get", "k"], [member.client_url]).check().stdout.split() == ["k", "v"]


def test_a_stopping_leader_hands_over_leadership(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=3)
    leader = cluster.leader()
    assert leader.terminate(grace=15) == 0
    assert '"msg":"leadership transferred before stopping"' in leader.log_text()
    assert '"done":true' in leader.log_text()
    others = [m.client_url for m in cluster.members if m is not leader]
    etcdctl(["put", "after", "handover"], others).check()

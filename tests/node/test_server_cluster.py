"""A 3-member petcd cluster as real processes: etcdctl against every member, leader changes, and no
acknowledged write lost when members (the leader included, then all at once) are killed with SIGKILL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from harness import Cluster, Implementation, Sandbox, etcdctl
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

PETCD = Implementation("petcd", ("petcd",))


@pytest.fixture
def cluster(sandbox: Sandbox) -> Cluster:
    PETCD.require()
    return sandbox.static_cluster(PETCD, size=3)


def host_port(url: str) -> str:
    return url.removeprefix("http://")


class Writer:
    """Puts distinct keys through every member in turn; remembers only the acknowledged ones."""

    def __init__(self, endpoints: list[str], prefix: str) -> None:
        self.channels = [grpc.insecure_channel(host_port(e)) for e in endpoints]
        self.stubs = [rpc_pb2_grpc.KVStub(c) for c in self.channels]  # type: ignore[no-untyped-call]
        self.prefix = prefix
        self.acked: dict[bytes, bytes] = {}
        self.revisions: list[int] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            key = f"{self.prefix}/{i:06d}".encode()
            stub = self.stubs[i % len(self.stubs)]
            try:
                resp = stub.Put(pb.PutRequest(key=key, value=key[::-1]), timeout=3)
            except grpc.RpcError:
                self.failures += 1
                time.sleep(0.05)
            else:
                self.acked[key] = key[::-1]
                self.revisions.append(resp.header.revision)
            i += 1

    def close(self) -> None:
        for c in self.channels:
            c.close()


def all_keys(endpoint: str, prefix: str) -> dict[bytes, bytes]:
    with grpc.insecure_channel(host_port(endpoint)) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        key = prefix.encode()
        resp = stub.Range(pb.RangeRequest(key=key, range_end=key + b"\xff", serializable=True), timeout=10)
    return {kv.key: kv.value for kv in resp.kvs}


def statuses(cluster: Cluster) -> list[dict[str, int]]:
    out = etcdctl(["endpoint", "status", "-w", "json"], cluster.endpoints).check().stdout
    return [s["Status"] for s in json.loads(out)]


def wait_converged(cluster: Cluster, timeout: float = 30.0) -> int:
    """Every member has applied the same index; returns the common revision."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = statuses(cluster)
        if len({s["raftAppliedIndex"] for s in st}) == 1 and len({s["header"]["revision"] for s in st}) == 1:
            return int(st[0]["header"]["revision"])
        time.sleep(0.2)
    raise AssertionError(f"members did not converge: {statuses(cluster)}")


@pytest.fixture
def writers(cluster: Cluster) -> Iterator[list[Writer]]:
    ws = [Writer(cluster.endpoints, f"w{n}") for n in range(2)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in ws]
    for t in threads:
        t.start()
    try:
        yield ws
    finally:
        for w in ws:
            w.stop.set()
        for t in threads:
            t.join(10)
        for w in ws:
            w.close()


def test_etcdctl_against_each_member(cluster: Cluster) -> None:
    first, second, third = cluster.endpoints
    etcdctl(["put", "a", "1"], [first]).check()
    assert etcdctl(["get", "a"], [second]).check().stdout.split() == ["a", "1"]
    members = json.loads(cluster.etcdctl("member", "list", "-w", "json").check().stdout)["members"]
    assert sorted(m["name"] for m in members) == ["etcd01", "etcd02", "etcd03"]
    assert all(m["clientURLs"] for m in members)
    leader = cluster.leader()
    follower = next(m for m in cluster.members if m is not leader)
    lease = etcdctl(["lease", "grant", "30"], [follower.client_url]).check().stdout.split()[1]
    out = etcdctl(["lease", "keep-alive", "--once", lease], [follower.client_url]).check().stdout
    assert f"lease {lease} keepalived with TTL(30)" in out
    assert "remaining" in etcdctl(["lease", "timetolive", lease], [third]).check().stdout
    cluster.move_leader(follower)
    assert cluster.leader() is follower
    hashes = etcdctl(["endpoint", "hashkv", "-w", "json"], cluster.endpoints).check().stdout
    assert len({h["HashKV"]["hash"] for h in json.loads(hashes)}) == 1


def test_no_acknowledged_write_lost_across_kill_9(cluster: Cluster, writers: list[Writer]) -> None:
    for round_ in range(3):
        time.sleep(1.0)
        victim = cluster.leader() if round_ != 1 else cluster.members[round_]
        victim.kill()
        time.sleep(1.5)
        victim.start()
        victim.wait_healthy(30)
    time.sleep(1.0)
    for member in cluster.members:  # all three at once
        member.kill()
    for member in cluster.members:
        member.start()
    cluster.wait_healthy(30)
    time.sleep(1.0)
    for w in writers:
        w.stop.set()
    time.sleep(3.5)  # let in-flight puts finish or time out
    revision = wait_converged(cluster)
    acked = {k: v for w in writers for k, v in w.acked.items()}
    assert len(acked) > 50, "the writers made too little progress to mean anything"
    for member in cluster.members:
        stored = all_keys(member.client_url, "w")
        missing = [k for k in acked if stored.get(k) != acked[k]]
        assert not missing, f"{member.name} lost {len(missing)} acknowledged writes, e.g. {missing[:3]}"
    for w in writers:
        assert all(a < b for a, b in zip(w.revisions, w.revisions[1:], strict=False)), "revisions went back"
    hashes = etcdctl(["endpoint", "hashkv", "-w", "json", f"--rev={revision}"], cluster.endpoints)
    assert len({h["HashKV"]["hash"] for h in json.loads(hashes.check().stdout)}) == 1


def put_many(endpoint: str, count: int) -> None:
    """`count` puts from 32 concurrent clients, each retried over a leader change."""
    from concurrent.futures import ThreadPoolExecutor

    with grpc.insecure_channel(host_port(endpoint)) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]

        def put(i: int) -> None:
            for _ in range(5):
                try:
                    stub.Put(pb.PutRequest(key=f"s/{i:05d}".encode(), value=b"v" * 100), timeout=10)
                    return
                except grpc.RpcError:
                    time.sleep(0.2)
            raise AssertionError(f"put {i} failed five times")

        with ThreadPoolExecutor(32) as pool:
            list(pool.map(put, range(count)))


def test_lagging_member_catches_up_from_a_snapshot(sandbox: Sandbox) -> None:
    """A member down while the others wrote more than the log they keep (5000 entries behind the
    snapshot) receives the whole backend as a Raft snapshot, and restarts from its own snapshot."""
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=3, extra_flags=["--snapshot-count=100"])
    lagger = cluster.members[2]
    lagger.kill()
    put_many(cluster.members[0].client_url, 5300)
    lagger.start()
    lagger.wait_healthy(60)
    revision = wait_converged(cluster, 60)
    assert len(all_keys(lagger.client_url, "s/")) == 5300
    assert "received database snapshot" in lagger.log_text()
    lagger.kill()
    lagger.start()
    lagger.wait_healthy(60)
    assert len(all_keys(lagger.client_url, "s/")) == 5300
    hashes = etcdctl(["endpoint", "hashkv", "-w", "json", f"--rev={revision}"], cluster.endpoints)
    assert len({h["HashKV"]["hash"] for h in json.loads(hashes.check().stdout)}) == 1
    snap_files = list((lagger.data_dir / "member" / "snap").glob("*.snap"))
    assert snap_files, "the lagging member kept no snapshot"

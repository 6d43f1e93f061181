"""The harness catches a real server's anomaly, not only hand-written ones: etcd's serializable
reads, served by a member cut off from the leader, return values the majority has overwritten;
the history recorded from them is not linearizable and its revisions go backwards."""

from __future__ import annotations

import os

import pytest
from harness import IMPLEMENTATIONS, Sandbox
from harness.linearizability import History, check
from petcd.proto import rpc_pb2

from reliability.client import Connections
from reliability.cluster import start_cluster
from reliability.network import PartitionableNetwork
from reliability.revision_check import check_revisions
from reliability.workload import REQUEST_TIMEOUT

KEY = "/kv/x"
WRITES = 20


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and bridges need root")
def test_serializable_reads_from_a_cut_off_member_are_reported(sandbox: Sandbox) -> None:
    etcd = IMPLEMENTATIONS["etcd34"]
    etcd.require()
    network = PartitionableNetwork(3)
    history = History()
    try:
        network.create()
        cluster = start_cluster(sandbox, etcd, network)
        connections = Connections(cluster.endpoints)
        try:
            # cut off a follower, so that the majority keeps its leader and writes go on at once
            statuses = [
                m.maintenance.Status(rpc_pb2.StatusRequest(), timeout=10) for m in connections.members
            ]
            leader = next(i for i, s in enumerate(statuses) if s.header.member_id == s.leader)
            follower = (leader + 1) % 3
            cut_off, majority = connections.members[follower], connections.members[leader]
            first = history.call(0, "put", KEY, value="0")
            put = majority.kv.Put(rpc_pb2.PutRequest(key=KEY.encode(), value=b"0"), timeout=REQUEST_TIMEOUT)
            first.returned(revision=put.header.revision)
            network.partition([[i for i in range(3) if i != follower], [follower]])
            for value in range(1, WRITES + 1):
                pending = history.call(0, "put", KEY, value=str(value))
                request = rpc_pb2.PutRequest(key=KEY.encode(), value=str(value).encode())
                put = majority.kv.Put(request, timeout=10)
                pending.returned(revision=put.header.revision)
                read = history.call(1, "get", KEY)
                got = cut_off.kv.Range(rpc_pb2.RangeRequest(key=KEY.encode(), serializable=True), timeout=10)
                seen = got.kvs[0].value.decode() if got.kvs else ""
                read.returned(found=bool(got.kvs), value=seen, revision=got.header.revision)
        finally:
            connections.close()
    finally:
        sandbox.close()
        network.release()
    stale = [op for op in history.operations if op["input"]["op"] == "get" and op["output"]["value"] == "0"]
    assert stale, "the cut-off member served no stale read: nothing to catch"
    assert check(history, sandbox.root / "checks").result == "illegal"
    assert check_revisions(history.operations)

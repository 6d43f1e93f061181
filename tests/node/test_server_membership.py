"""Runtime reconfiguration of a petcd cluster with etcdctl: add a learner, start it with
--initial-cluster-state existing, promote it, remove the leader; etcd's refusals on the way."""

from __future__ import annotations

import json
import time

from harness import Implementation, Sandbox, etcdctl, static_flags

PETCD = Implementation("petcd", ("petcd",))


def members(endpoints: list[str]) -> list[dict[str, object]]:
    out = etcdctl(["member", "list", "-w", "json"], endpoints).check().stdout
    return list(json.loads(out)["members"])


def test_learner_added_promoted_and_leader_removed(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=3)
    endpoints = cluster.endpoints
    etcdctl(["put", "before", "1"], endpoints).check()
    (address,) = sandbox.addresses(["etcd04"])
    add = ["member", "add", "etcd04", f"--peer-urls={address.peer_url}", "--learner"]
    deadline = time.monotonic() + 30
    # etcd refuses reconfiguration until every voter has been connected for 5 s ("unhealthy cluster")
    while "unhealthy cluster" in (added := etcdctl(add, endpoints)).stderr and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "Member" in added.check().stdout and "added to cluster" in added.stdout
    listed = {m.get("name", ""): m for m in members(endpoints)}
    assert listed[""]["isLearner"] is True and listed[""]["peerURLs"] == [address.peer_url]
    new_id = int(str(listed[""]["ID"]))

    second = etcdctl(["member", "add", "etcd05", "--peer-urls=http://127.0.0.1:9", "--learner"], endpoints)
    assert second.returncode != 0 and "etcdserver: too many learner members in cluster" in second.stderr

    flags = static_flags(address, sandbox.data_dir(address), [m.address for m in cluster.members] + [address],
                         token=cluster.token, state="existing")
    learner = sandbox.member(PETCD, address, flags)
    learner.wait_healthy(60)
    refused = etcdctl(["put", "x", "y"], [learner.client_url])
    assert refused.returncode != 0 and "etcdserver: rpc not supported for learner" in refused.stderr
    deadline = time.monotonic() + 30
    while True:
        promoted = etcdctl(["member", "promote", f"{new_id:x}"], [cluster.members[1].client_url])
        if promoted.returncode == 0:
            break
        assert "in sync with leader" in promoted.stderr, promoted.stderr
        assert time.monotonic() < deadline, "the learner never caught up"
        time.sleep(0.5)
    assert "promoted in cluster" in promoted.stdout
    again = etcdctl(["member", "promote", f"{new_id:x}"], endpoints)
    assert "etcdserver: can only promote a learner member" in again.stderr
    all_endpoints = [*endpoints, learner.client_url]
    assert [m.get("isLearner", False) for m in members(all_endpoints)] == [False] * 4
    assert etcdctl(["get", "before", "--consistency=s"], [learner.client_url]).check().stdout.split() == [
        "before",
        "1",
    ]

    leader = cluster.leader()
    leader_id = cluster.member_ids()[leader.name]
    others = [m.client_url for m in [*cluster.members, learner] if m is not leader]
    etcdctl(["member", "remove", f"{leader_id:x}"], [leader.client_url]).check()
    assert leader.wait_exit(30) is not None, "the removed leader kept running"
    assert len(members(others)) == 3
    # the cluster elects a new leader after losing its leader; a client retries until then (a single
    # 5 s etcdctl attempt sometimes fell in that gap: see the issue note)
    deadline = time.monotonic() + 30
    while (put := etcdctl(["put", "after", "2"], others)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    put.check()
    unknown = etcdctl(["member", "remove", f"{leader_id:x}"], others)
    assert "etcdserver: member not found" in unknown.stderr

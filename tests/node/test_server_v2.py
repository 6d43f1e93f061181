"""The v2 API (--enable-v2) on a petcd cluster: writes go through Raft to every member's v2 store,
TTL keys expire everywhere, and the store survives restarts (rebuilt from the log)."""

from __future__ import annotations

import json
import time

from harness import Implementation, Sandbox, etcdctl, http_get

PETCD = Implementation("petcd", ("petcd",))


def test_v2_keys_replicate_expire_and_survive_restart(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=3, extra_flags=["--enable-v2=true"])
    first, second, third = cluster.members
    etcdctl(["set", "/message", "Hello"], [first.client_url], api="2").check()
    etcdctl(["set", "/short", "lived", "--ttl", "2"], [first.client_url], api="2").check()
    assert etcdctl(["get", "/message"], [second.client_url], api="2").check().stdout.strip() == "Hello"
    status, body = http_get(f"{third.client_url}/v2/keys/message?quorum=true")
    assert status == 200 and json.loads(body)["node"]["value"] == "Hello"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if http_get(f"{third.client_url}/v2/keys/short")[0] == 404:
            break
        time.sleep(0.3)
    assert http_get(f"{third.client_url}/v2/keys/short")[0] == 404, "the TTL key never expired"
    for member in cluster.members:
        member.kill()
    for member in cluster.members:
        member.start()
    cluster.wait_healthy()
    for member in cluster.members:
        status, body = http_get(f"{member.client_url}/v2/keys/message")
        assert status == 200 and json.loads(body)["node"]["value"] == "Hello", member.name


def test_v2_members_add_and_remove(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=3, extra_flags=["--enable-v2=true"])
    (spare,) = sandbox.addresses(["spare"])
    deadline = time.monotonic() + 20
    while True:  # strict reconfiguration wants every voter connected to the member taking the add
        added = etcdctl(["member", "add", "spare", spare.peer_url], cluster.endpoints, api="2")
        if added.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    added.check()
    new_id = added.stdout.split("with ID ")[1].split()[0]
    listing = etcdctl(["member", "list"], cluster.endpoints, api="2").check().stdout
    assert f"{new_id}[unstarted]: peerURLs={spare.peer_url}" in listing
    again = etcdctl(["member", "add", "spare2", spare.peer_url], cluster.endpoints, api="2")
    assert again.returncode != 0 and "peerURL exists" in again.stderr + again.stdout
    etcdctl(["member", "remove", new_id], cluster.endpoints, api="2").check()
    assert new_id not in etcdctl(["member", "list"], cluster.endpoints, api="2").check().stdout

"""A single petcd member, started as a real process, driven by Debian's etcdctl (API v3)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from harness import Implementation, Sandbox, static_flags

PETCD = Implementation("petcd", ("petcd",))


@pytest.fixture
def single(sandbox: Sandbox):  # type: ignore[no-untyped-def]
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=1, names=["solo"])
    return cluster


def ctl(cluster, *args: str, stdin: str | None = None) -> str:  # type: ignore[no-untyped-def]
    return str(cluster.etcdctl(*args, stdin=stdin).check().stdout)


def test_put_get_delete_with_revisions(single) -> None:  # type: ignore[no-untyped-def]
    assert ctl(single, "put", "foo", "bar").strip() == "OK"
    ctl(single, "put", "foo", "baz")
    ctl(single, "put", "fop", "1")
    got = json.loads(ctl(single, "get", "foo", "-w", "json"))
    kv = got["kvs"][0]
    assert (kv["create_revision"], kv["mod_revision"], kv["version"]) == (2, 3, 2)
    assert got["header"]["revision"] == 4
    assert ctl(single, "get", "foo", "--rev=2").split() == ["foo", "bar"]
    assert ctl(single, "get", "fo", "--prefix", "--keys-only").split() == ["foo", "fop"]
    assert json.loads(ctl(single, "get", "fo", "--prefix", "-w", "json"))["count"] == 2
    assert ctl(single, "get", "fo", "--prefix", "--limit=1", "--sort-by=KEY", "--order=DESCEND").split() == [
        "fop",
        "1",
    ]
    assert ctl(single, "get", "foo", "--consistency=s").split() == ["foo", "baz"]
    assert ctl(single, "del", "fo", "--prefix", "--prev-kv").split() == ["2", "foo", "baz", "fop", "1"]
    assert ctl(single, "get", "fo", "--prefix") == ""


def test_errors_carry_etcds_messages(single) -> None:  # type: ignore[no-untyped-def]
    ctl(single, "put", "a", "1")
    ctl(single, "put", "a", "2")
    ctl(single, "compaction", "3")
    result = single.etcdctl("get", "a", "--rev=2")
    assert result.returncode != 0
    assert "etcdserver: mvcc: required revision has been compacted" in result.stderr
    result = single.etcdctl("get", "a", "--rev=99")
    assert "etcdserver: mvcc: required revision is a future revision" in result.stderr
    result = single.etcdctl("put", "k", "v", "--lease=1234")
    assert "etcdserver: requested lease not found" in result.stderr


def test_txn_from_stdin(single) -> None:  # type: ignore[no-untyped-def]
    ctl(single, "put", "key1", "v1")
    script = 'value("key1") = "v1"\n\nput key2 ok\nget key1\n\nput key2 failed\n\n'
    out = ctl(single, "txn", stdin=script).split()
    assert out == ["SUCCESS", "OK", "key1", "v1"]
    assert ctl(single, "get", "key2").split() == ["key2", "ok"]
    out = ctl(single, "txn", stdin='mod("key1") > "100"\n\nput key2 x\n\nput key2 failed\n\n').split()
    assert out == ["FAILURE", "OK"]


def test_watch_replays_history_then_follows(single) -> None:  # type: ignore[no-untyped-def]
    ctl(single, "put", "w/a", "1")
    ctl(single, "put", "w/b", "2")
    ctl(single, "del", "w/a")
    watcher = subprocess.Popen(
        ["etcdctl", f"--endpoints={single.endpoints[0]}", "watch", "w/", "--prefix", "--rev=1", "--prev-kv"],
        stdout=subprocess.PIPE,
        text=True,
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
    )
    try:
        time.sleep(1.0)
        ctl(single, "put", "w/c", "3")
        time.sleep(1.0)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    lines = out.split()
    # History from revision 1 (the delete event carries the previous value), then the live put.
    assert lines[:7] == ["PUT", "w/a", "1", "PUT", "w/b", "2", "DELETE"]
    assert lines[-3:] == ["PUT", "w/c", "3"]
    assert lines.count("PUT") == 3


def test_lease_grant_keepalive_ttl_revoke(single) -> None:  # type: ignore[no-untyped-def]
    out = ctl(single, "lease", "grant", "60")
    lease = out.split()[1]
    ctl(single, "put", "leased", "v", f"--lease={lease}")
    assert f"lease {lease} keepalived with TTL(60)" in ctl(single, "lease", "keep-alive", "--once", lease)
    ttl = ctl(single, "lease", "timetolive", lease, "--keys")
    assert "granted with TTL(60s)" in ttl and "attached keys([leased])" in ttl
    assert lease in ctl(single, "lease", "list")
    assert "revoked" in ctl(single, "lease", "revoke", lease)
    assert ctl(single, "get", "leased") == ""
    assert "already expired" in ctl(single, "lease", "timetolive", lease)


def test_lease_expiry_deletes_keys(single) -> None:  # type: ignore[no-untyped-def]
    lease = ctl(single, "lease", "grant", "2").split()[1]
    ctl(single, "put", "short", "v", f"--lease={lease}")
    deadline = time.monotonic() + 20
    while ctl(single, "get", "short") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ctl(single, "get", "short") == ""


def test_status_member_list_hashkv_alarm_defrag_snapshot(single, tmp_path) -> None:  # type: ignore[no-untyped-def]
    status = json.loads(ctl(single, "endpoint", "status", "-w", "json"))[0]["Status"]
    assert status["leader"] == status["header"]["member_id"]
    assert status["version"].startswith("3.5.")
    members = json.loads(ctl(single, "member", "list", "-w", "json"))["members"]
    assert [m["name"] for m in members] == ["solo"]
    assert members[0]["clientURLs"] == single.endpoints
    assert "is healthy" in single.etcdctl("endpoint", "health").check().stderr
    ctl(single, "put", "x", "y")
    assert ctl(single, "endpoint", "hashkv").strip()
    assert ctl(single, "alarm", "list") == ""
    assert "Finished defragmenting" in ctl(single, "defrag")
    snap = tmp_path / "snap.db"
    assert "Snapshot saved" in ctl(single, "snapshot", "save", str(snap))
    assert snap.stat().st_size > 0


def test_restart_keeps_data(sandbox: Sandbox) -> None:
    PETCD.require()
    (address,) = sandbox.addresses(["solo"])
    member = sandbox.member(PETCD, address, static_flags(address, sandbox.data_dir(address), [address]))
    member.wait_healthy()
    from harness import etcdctl

    for i in range(20):
        etcdctl(["put", f"k{i}", f"v{i}"], [member.client_url]).check()
    member.kill()
    member.start()
    member.wait_healthy()
    out = etcdctl(["get", "k", "--prefix", "-w", "json"], [member.client_url]).check().stdout
    got = json.loads(out)
    assert len(got["kvs"]) == 20
    assert got["header"]["revision"] == 21


def test_periodic_auto_compaction(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(
        PETCD,
        size=1,
        names=["solo"],
        extra_flags=["--auto-compaction-mode=periodic", "--auto-compaction-retention=2s"],
    )
    for i in range(5):
        ctl(cluster, "put", "k", str(i))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = cluster.etcdctl("get", "k", "--rev=2")
        if "required revision has been compacted" in result.stderr:
            break
        ctl(cluster, "put", "k", "more")
        time.sleep(0.5)
    else:
        raise AssertionError("history older than the retention was never compacted")
    assert ctl(cluster, "get", "k").split()[0] == "k"

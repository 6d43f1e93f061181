"""Backup and restore with real processes: `petcd snapshot save` (and Debian's `etcdctl snapshot save`)
from a running 3-member petcd cluster, `petcd snapshot restore` into a NEW 3-member cluster that starts
from the restored data dirs with every key, every revision, the compaction and the lease; a corrupted
file is refused and no data dir appears. The commands are the ones docs/snapshot-format.md shows."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import grpc
from harness import IMPLEMENTATIONS, Cluster, Implementation, Sandbox, etcdctl, static_flags
from harness.implementations import ETCD35_BIN
from harness.process import child_environment
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

PETCD = Implementation("petcd", ("petcd",))
DOC = Path(__file__).resolve().parents[2] / "docs" / "snapshot-format.md"

SAVE = 'petcd snapshot save "$BACKUP" --endpoints="$ENDPOINT"'
ETCDCTL_SAVE = 'etcdctl --endpoints="$ENDPOINT" snapshot save "$BACKUP"'
STATUS = 'petcd snapshot status "$BACKUP" --write-out=json'
RESTORE = ('petcd snapshot restore "$BACKUP" --name="$NAME" --data-dir="$DATA_DIR" '
           '--initial-cluster="$INITIAL_CLUSTER" --initial-cluster-token="$TOKEN" '
           '--initial-advertise-peer-urls="$PEER_URL"')

KV = tuple[bytes, bytes, int, int, int, int]  # key, value, create, mod, version, lease


def shell(command: str, path_first: Path | None = None, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run a documented command line with its variables set, as a user's shell would (`path_first`:
    a directory whose programs come before those on PATH, e.g. etcd 3.5's etcdctl)."""
    assert command in DOC.read_text(), f"docs/snapshot-format.md does not show: {command}"
    env = child_environment(variables)
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def key_space(endpoint: str, revision: int = 0, serializable: bool = False) -> list[KV]:
    with grpc.insecure_channel(endpoint.removeprefix("http://")) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        request = pb.RangeRequest(key=b"\0", range_end=b"\0", revision=revision, serializable=serializable)
        resp = stub.Range(request, timeout=10)
    return [(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease) for kv in resp.kvs]


def write_history(endpoint: str) -> tuple[int, int]:
    """Puts, overwrites, deletes, a leased key and a compaction; returns (compacted, current) revision."""
    with grpc.insecure_channel(endpoint.removeprefix("http://")) as channel:
        kv = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        lease = rpc_pb2_grpc.LeaseStub(channel)  # type: ignore[no-untyped-call]
        for i in range(200):
            kv.Put(pb.PutRequest(key=f"k/{i:03d}".encode(), value=f"first {i}".encode()), timeout=10)
        compacted = kv.Range(pb.RangeRequest(key=b"k/000"), timeout=10).header.revision
        for i in range(0, 50):
            kv.Put(pb.PutRequest(key=f"k/{i:03d}".encode(), value=f"second {i}".encode()), timeout=10)
        kv.DeleteRange(pb.DeleteRangeRequest(key=b"k/100", range_end=b"k/110"), timeout=10)
        granted = lease.LeaseGrant(pb.LeaseGrantRequest(TTL=900), timeout=10)
        leased = kv.Put(pb.PutRequest(key=b"leased", value=b"x", lease=granted.ID), timeout=10)
        kv.Compact(pb.CompactionRequest(revision=compacted, physical=True), timeout=10)
    return compacted, leased.header.revision


def test_save_restore_into_a_new_three_member_cluster(sandbox: Sandbox, tmp_path: Path) -> None:
    PETCD.require()
    old = sandbox.static_cluster(PETCD, 3, names=["old1", "old2", "old3"], token="before-backup")
    compacted, current = write_history(old.endpoints[0])
    follower = next(m for m in old.members if m is not old.leader())
    etcdctl(["get", "leased"], [follower.client_url]).check()  # linearizable: the follower has applied it
    expected = {rev: key_space(follower.client_url, rev) for rev in (compacted, compacted + 25, current)}
    old_ids = old.member_ids()

    backup = tmp_path / "backup.db"
    saved = shell(SAVE, BACKUP=str(backup), ENDPOINT=follower.client_url)
    assert saved.returncode == 0 and saved.stdout == f"Snapshot saved at {backup}\n", saved
    copies = [backup]
    # Debian's etcdctl 3.4, and 3.5's (which also checks that the file ends with a digest) when built
    for etcdctl_dir in (None, ETCD35_BIN) if IMPLEMENTATIONS["etcd35"].missing() is None else (None,):
        copy = tmp_path / f"etcdctl-{len(copies)}.db"
        saved = shell(ETCDCTL_SAVE, etcdctl_dir, BACKUP=str(copy), ENDPOINT=follower.client_url)
        assert saved.returncode == 0 and f"Snapshot saved at {copy}" in saved.stdout, saved
        copies.append(copy)
    statuses = [json.loads(shell(STATUS, BACKUP=str(path)).stdout) for path in copies]
    assert all(s == statuses[0] for s in statuses)  # the same key space, whichever client saved it
    assert statuses[0]["revision"] == current
    for member in old.members:
        member.kill()

    addresses = sandbox.addresses(["new1", "new2", "new3"])
    initial_cluster = ",".join(f"{a.name}={a.peer_url}" for a in addresses)
    members = []
    for address in addresses:
        data_dir = sandbox.data_dir(address)
        restored = shell(RESTORE, BACKUP=str(backup), NAME=address.name, DATA_DIR=str(data_dir),
                         INITIAL_CLUSTER=initial_cluster, TOKEN="after-restore", PEER_URL=address.peer_url)
        assert restored.returncode == 0, restored.stderr
        flags = static_flags(address, data_dir, addresses, token="after-restore")
        members.append(sandbox.member(PETCD, address, flags))
    new = Cluster(PETCD, members, "after-restore")
    new.wait_healthy(60)

    ids = new.member_ids()
    assert sorted(ids) == ["new1", "new2", "new3"]
    assert not set(ids.values()) & set(old_ids.values())
    for member in new.members:
        etcdctl(["get", "leased"], [member.client_url]).check()  # linearizable: caught up
        for rev, kvs in expected.items():
            assert key_space(member.client_url, rev) == kvs, (member.name, rev)
    too_old = etcdctl(["get", "k/000", f"--rev={compacted - 1}"], [new.endpoints[0]])
    assert "required revision has been compacted" in too_old.stderr
    put = json.loads(new.etcdctl("put", "after", "1", "-w", "json").check().stdout)
    assert put["header"]["revision"] == current + 1
    lease_id = expected[current][-1][5]
    alive = new.etcdctl("lease", "timetolive", f"{lease_id:x}", "--keys").check().stdout
    assert "remaining" in alive and "attached keys([leased])" in alive, alive
    after: KV = (b"after", b"1", current + 1, current + 1, 1, 0)
    joiner_learns_the_restored_cluster(sandbox, new, sorted([*expected[current], after]))


def joiner_learns_the_restored_cluster(sandbox: Sandbox, cluster: Cluster, expected: list[KV]) -> None:
    """A member added after the restore replays the new cluster's log from its first entry: the
    founders must be in it (the restore wrote their bootstrap entries), or it would not follow them."""
    (address,) = sandbox.addresses(["new4"])
    add = ("member", "add", "new4", f"--peer-urls={address.peer_url}", "--learner")
    # a freshly started cluster refuses reconfiguration until every voter has been connected for 5 s
    # ("unhealthy cluster", etcd's strict reconfiguration check): retry as any etcd client must
    deadline = time.monotonic() + 30
    while "unhealthy cluster" in (added := cluster.etcdctl(*add)).stderr and time.monotonic() < deadline:
        time.sleep(0.5)
    added.check()
    flags = static_flags(address, sandbox.data_dir(address), [m.address for m in cluster.members] + [address],
                         token=cluster.token, state="existing")
    learner = sandbox.member(PETCD, address, flags)
    learner.wait_healthy(60)
    deadline = time.monotonic() + 60
    while (seen := key_space(learner.client_url, serializable=True)) != expected:
        assert time.monotonic() < deadline, f"the added member never caught up: {len(seen)} keys"
        time.sleep(0.5)


def test_corrupted_snapshot_is_refused_and_nothing_written(sandbox: Sandbox, tmp_path: Path) -> None:
    PETCD.require()
    single = sandbox.static_cluster(PETCD, 1)
    write_history(single.endpoints[0])
    backup = tmp_path / "backup.db"
    assert shell(SAVE, BACKUP=str(backup), ENDPOINT=single.endpoints[0]).returncode == 0
    data = bytearray(backup.read_bytes())
    data[len(data) // 3] ^= 0x01
    corrupted = tmp_path / "corrupted.db"
    corrupted.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    address = sandbox.addresses(["r1"])[0]
    data_dir = sandbox.data_dir(address)
    before = sorted(os.listdir(data_dir.parent))
    for bad, reason in ((corrupted, "is corrupt"), (truncated, "has no SHA-256 trailer")):
        refused = shell(RESTORE, BACKUP=str(bad), NAME="r1", DATA_DIR=str(data_dir),
                        INITIAL_CLUSTER=f"r1={address.peer_url}", TOKEN="t", PEER_URL=address.peer_url)
        assert refused.returncode == 1, refused
        assert refused.stderr.startswith(f"Error: snapshot {bad} {reason}"), refused.stderr
        assert sorted(os.listdir(data_dir.parent)) == before  # no data dir, no staging directory left
        status = shell(STATUS, BACKUP=str(bad))
        assert status.returncode == 1 and reason in status.stderr


def test_etcd_snapshot_is_refused_with_the_way_to_migrate(sandbox: Sandbox, tmp_path: Path) -> None:
    etcd = IMPLEMENTATIONS["etcd34"]
    etcd.require()
    PETCD.require()
    source = sandbox.static_cluster(etcd, 1)
    source.etcdctl("put", "a", "1").check()
    backup = tmp_path / "etcd.db"
    assert shell(ETCDCTL_SAVE, BACKUP=str(backup), ENDPOINT=source.endpoints[0]).returncode == 0
    data_dir = tmp_path / "restored"
    refused = shell(RESTORE, BACKUP=str(backup), NAME="r1", DATA_DIR=str(data_dir),
                    INITIAL_CLUSTER="r1=http://127.0.0.1:2380", TOKEN="t", PEER_URL="http://127.0.0.1:2380")
    assert refused.returncode == 1, refused
    assert refused.stderr.startswith(f"Error: snapshot {backup} is an etcd (bbolt) snapshot"), refused.stderr
    assert "make-mirror" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etcd.db"]

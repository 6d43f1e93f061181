"""`snapshot restore` into a temp dir: the store reopens with the same keys, revisions, compaction and
leases, a new membership with IDs derived as etcd derives them, nothing applied yet, and a WAL naming
the member; refusals leave the file system exactly as it was."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from petcd.config import ConfigError
from petcd.proto import raft_internal_pb2 as ipb
from petcd.proto import rpc_pb2 as pb
from petcd.raft.types import ConfChangeType, ConfState, EntryType, SnapshotMetadata, decode_conf_change
from petcd.server import snapshot_data
from petcd.server.apply import StateMachine
from petcd.server.membership import Membership
from petcd.snapshot import command
from petcd.snapshot.restore import RestoreError, RestoreOptions, restore
from petcd.snapshot.snapfile import Receiver, SnapshotError
from petcd.storage.disk import RaftDisk
from petcd.storage.kv import DeleteRangeRequest, KeyValue, PutRequest, RangeRequest
from petcd.storage.mvcc import MVCCStore
from petcd.storage.wal import WAL

LEASE = 0x1234
CLUSTER = "m1=http://10.0.0.1:2380,m2=http://10.0.0.2:2380,m3=http://10.0.0.3:2380"

# What etcdctl 3.4.23 `snapshot restore --name e1 --initial-cluster e1=http://127.0.0.93:23802
# --initial-advertise-peer-urls http://127.0.0.93:23802` logged (token etcd-cluster).
ETCD_MEMBER_ID = 0x373A8C0428AFEBC3
ETCD_CLUSTER_ID = 0x82158456DBC2991D


def history(store: MVCCStore) -> list[list[KeyValue]]:
    """Every key as of every revision from the compaction on: the whole visible history."""
    start = max(store.compact_revision, 1)
    return [store.range(RangeRequest(key=b"\0", range_end=b"\0", revision=rev)).kvs
            for rev in range(start, store.current_revision + 1)]


@pytest.fixture
def source(tmp_path: Path) -> Iterator[MVCCStore]:
    store = MVCCStore.open(tmp_path / "source" / "db")
    with store.batch() as b:
        b.lease_grant(LEASE, 600, time.monotonic())
        b.set_applied(5, 2)
    for i in range(40):
        store.put(PutRequest(key=f"k/{i % 13:02d}".encode(), value=f"v{i}".encode()))
    store.put(PutRequest(key=b"leased", value=b"x", lease=LEASE))
    store.compact(20)
    store.delete_range(DeleteRangeRequest(key=b"k/03"))
    with store.batch() as b:
        b.set_applied(999, 7)  # the old cluster's Raft log position
    yield store
    store.close()


@pytest.fixture
def snapshot(source: MVCCStore, tmp_path: Path) -> Path:
    path = tmp_path / "backup.db"
    receiver = Receiver(path)
    digest = hashlib.sha256()
    for chunk in source.backend.snapshot_chunks():
        digest.update(chunk)
        receiver.write(chunk)
    receiver.write(digest.digest())
    receiver.finish()
    return path


def options(tmp_path: Path, name: str = "m2", **changes: object) -> RestoreOptions:
    base = RestoreOptions(name=name, data_dir=str(tmp_path / "restored" / f"{name}.etcd"),
                          initial_cluster=CLUSTER, initial_cluster_token="restored-1",
                          initial_advertise_peer_urls=f"http://10.0.0.{name[-1]}:2380")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_restored_store_has_every_key_and_revision(source: MVCCStore, snapshot: Path, tmp_path: Path) -> None:
    expected = history(source)
    done = restore(snapshot, options(tmp_path))
    store = MVCCStore.open(done.snap_dir / "db")
    try:
        assert store.current_revision == source.current_revision
        assert store.compact_revision == source.compact_revision == 20
        assert history(store) == expected
        # applied up to the new Raft log's snapshot (the 3 founders' bootstrap entries), not the old log's
        assert (store.consistent_index, store.term) == (3, 1)
        assert store.lessor.lookup(LEASE) is not None
        assert store.lessor.lease_of(b"leased") == LEASE
    finally:
        store.close()


def test_membership_is_replaced_with_bootstrap_ids(snapshot: Path, tmp_path: Path) -> None:
    done = restore(snapshot, options(tmp_path))
    expected = Membership.bootstrap({"m1": ["http://10.0.0.1:2380"], "m2": ["http://10.0.0.2:2380"],
                                     "m3": ["http://10.0.0.3:2380"]}, "restored-1")
    store = MVCCStore.open(done.snap_dir / "db")
    try:
        state = StateMachine(store, Membership(0), 0, lambda _r: pb.ResponseHeader(), time.monotonic)
        assert state.load()
        assert state.membership.to_json() == expected.to_json()
        assert state.alarms == set()
    finally:
        store.close()
    me = next(m.id for m in expected.members.values() if m.name == "m2")
    assert (done.member_id, done.cluster_id) == (me, expected.cluster_id)
    disk, recovered = RaftDisk.open(done.wal_dir, done.snap_dir)
    disk.close()
    assert (recovered.metadata.node_id, recovered.metadata.cluster_id) == (me, expected.cluster_id)
    # etcd's restore: the founders' bootstrap entries 1..3, committed, then a Raft snapshot at 3 (a member
    # added later is sent the backend instead of replaying a log without the restored keys)
    assert recovered.hard_state.commit == 3 and recovered.hard_state.term == 1
    assert recovered.snapshot is not None and recovered.entries == []
    assert recovered.snapshot.metadata == SnapshotMetadata(3, 1, ConfState(voters=expected.voters()))
    assert snapshot_data.unpack(recovered.snapshot.data).membership_json == expected.to_json()
    wal, state_in_wal = WAL.open(done.wal_dir, snapshot_index=0)
    wal.close()
    assert [(e.index, e.term, e.type) for e in state_in_wal.entries] == [(i, 1, EntryType.CONF_CHANGE)
                                                                         for i in (1, 2, 3)]
    changes = [decode_conf_change(e.data) for e in state_in_wal.entries]
    assert [(c.type, c.node_id) for c in changes] == [(ConfChangeType.ADD_NODE, v) for v in expected.voters()]
    for change in changes:
        context = ipb.ConfChangeContext.FromString(change.context)
        member = expected.members[change.node_id]
        assert (context.member.name, list(context.member.peerURLs)) == (member.name, list(member.peer_urls))


def test_ids_are_the_ones_etcd_restore_derives(snapshot: Path, tmp_path: Path) -> None:
    url = "http://127.0.0.93:23802"
    opts = RestoreOptions(name="e1", data_dir=str(tmp_path / "e1"), initial_cluster=f"e1={url}",
                          initial_advertise_peer_urls=url)
    done = restore(snapshot, opts)
    assert (done.member_id, done.cluster_id) == (ETCD_MEMBER_ID, ETCD_CLUSTER_ID)


def test_every_member_restored_alike_agrees_on_the_cluster(snapshot: Path, tmp_path: Path) -> None:
    restored = [restore(snapshot, options(tmp_path, name)) for name in ("m1", "m2", "m3")]
    assert len({r.cluster_id for r in restored}) == 1
    assert len({r.member_id for r in restored}) == 3


def test_separate_wal_dir(snapshot: Path, tmp_path: Path) -> None:
    wal = tmp_path / "wals" / "m2"
    done = restore(snapshot, options(tmp_path, wal_dir=str(wal)))
    assert done.wal_dir == wal and RaftDisk.exists(wal)
    assert not (done.data_dir / "member" / "wal").exists()


def tree(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


def test_refusals_write_nothing(snapshot: Path, tmp_path: Path) -> None:
    before = tree(tmp_path)
    corrupt = tmp_path / "corrupt.db"
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 1
    corrupt.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(snapshot.read_bytes()[:-100])
    before = tree(tmp_path)
    refusals: list[tuple[Path, RestoreOptions, type[Exception], str]] = [
        (corrupt, options(tmp_path), SnapshotError, "is corrupt"),
        (truncated, options(tmp_path), SnapshotError, "no SHA-256 trailer"),
        (snapshot, options(tmp_path, name="m9"), ConfigError,
         'couldn\'t find local name "m9" in the initial cluster configuration'),
        (snapshot, options(tmp_path, initial_advertise_peer_urls="http://10.0.0.9:2380"), ConfigError,
         "--initial-cluster has m2=http://10.0.0.2:2380 but missing from --initial-advertise-peer-urls"),
        (snapshot, options(tmp_path, initial_cluster="m2=10.0.0.2"), RestoreError, "URL"),
        (tmp_path / "absent.db", options(tmp_path), SnapshotError, "cannot read snapshot"),
    ]
    for path, opts, error, text in refusals:
        with pytest.raises(error, match=text):
            restore(path, opts)
        assert tree(tmp_path) == before, text


def test_existing_targets_are_refused(snapshot: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep").write_text("mine")
    for opts, text in ((options(tmp_path, data_dir=str(taken)), f'data-dir "{taken}" exists'),
                       (options(tmp_path, wal_dir=str(taken)), f'wal-dir "{taken}" exists')):
        with pytest.raises(RestoreError, match=text):
            restore(snapshot, opts)
    assert [p.name for p in taken.iterdir()] == ["keep"]
    assert not (tmp_path / "restored").exists()


def test_raw_backend_restores_with_skip_hash_check(source: MVCCStore, tmp_path: Path) -> None:
    raw = tmp_path / "db-copy"
    source.backend.snapshot(raw)
    with pytest.raises(SnapshotError, match="--skip-hash-check"):
        restore(raw, options(tmp_path))
    done = restore(raw, options(tmp_path, skip_hash_check=True))
    store = MVCCStore.open(done.snap_dir / "db")
    try:
        assert store.current_revision == source.current_revision
    finally:
        store.close()


def test_restore_command(snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "cli" / "m1.etcd"
    argv = ["restore", str(snapshot), f"--data-dir={data_dir}", "--name", "m1", "--initial-cluster", CLUSTER,
            "--initial-cluster-token=restored-1", "--initial-advertise-peer-urls=http://10.0.0.1:2380"]
    assert command.main(argv, {}) == 0
    assert RaftDisk.exists(data_dir / "member" / "wal") and (data_dir / "member" / "snap" / "db").is_file()
    assert "restored snapshot" in capsys.readouterr().err
    assert command.main(argv, {}) == 1
    assert capsys.readouterr().err == f'Error: data-dir "{data_dir}" exists\n'
    assert not any(name.startswith(".") for name in os.listdir(data_dir.parent))  # no staging left

"""RaftDisk: WAL + snapshot files recover together, including a damaged newest snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from petcd.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from petcd.storage.disk import RaftDisk, snapshot_of
from petcd.storage.errors import WalCorrupted
from petcd.storage.kv import PutRequest
from petcd.storage.mvcc import MVCCStore
from petcd.storage.wal import WalMetadata

META = WalMetadata(node_id=7, cluster_id=9)
SMALL = 2048


def entries(first: int, last: int) -> list[Entry]:
    return [Entry(term=1, index=i, data=b"e%d" % i + b"." * 60) for i in range(first, last + 1)]


def snapshot(index: int, data: bytes = b"state") -> Snapshot:
    md = SnapshotMetadata(index=index, term=1, conf_state=ConfState(voters=(7,)))
    return Snapshot(metadata=md, data=data)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "member" / "wal", tmp_path / "member" / "snap"


def test_new_member_recovers_its_log(dirs: tuple[Path, Path]) -> None:
    wal_dir, snap_dir = dirs
    assert not RaftDisk.exists(wal_dir)
    disk = RaftDisk.create(wal_dir, snap_dir, META)
    disk.save(HardState(term=1, vote=7, commit=3), entries(1, 3), must_sync=True)
    disk.close()
    assert RaftDisk.exists(wal_dir)
    disk, rec = RaftDisk.open(wal_dir, snap_dir)
    disk.close()
    assert (rec.metadata, rec.hard_state, rec.snapshot) == (META, HardState(1, 7, 3), None)
    assert rec.entries == entries(1, 3)


def test_snapshot_compacts_the_log_and_recovery_starts_there(dirs: tuple[Path, Path]) -> None:
    wal_dir, snap_dir = dirs
    disk = RaftDisk.create(wal_dir, snap_dir, META, segment_size=SMALL)
    for i in range(1, 101):
        disk.save(HardState(term=1, commit=i), entries(i, i), must_sync=False)
    segments_before = len(disk.wal.segment_paths)
    disk.save_snapshot(snapshot(80))
    assert len(disk.wal.segment_paths) < segments_before
    disk.save(HardState(term=1, commit=101), entries(101, 101), must_sync=True)
    disk.close()
    disk, rec = RaftDisk.open(wal_dir, snap_dir, segment_size=SMALL)
    disk.close()
    assert rec.snapshot == snapshot(80)
    assert [e.index for e in rec.entries] == list(range(81, 102))
    assert rec.hard_state.commit == 101


def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one(dirs: tuple[Path, Path]) -> None:
    wal_dir, snap_dir = dirs
    disk = RaftDisk.create(wal_dir, snap_dir, META)  # one big segment: nothing is released
    disk.save(None, entries(1, 30), must_sync=True)
    disk.save_snapshot(snapshot(10, b"ten"))
    disk.save_snapshot(snapshot(20, b"twenty"))
    disk.close()
    newest = sorted(snap_dir.glob("*.snap"))[-1]
    newest.write_bytes(newest.read_bytes()[:-1])
    disk, rec = RaftDisk.open(wal_dir, snap_dir)
    disk.close()
    assert rec.snapshot is not None and rec.snapshot.data == b"ten"
    assert [e.index for e in rec.entries] == list(range(11, 31))


def test_fallback_without_the_entries_it_needs_is_an_error(dirs: tuple[Path, Path]) -> None:
    wal_dir, snap_dir = dirs
    disk = RaftDisk.create(wal_dir, snap_dir, META, segment_size=SMALL)
    for i in range(1, 101):
        disk.save(None, entries(i, i), must_sync=False)
        if i in (30, 90):
            disk.save_snapshot(snapshot(i))
    disk.close()
    newest = sorted(snap_dir.glob("*.snap"))[-1]
    newest.write_bytes(b"garbage")
    with pytest.raises(WalCorrupted):
        RaftDisk.open(wal_dir, snap_dir, segment_size=SMALL)


def test_a_follower_installs_the_leaders_snapshot(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    leader = MVCCStore.open(tmp_path / "leader" / "db", sync=False)
    follower = MVCCStore.open(tmp_path / "follower" / "db", sync=False)
    try:
        with leader.batch() as b:
            for index in range(1, 6):
                b.put(PutRequest(b"k%d" % index, b"v"))
                b.set_applied(index, 2)
        snap = snapshot_of(leader, ConfState(voters=(1, 2, 3)))
        assert (snap.metadata.index, snap.metadata.term) == (5, 2)
        wal_dir, snap_dir = dirs
        disk = RaftDisk.create(wal_dir, snap_dir, META)
        disk.save_snapshot(snap)
        disk.close()
        follower.restore_snapshot(snap.data)
        assert follower.consistent_index == 5
        assert follower.hash_kv() == leader.hash_kv()
        disk, rec = RaftDisk.open(wal_dir, snap_dir)
        disk.close()
        assert rec.snapshot == snap and rec.entries == []
    finally:
        leader.close()
        follower.close()

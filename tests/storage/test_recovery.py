"""Crash recovery of WAL + snapshots + backend together, the way the server shell drives them:
entries are made durable in the WAL first and applied later; after a crash at any point the member
replays the WAL after its snapshot, and the consistent index makes every entry count exactly once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from petcd.raft.types import ConfState, Entry, HardState
from petcd.storage.disk import RaftDisk, snapshot_of
from petcd.storage.kv import PutRequest, RangeRequest
from petcd.storage.mvcc import MVCCStore
from petcd.storage.wal import WalMetadata

META = WalMetadata(node_id=1, cluster_id=2)


def apply(store: MVCCStore, entries: list[Entry]) -> None:
    with store.batch() as b:
        for e in entries:
            if b.applies(e.index):
                key, _, value = e.data.partition(b"=")
                b.put(PutRequest(key, value))
                b.set_applied(e.index, e.term)


def member_paths(root: Path) -> tuple[Path, Path, Path]:
    return root / "member" / "wal", root / "member" / "snap", root / "member" / "snap" / "db"


@pytest.mark.parametrize("seed", range(8))
def test_replay_after_a_crash_applies_every_durable_entry_once(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    wal_dir, snap_dir, db = member_paths(tmp_path)
    disk = RaftDisk.create(wal_dir, snap_dir, META, segment_size=4096)
    store = MVCCStore.open(db, sync=False)
    durable: list[Entry] = []
    pending: list[Entry] = []
    index = 0
    for _ in range(rng.randint(5, 40)):
        batch = [Entry(term=1, index=index + i, data=b"k%d=%d" % (rng.randrange(10), i)) for i in (1, 2, 3)]
        index += len(batch)
        disk.save(HardState(term=1, vote=1, commit=index), batch, must_sync=True)
        durable += batch
        pending += batch
        if rng.random() < 0.6:  # the apply loop catches up now and then
            cut = rng.randint(0, len(pending))
            apply(store, pending[:cut])
            pending = pending[cut:]
        if rng.random() < 0.15 and store.consistent_index:
            disk.save_snapshot(snapshot_of(store, ConfState(voters=(1,))))
    # crash: some durable entries are not applied (the process is gone: its WAL lock too)
    disk.close()
    store.close()

    disk, rec = RaftDisk.open(wal_dir, snap_dir, segment_size=4096)
    store = MVCCStore.open(db, sync=False)
    try:
        first = rec.snapshot.metadata.index if rec.snapshot else 0
        assert [e.index for e in rec.entries] == list(range(first + 1, index + 1))
        assert store.consistent_index >= first
        apply(store, rec.entries)
        assert store.consistent_index == index
        assert store.current_revision == index + 1  # one revision per entry, none twice
        expected: dict[bytes, bytes] = {}
        for e in durable:
            key, _, value = e.data.partition(b"=")
            expected[key] = value
        got = {kv.key: kv.value for kv in store.range(RangeRequest(b"\x00", b"\x00")).kvs}
        assert got == expected
    finally:
        store.close()
        disk.close()

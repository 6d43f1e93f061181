"""Snapshot files: round trip, newest valid one wins, broken ones are set aside."""

from __future__ import annotations

from pathlib import Path

import pytest
from petcd.raft.types import ConfState, Snapshot, SnapshotMetadata
from petcd.storage.errors import SnapshotCorrupted
from petcd.storage.kv import PutRequest, RangeRequest
from petcd.storage.mvcc import MVCCStore
from petcd.storage.snap import Snapshotter, decode_snapshot, encode_snapshot


def snapshot(index: int, term: int, data: bytes = b"state") -> Snapshot:
    cs = ConfState(voters=(1, 2, 0xFFFFFFFFFFFFFFFF), learners=(4,))
    return Snapshot(metadata=SnapshotMetadata(index=index, term=term, conf_state=cs), data=data)


def test_round_trip_with_binary_data() -> None:
    snap = snapshot(42, 7, bytes(range(256)) * 10)
    assert decode_snapshot(encode_snapshot(snap)) == snap


@pytest.mark.parametrize("position", [0, 20, -1, -5])
def test_any_flipped_byte_is_detected(position: int) -> None:
    raw = bytearray(encode_snapshot(snapshot(1, 1)))
    raw[position] ^= 0x40
    with pytest.raises(SnapshotCorrupted):
        decode_snapshot(bytes(raw))


def test_newest_valid_snapshot_is_loaded(tmp_path: Path) -> None:
    s = Snapshotter(tmp_path)
    s.save(snapshot(10, 1, b"ten"))
    s.save(snapshot(30, 2, b"thirty"))
    newest = s.save(snapshot(50, 2, b"fifty"))
    loaded = s.load_newest()
    assert loaded is not None and loaded.data == b"fifty"
    newest.write_bytes(newest.read_bytes()[:-3])  # a damaged file
    loaded = s.load_newest()
    assert loaded is not None and loaded.metadata.index == 30
    assert (tmp_path / (newest.name + ".broken")).exists()
    only_wal_marked = s.load_newest(usable={(10, 1), (30, 1)})
    assert only_wal_marked is not None and only_wal_marked.data == b"ten"
    s.purge(keep=1)
    assert [p.name for p in s.names()] == ["0000000000000002-000000000000001e.snap"]


def test_empty_directory_has_no_snapshot(tmp_path: Path) -> None:
    assert Snapshotter(tmp_path / "snap").load_newest() is None


def test_a_backend_copy_travels_in_a_snapshot(tmp_path: Path) -> None:
    src = MVCCStore.open(tmp_path / "a" / "db", sync=False)
    dst = MVCCStore.open(tmp_path / "b" / "db", sync=False)
    try:
        with src.batch() as b:
            b.put(PutRequest(b"k", b"v"))
            b.set_applied(9, 3)
        path = Snapshotter(tmp_path / "snap").save(snapshot(9, 3, src.backend.snapshot_bytes()))
        loaded = decode_snapshot(path.read_bytes())
        dst.restore_snapshot(loaded.data)
        assert dst.consistent_index == 9
        assert dst.range(RangeRequest(b"k")) == src.range(RangeRequest(b"k"))
    finally:
        src.close()
        dst.close()

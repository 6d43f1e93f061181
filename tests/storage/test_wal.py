"""WAL: round trips, segment rotation, snapshot markers, torn tails and corruption."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from petcd.raft.types import Entry, EntryType, HardState
from petcd.storage import wal as walmod
from petcd.storage.errors import WalCorrupted
from petcd.storage.wal import WAL, WalMetadata, WalSnapshot

META = WalMetadata(node_id=0x8E9E05C52164694D, cluster_id=0xCDF818194E3A8C32)
SMALL = 4096  # a small segment size so that tests rotate segments


def entries(first: int, last: int, term: int = 1, size: int = 10) -> list[Entry]:
    return [Entry(term=term, index=i, data=b"d%d-" % i + b"x" * size) for i in range(first, last + 1)]


def test_create_and_reopen_round_trip(tmp_path: Path) -> None:
    w = WAL.create(tmp_path / "wal", META)
    w.save(HardState(term=1, vote=3, commit=0), entries(1, 3), sync=True)
    conf = Entry(term=2, index=4, type=EntryType.CONF_CHANGE, data=b"\x00\x01")
    w.save(HardState(term=2, vote=3, commit=4), [conf], sync=True)
    w.close()
    w, state = WAL.open(tmp_path / "wal")
    assert state.metadata == META
    assert state.hard_state == HardState(term=2, vote=3, commit=4)
    assert state.entries == [*entries(1, 3), conf]
    assert state.snapshot == WalSnapshot(0, 0)
    # appending after a reopen continues the CRC chain
    w.save(None, entries(5, 6, term=2), sync=True)
    w.close()
    _, state = WAL.open(tmp_path / "wal")
    assert [e.index for e in state.entries] == [1, 2, 3, 4, 5, 6]


def test_create_refuses_an_existing_wal(tmp_path: Path) -> None:
    WAL.create(tmp_path, META).close()
    assert walmod.exists(tmp_path)
    with pytest.raises(FileExistsError):
        WAL.create(tmp_path, META)


def test_rotation_and_release(tmp_path: Path) -> None:
    w = WAL.create(tmp_path, META, segment_size=SMALL)
    for i in range(1, 201):
        w.save(HardState(term=1, commit=i - 1), entries(i, i, size=100), sync=False)
    w.sync()
    assert len(w.segment_paths) > 3
    w.close()
    w, state = WAL.open(tmp_path, segment_size=SMALL)
    assert [e.index for e in state.entries] == list(range(1, 201))
    assert state.hard_state.commit == 199
    w.save_snapshot(150, 1)
    w.release_to(150)
    first_kept = w.segment_paths[0]
    assert int(first_kept.name.split("-")[1].split(".")[0], 16) <= 150
    w.close()
    _, state = WAL.open(tmp_path, segment_size=SMALL)
    assert state.snapshot == WalSnapshot(150, 1)
    assert [e.index for e in state.entries] == list(range(151, 201))


def test_entries_after_a_chosen_snapshot_marker(tmp_path: Path) -> None:
    w = WAL.create(tmp_path, META)
    w.save(HardState(term=1, commit=5), entries(1, 5), sync=True)
    w.save_snapshot(3, 1)
    w.save(None, entries(6, 8), sync=True)
    w.save_snapshot(7, 1)
    w.close()
    w, state = WAL.open(tmp_path)
    w.close()
    assert state.snapshot == WalSnapshot(7, 1) and [e.index for e in state.entries] == [8]
    assert state.snapshots == [WalSnapshot(0, 0), WalSnapshot(3, 1), WalSnapshot(7, 1)]
    _, older = WAL.open(tmp_path, snapshot_index=3)
    assert [e.index for e in older.entries] == [4, 5, 6, 7, 8]


def test_a_later_entry_replaces_the_tail(tmp_path: Path) -> None:
    w = WAL.create(tmp_path, META)
    w.save(None, entries(1, 5, term=1), sync=True)
    w.save(None, entries(3, 4, term=2), sync=True)  # a new leader overwrote 3..5
    w.close()
    _, state = WAL.open(tmp_path)
    assert [(e.index, e.term) for e in state.entries] == [(1, 1), (2, 1), (3, 2), (4, 2)]


def _only_segment(directory: Path) -> Path:
    (seg,) = sorted(directory.glob("*.wal"))
    return seg


def _data_end(path: Path) -> int:
    data = path.read_bytes()
    return len(data.rstrip(b"\x00"))


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_torn_tail_is_truncated_and_writing_resumes(tmp_path: Path, cut: int) -> None:
    w = WAL.create(tmp_path, META)
    w.save(HardState(term=1, commit=2), entries(1, 2), sync=True)
    w.save(None, entries(3, 3, size=50), sync=True)
    w.close()
    seg = _only_segment(tmp_path)
    data = bytearray(seg.read_bytes())
    end = _data_end(seg)
    record_len = 9 + 17 + len(b"d3-") + 50
    # keep only `cut` bytes of the last record (the rest never reached the disk)
    data[end - record_len + cut : end] = bytes(record_len - cut)
    seg.write_bytes(bytes(data))
    w, state = WAL.open(tmp_path)
    assert [e.index for e in state.entries] == [1, 2]
    w.save(None, entries(3, 4), sync=True)
    w.close()
    _, state = WAL.open(tmp_path)
    assert [e.index for e in state.entries] == [1, 2, 3, 4]


def test_torn_tail_of_an_unpreallocated_file(tmp_path: Path) -> None:
    w = WAL.create(tmp_path, META)
    w.save(None, entries(1, 3), sync=True)
    w.close()
    seg = _only_segment(tmp_path)
    end = _data_end(seg)
    with open(seg, "r+b") as f:
        f.truncate(end - 4)  # the file ends inside the last record
    _, state = WAL.open(tmp_path)
    assert [e.index for e in state.entries] == [1, 2]


def test_a_corrupt_record_in_the_middle_names_file_and_offset(tmp_path: Path) -> None:
    w = WAL.create(tmp_path, META)
    w.save(None, entries(1, 5), sync=True)
    w.close()
    seg = _only_segment(tmp_path)
    data = bytearray(seg.read_bytes())
    target = data.find(b"d2-")  # the payload of entry 2, in the middle of the log
    data[target] ^= 0x01
    seg.write_bytes(bytes(data))
    with pytest.raises(WalCorrupted) as err:
        WAL.open(tmp_path)
    assert err.value.path == str(seg)
    assert err.value.offset == target - 9 - 17
    assert str(seg) in str(err.value) and f"offset {err.value.offset}" in str(err.value)


def test_corruption_in_an_older_segment_is_fatal(tmp_path: Path) -> None:
    w = WAL.create(tmp_path, META, segment_size=SMALL)
    for i in range(1, 101):
        w.save(None, entries(i, i, size=100), sync=False)
    w.close()
    first = sorted(tmp_path.glob("*.wal"))[0]
    data = bytearray(first.read_bytes())
    pos = _data_end(first) - 5  # the last record of a full (not last) segment
    data[pos] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(WalCorrupted) as err:
        WAL.open(tmp_path, segment_size=SMALL)
    assert err.value.path == str(first)


@settings(max_examples=30, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.binary(max_size=300), min_size=0, max_size=6),
        min_size=1,
        max_size=12,
    ),
    cut=st.integers(min_value=1, max_value=400),
)
def test_any_torn_write_keeps_every_synced_batch(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[bytes]], cut: int
) -> None:
    """Whatever prefix of the last (unsynced) write reached the disk, all earlier batches survive."""
    d = tmp_path_factory.mktemp("wal")
    w = WAL.create(d, META, segment_size=SMALL)
    index = 0
    for batch in batches:
        es = [Entry(term=1, index=index + 1 + i, data=data) for i, data in enumerate(batch)]
        index += len(es)
        w.save(HardState(term=1, commit=index), es, sync=True)
    synced_index = index
    last = [Entry(term=1, index=index + 1, data=b"L" * 200), Entry(term=1, index=index + 2, data=b"M" * 200)]
    w.save(None, last, sync=True)
    w.close()
    seg = sorted(d.glob("*.wal"))[-1]
    data = bytearray(seg.read_bytes())
    end = _data_end(seg)
    written = sum(9 + 17 + len(e.data) for e in last)
    start = end - written
    if start > 0:
        keep = min(cut, written - 1)
        data[start + keep : end] = bytes(end - start - keep)
        seg.write_bytes(bytes(data))
    _, state = WAL.open(d, segment_size=SMALL)
    got = [e.index for e in state.entries]
    assert got[:synced_index] == list(range(1, synced_index + 1))
    assert len(got) <= synced_index + 2


def test_a_wal_in_use_cannot_be_opened_twice(tmp_path: Path) -> None:
    w = WAL.create(tmp_path, META)
    with pytest.raises(walmod.WalLocked, match="in use by another process"):
        WAL.open(tmp_path)
    w.close()
    WAL.open(tmp_path)[0].close()

"""MemoryStorage and the raft log: compaction, snapshots, truncation, size limits, conf-change encoding."""

from __future__ import annotations

import pytest
from petcd.raft.log import RaftLog
from petcd.raft.storage import CompactedError, MemoryStorage, SnapshotOutOfDateError, UnavailableError
from petcd.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    Snapshot,
    SnapshotMetadata,
    decode_conf_change,
    encode_conf_change,
)


def storage_with(terms: list[int]) -> MemoryStorage:
    storage = MemoryStorage()
    storage.append([Entry(term, index) for index, term in enumerate(terms, start=1)])
    return storage


def test_entries_terms_and_bounds() -> None:
    storage = storage_with([1, 1, 2, 3])
    assert (storage.first_index(), storage.last_index()) == (1, 4)
    assert [e.index for e in storage.entries(2, 5)] == [2, 3, 4]
    assert storage.term(3) == 2
    with pytest.raises(UnavailableError):
        storage.term(5)


def test_compaction_keeps_the_term_of_the_last_compacted_entry() -> None:
    storage = storage_with([1, 1, 2, 3])
    storage.create_snapshot(3, ConfState(voters=(1,)), b"state")
    storage.compact(3)
    assert storage.first_index() == 4
    assert storage.term(3) == 2  # the dummy entry answers for the snapshot's index
    with pytest.raises(CompactedError):
        storage.entries(3, 5)
    with pytest.raises(CompactedError):
        storage.compact(2)


def test_append_replaces_a_conflicting_suffix() -> None:
    storage = storage_with([1, 1, 1, 1])
    storage.append([Entry(2, 3), Entry(2, 4), Entry(2, 5)])
    assert [(e.index, e.term) for e in storage.entries(1, 6)] == [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2)]
    with pytest.raises(ValueError, match="missing log entry"):
        storage.append([Entry(2, 9)])


def test_apply_snapshot_replaces_the_log_and_refuses_older_ones() -> None:
    storage = storage_with([1, 1])
    snapshot = Snapshot(SnapshotMetadata(10, 3, ConfState(voters=(1, 2))), b"x")
    storage.apply_snapshot(snapshot)
    assert (storage.first_index(), storage.last_index(), storage.term(10)) == (11, 10, 3)
    assert storage.initial_state()[1] == ConfState(voters=(1, 2))
    with pytest.raises(SnapshotOutOfDateError):
        storage.apply_snapshot(Snapshot(SnapshotMetadata(9, 3, ConfState(voters=(1,)))))


def test_entries_are_limited_by_size_but_never_to_nothing() -> None:
    storage = MemoryStorage()
    storage.append([Entry(1, i, data=b"x" * 100) for i in range(1, 6)])
    assert len(storage.entries(1, 6, max_size=1)) == 1
    assert len(storage.entries(1, 6, max_size=250)) == 2
    assert len(storage.entries(1, 6)) == 5


def test_log_reads_across_stable_and_unstable_parts_and_backs_off_by_term() -> None:
    log = RaftLog(storage_with([1, 1, 2]))
    log.append([Entry(3, 4), Entry(3, 5), Entry(5, 6)])
    assert [e.index for e in log.slice(2, 7, None)] == [2, 3, 4, 5, 6]
    assert log.last_term() == 5
    # Our entries of terms above 3 are skipped: the last index with a term <= 3 is 5.
    assert log.find_conflict_by_term(6, 3) == (5, 3)
    assert log.find_conflict_by_term(6, 1) == (2, 1)
    assert log.is_up_to_date(6, 5) and not log.is_up_to_date(9, 4)


def test_committed_entries_are_not_rewritten() -> None:
    log = RaftLog(storage_with([1, 1, 1]))
    log.commit_to(3)
    with pytest.raises(AssertionError, match="conflicts with committed"):
        log.maybe_append(1, 1, 3, (Entry(2, 2),))


def test_conf_change_encoding_is_raftpb_wire_format() -> None:
    change = ConfChange(ConfChangeType.ADD_LEARNER_NODE, 300, b"ctx")
    data = encode_conf_change(change)
    # raftpb.ConfChange: 1 ID=0, 2 Type=3, 3 NodeID=300 (varint ac 02), 4 Context="ctx"
    assert data == bytes([0x08, 0x00, 0x10, 0x03, 0x18, 0xAC, 0x02, 0x22, 0x03]) + b"ctx"
    assert decode_conf_change(data) == change
    with pytest.raises(ValueError):
        decode_conf_change(data[:-1])

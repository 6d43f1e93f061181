"""The stable log the Raft core reads: `MemoryStorage`, modelled on etcd's raft.MemoryStorage.

The shell writes it (after its own WAL fsync) and the core only reads it. `entries[0]` is a dummy entry
holding the index and term of the last compacted entry (the snapshot's), so `term(first_index - 1)` works.

A new cluster's members start with `MemoryStorage()` and call `RawNode.bootstrap(voters)`, which writes the
initial configuration as conf-change entries 1..n, as etcd does; a member joining later starts with
`MemoryStorage()` and learns the configuration by replaying those entries (or from a snapshot).
`MemoryStorage(conf_state)` instead records a configuration as of index 0 that is in no log entry: a
member added later never learns it unless it first receives a snapshot, so use it only for clusters
whose membership never grows (or in tests).
"""

from __future__ import annotations

from collections.abc import Sequence

from petcd.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata


class StorageError(Exception):
    """Base of the errors `MemoryStorage` raises to the core."""


class CompactedError(StorageError):
    """The requested index is older than the last snapshot (etcd's ErrCompacted)."""

    def __init__(self) -> None:
        super().__init__("requested index is unavailable due to compaction")


class UnavailableError(StorageError):
    """The requested index is newer than the last entry (etcd's ErrUnavailable)."""

    def __init__(self) -> None:
        super().__init__("requested entry at index is unavailable")


class SnapshotOutOfDateError(StorageError):
    """The snapshot is older than the one already held (etcd's ErrSnapOutOfDate)."""

    def __init__(self) -> None:
        super().__init__("requested index is older than the existing snapshot")


ENTRY_OVERHEAD = 12  # rough protobuf framing cost of an entry, counted against max_size_per_msg


def entry_size(entry: Entry) -> int:
    return len(entry.data) + ENTRY_OVERHEAD


def limit_size(entries: list[Entry], max_size: int | None) -> list[Entry]:
    """The longest prefix within `max_size` bytes, but always at least one entry (so progress is made)."""
    if max_size is None or len(entries) <= 1:
        return entries
    total = entry_size(entries[0])
    for count in range(1, len(entries)):
        total += entry_size(entries[count])
        if total > max_size:
            return entries[:count]
    return entries


class MemoryStorage:
    def __init__(self, conf_state: ConfState | None = None) -> None:
        self._hard_state = HardState()
        self._snapshot = Snapshot(SnapshotMetadata(0, 0, conf_state or ConfState()))
        self._entries: list[Entry] = [Entry(0, 0)]

    # --- read by the core

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.metadata.conf_state

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        offset = self._entries[0].index
        if lo <= offset:
            raise CompactedError()
        if hi > self.last_index() + 1:
            raise ValueError(f"entries' hi({hi}) is out of bound lastindex({self.last_index()})")
        if len(self._entries) == 1:
            raise UnavailableError()
        return limit_size(self._entries[lo - offset : hi - offset], max_size)

    def term(self, index: int) -> int:
        offset = self._entries[0].index
        if index < offset:
            raise CompactedError()
        if index - offset >= len(self._entries):
            raise UnavailableError()
        return self._entries[index - offset].term

    def first_index(self) -> int:
        return self._entries[0].index + 1

    def last_index(self) -> int:
        return self._entries[0].index + len(self._entries) - 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # --- written by the shell

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the whole log by `snapshot` (a follower installing the leader's snapshot)."""
        if snapshot.metadata.index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError()
        self._snapshot = snapshot
        self._entries = [Entry(snapshot.metadata.term, snapshot.metadata.index)]

    def create_snapshot(self, index: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        """Record a snapshot of the state machine as of `index` (which must be applied and in the log)."""
        if index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError()
        if index > self.last_index():
            raise ValueError(f"snapshot {index} is out of bound lastindex({self.last_index()})")
        term = self._entries[index - self._entries[0].index].term
        conf = conf_state if conf_state is not None else self._snapshot.metadata.conf_state
        self._snapshot = Snapshot(SnapshotMetadata(index, term, conf), data)
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Discard the entries before `compact_index`; a snapshot covering them must exist already."""
        offset = self._entries[0].index
        if compact_index <= offset:
            raise CompactedError()
        if compact_index > self.last_index():
            raise ValueError(f"compact {compact_index} is out of bound lastindex({self.last_index()})")
        keep = self._entries[compact_index - offset :]
        self._entries = [Entry(keep[0].term, keep[0].index), *keep[1:]]

    def append(self, entries: Sequence[Entry]) -> None:
        """Append persisted entries, replacing any conflicting suffix."""
        if not entries:
            return
        first = self.first_index()
        last = entries[0].index + len(entries) - 1
        if last < first:
            return  # everything is already compacted
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._entries[0].index
        if len(self._entries) > offset:
            self._entries = self._entries[:offset]
            self._entries.extend(entries)
        elif len(self._entries) == offset:
            self._entries.extend(entries)
        else:
            raise ValueError(
                f"missing log entry [last: {self.last_index()}, append at: {entries[0].index}]"
            )

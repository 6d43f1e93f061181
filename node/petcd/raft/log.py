"""The Raft log: the stable part in `MemoryStorage` plus the unstable tail not yet persisted.

`Unstable` holds entries (and possibly a snapshot) handed to the shell in a `Ready` but not yet
acknowledged by `advance`; `offset_in_progress` marks what a `Ready` has already handed out so a second
`ready()` before `advance()` does not hand it out again (etcd's log_unstable.go).
"""

from __future__ import annotations

from petcd.raft.storage import CompactedError, MemoryStorage, StorageError, limit_size
from petcd.raft.types import Entry, Snapshot


class Unstable:
    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset  # index of entries[0]
        self.offset_in_progress = offset
        self.snapshot_in_progress = False

    def maybe_first_index(self) -> int | None:
        return self.snapshot.metadata.index + 1 if self.snapshot is not None else None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        return self.snapshot.metadata.index if self.snapshot is not None else None

    def maybe_term(self, index: int) -> int | None:
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == index:
                return self.snapshot.metadata.term
            return None
        position = index - self.offset
        return self.entries[position].term if position < len(self.entries) else None

    def next_entries(self) -> list[Entry]:
        """Entries not yet handed to the shell."""
        return self.entries[self.offset_in_progress - self.offset :]

    def next_snapshot(self) -> Snapshot | None:
        return None if self.snapshot is None or self.snapshot_in_progress else self.snapshot

    def accept_in_progress(self) -> None:
        if self.entries:
            self.offset_in_progress = self.offset + len(self.entries)
        if self.snapshot is not None:
            self.snapshot_in_progress = True

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to (index, term) are persisted; a term mismatch means they were replaced meanwhile."""
        if self.maybe_term(index) != term or index < self.offset:
            return
        del self.entries[: index + 1 - self.offset]
        self.offset = index + 1
        self.offset_in_progress = max(self.offset_in_progress, self.offset)

    def stable_snap_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == index:
            self.snapshot = None
            self.snapshot_in_progress = False

    def restore(self, snapshot: Snapshot) -> None:
        self.offset = self.offset_in_progress = snapshot.metadata.index + 1
        self.entries = []
        self.snapshot = snapshot
        self.snapshot_in_progress = False

    def truncate_and_append(self, entries: list[Entry]) -> None:
        start = entries[0].index
        if start == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif start <= self.offset:
            self.offset = start  # the whole unstable tail is replaced
            self.entries = list(entries)
        else:
            self.entries = self.entries[: start - self.offset] + entries
        self.offset_in_progress = min(self.offset_in_progress, start)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        return self.entries[lo - self.offset : hi - self.offset]


class RaftLog:
    def __init__(self, storage: MemoryStorage, max_next_ents_size: int | None = None) -> None:
        self.storage = storage
        self.unstable = Unstable(storage.last_index() + 1)
        self.committed = storage.first_index() - 1  # the snapshot is committed by definition
        self.applying = self.committed  # highest index handed to the shell to apply
        self.applied = self.committed
        self.max_next_ents_size = max_next_ents_size

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, len(unstable)={len(self.unstable.entries)})"
        )

    # --- indexes and terms

    def first_index(self) -> int:
        index = self.unstable.maybe_first_index()
        return index if index is not None else self.storage.first_index()

    def last_index(self) -> int:
        index = self.unstable.maybe_last_index()
        return index if index is not None else self.storage.last_index()

    def term(self, index: int) -> int:
        """The term at `index`; 0 beyond the log; CompactedError/UnavailableError from storage."""
        if index < self.first_index() - 1 or index > self.last_index():
            if index < self.first_index() - 1:
                raise CompactedError()
            return 0
        term = self.unstable.maybe_term(index)
        if term is not None:
            return term
        return self.storage.term(index)

    def zero_term_on_compacted(self, index: int) -> int:
        try:
            return self.term(index)
        except StorageError:
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except StorageError:
            return False

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Is a log ending at (last_index, term) at least as up to date as ours (Raft §5.4.1)?"""
        our_term = self.last_term()
        return term > our_term or (term == our_term and last_index >= self.last_index())

    # --- appending

    def maybe_append(
        self, index: int, log_term: int, committed: int, entries: tuple[Entry, ...]
    ) -> int | None:
        """Append after (index, log_term) if our log has that entry; the new last index, or None."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise AssertionError(f"entry {conflict} conflicts with committed entry "
                                     f"[committed({self.committed})]")
            self.append(list(entries[conflict - index - 1 :]))
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, entries: list[Entry]) -> int:
        if not entries:
            return self.last_index()
        if entries[0].index - 1 < self.committed:
            raise AssertionError(f"after({entries[0].index - 1}) is out of range "
                                 f"[committed({self.committed})]")
        self.unstable.truncate_and_append(entries)
        return self.last_index()

    def find_conflict(self, entries: tuple[Entry, ...]) -> int:
        """The index of the first entry whose term differs from ours (or is new); 0 if all match."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The last index <= `index` whose term is <= `term`, and that term (the fast back-off hint)."""
        while index > 0:
            try:
                our_term = self.term(index)
            except StorageError:
                return index, 0
            if our_term <= term:
                return index, our_term
            index -= 1
        return 0, 0

    # --- reading

    def entries(self, lo: int, max_size: int | None) -> list[Entry]:
        if lo > self.last_index():
            return []
        return self.slice(lo, self.last_index() + 1, max_size)

    def slice(self, lo: int, hi: int, max_size: int | None) -> list[Entry]:
        if lo < self.first_index():
            raise CompactedError()
        if hi > self.last_index() + 1:
            raise ValueError(f"slice[{lo},{hi}) out of bound [{self.first_index()},{self.last_index()}]")
        if lo == hi:
            return []
        result: list[Entry] = []
        offset = self.unstable.offset
        if lo < offset:
            result = self.storage.entries(lo, min(hi, offset), max_size)
            if len(result) < min(hi, offset) - lo:  # limited by size: stop here
                return result
        if hi > offset:
            result = result + self.unstable.slice(max(lo, offset), hi)
        return limit_size(result, max_size)

    def all_entries(self) -> list[Entry]:
        """Every entry still in the log (for tests and status)."""
        return self.entries(self.first_index(), None)

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    # --- commit and apply

    def commit_to(self, to_commit: int) -> None:
        if self.committed < to_commit:
            if self.last_index() < to_commit:
                raise AssertionError(f"tocommit({to_commit}) is out of range "
                                     f"[lastIndex({self.last_index()})]")
            self.committed = to_commit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit up to `max_index` only if that entry is of `term` (Raft §5.4.2: own-term entries only)."""
        if max_index > self.committed and self.zero_term_on_compacted(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def has_next_committed_entries(self) -> bool:
        start = max(self.applying + 1, self.first_index())
        return self.committed + 1 > start and self.unstable.snapshot is None

    def next_committed_entries(self) -> list[Entry]:
        if self.unstable.snapshot is not None:
            return []  # apply the pending snapshot first
        start = max(self.applying + 1, self.first_index())
        if self.committed + 1 <= start:
            return []
        return self.slice(start, self.committed + 1, self.max_next_ents_size)

    def accept_applying(self, index: int) -> None:
        self.applying = max(self.applying, index)

    def applied_to(self, index: int) -> None:
        if index == 0:
            return
        if self.committed < index or index < self.applied:
            raise AssertionError(f"applied({index}) is out of range [prevApplied({self.applied}), "
                                 f"committed({self.committed})]")
        self.applied = index
        self.applying = max(self.applying, index)

    def restore(self, snapshot: Snapshot) -> None:
        self.committed = snapshot.metadata.index
        self.unstable.restore(snapshot)

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snap_to(self, index: int) -> None:
        self.unstable.stable_snap_to(index)

"""A member's Raft disk state: the WAL and the snapshot files kept consistent (etcd's etcdserver storage).

`RaftDisk.create` starts a new member's WAL; `RaftDisk.open` recovers: the newest valid snapshot that
has a WAL marker, then the hard state and the entries after it. The shell's Ready loop calls `save`
(entries + hard state, fsync when must_sync) and `save_snapshot` (Ready.snapshot, or a snapshot the
member took itself to compact its log). Snapshot data is opaque here: whatever the shell puts in it.
A backend opened with sync=False must be synced (`Backend.sync`) before `save_snapshot`, because the
WAL entries up to the snapshot are released then and can no longer be replayed into it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from petcd.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from petcd.storage import wal as walfiles
from petcd.storage.errors import WalCorrupted
from petcd.storage.mvcc import MVCCStore
from petcd.storage.snap import Snapshotter
from petcd.storage.wal import WAL, WalMetadata

MAX_SNAPSHOT_FILES = 5  # etcd's --max-snapshots default


@dataclass(slots=True)
class Recovered:
    metadata: WalMetadata
    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None  # None: start from the empty log
    entries: list[Entry] = field(default_factory=list)


class RaftDisk:
    def __init__(self, wal: WAL, snapshotter: Snapshotter) -> None:
        self.wal = wal
        self.snapshotter = snapshotter

    @staticmethod
    def exists(wal_dir: str | os.PathLike[str]) -> bool:
        return walfiles.exists(wal_dir)

    @classmethod
    def create(
        cls,
        wal_dir: str | os.PathLike[str],
        snap_dir: str | os.PathLike[str],
        metadata: WalMetadata,
        *,
        segment_size: int = walfiles.SEGMENT_SIZE,
    ) -> RaftDisk:
        return cls(WAL.create(wal_dir, metadata, segment_size=segment_size), Snapshotter(snap_dir))

    @classmethod
    def open(
        cls,
        wal_dir: str | os.PathLike[str],
        snap_dir: str | os.PathLike[str],
        *,
        segment_size: int = walfiles.SEGMENT_SIZE,
    ) -> tuple[RaftDisk, Recovered]:
        snapshotter = Snapshotter(snap_dir)
        wal, state = WAL.open(wal_dir, segment_size=segment_size)
        markers = {(m.index, m.term) for m in state.snapshots}
        snapshot = snapshotter.load_newest(usable=markers)
        index = snapshot.metadata.index if snapshot is not None else 0
        if index != state.snapshot.index:  # the newest snapshot file is unusable: fall back
            wal.close()
            wal, state = WAL.open(wal_dir, snapshot_index=index, segment_size=segment_size)
            if state.entries and state.entries[0].index != index + 1:
                raise WalCorrupted(str(Path(wal_dir)), 0, f"no entries after the snapshot at {index}")
        return cls(wal, snapshotter), Recovered(state.metadata, state.hard_state, snapshot, state.entries)

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], must_sync: bool) -> None:
        self.wal.save(hard_state, entries, must_sync)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """The file first, then the WAL marker (so a marker never points at a missing file), then the
        WAL segments and snapshot files it makes obsolete are removed."""
        md: SnapshotMetadata = snapshot.metadata
        self.snapshotter.save(snapshot)
        self.wal.save_snapshot(md.index, md.term, sync=True)
        self.wal.release_to(md.index)
        self.snapshotter.purge(MAX_SNAPSHOT_FILES)

    def close(self) -> None:
        self.wal.close()


def snapshot_of(store: MVCCStore, conf_state: ConfState) -> Snapshot:
    """A Raft snapshot of the state machine as applied so far: its metadata is the store's consistent
    index and term, its data a consistent copy of the backend (call it with no write batch open)."""
    md = SnapshotMetadata(index=store.consistent_index, term=store.term, conf_state=conf_state)
    return Snapshot(metadata=md, data=store.backend.snapshot_bytes())

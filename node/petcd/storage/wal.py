"""The write-ahead log: append-only segment files of framed, CRC-chained records.

The format is described in WAL.md beside this file. The caller decides when to fsync (`sync=True`
on `save`, normally Ready.must_sync). Opening reads every segment: metadata, the last hard state and
the entries after a snapshot marker; a torn tail (a partial last record) is cut off and writing resumes
there; a bad record anywhere else raises WalCorrupted naming the file and offset.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from petcd.raft.types import Entry, EntryType, HardState
from petcd.storage.errors import WalCorrupted
from petcd.storage.fsync import fsync_path

SEGMENT_SIZE = 64 << 20  # preallocated, so an fdatasync does not also have to update the file size

# record types (0 never occurs: a zero header is the unused, preallocated tail of a segment)
METADATA = 1
HARD_STATE = 2
ENTRY = 3
SNAPSHOT = 4
CRC = 5

_HEADER = struct.Struct("<IBI")  # payload length, type, CRC-32 chained from the previous record
_SIGNED = struct.Struct("<IB")  # the part of the header the CRC covers
_METADATA = struct.Struct("<QQ")  # node ID, cluster ID
_HARD_STATE = struct.Struct("<QQQ")  # term, vote, commit
_ENTRY = struct.Struct("<QQB")  # term, index, entry type; the entry's data follows
_SNAPSHOT = struct.Struct("<QQ")  # index, term
_CRC = struct.Struct("<I")
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


@dataclass(frozen=True, slots=True)
class WalMetadata:
    node_id: int
    cluster_id: int


@dataclass(frozen=True, slots=True)
class WalSnapshot:
    index: int = 0
    term: int = 0


@dataclass(slots=True)
class WalState:
    """What a WAL holds: `entries` are those after `snapshot` (the marker the caller restores from)."""

    metadata: WalMetadata
    hard_state: HardState = field(default_factory=HardState)
    snapshot: WalSnapshot = field(default_factory=WalSnapshot)
    entries: list[Entry] = field(default_factory=list)
    snapshots: list[WalSnapshot] = field(default_factory=list)  # every marker still in the log


def segment_name(seq: int, index: int) -> str:
    return f"{seq:016x}-{index:016x}.wal"


def _segments(directory: Path) -> list[tuple[int, int, Path]]:
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1), 16), int(m.group(2), 16), p))
    return sorted(found)


def exists(directory: str | os.PathLike[str]) -> bool:
    d = Path(directory)
    return d.is_dir() and bool(_segments(d))


# ---- encoding ------------------------------------------------------------------------------------


def _record_crc(length: int, rtype: int, payload: bytes, previous: int) -> int:
    return zlib.crc32(payload, zlib.crc32(_SIGNED.pack(length, rtype), previous))


def _frame(rtype: int, payload: bytes, crc: int) -> tuple[bytes, int]:
    crc = _record_crc(len(payload), rtype, payload, crc)
    return _HEADER.pack(len(payload), rtype, crc) + payload, crc


def _all_zero(data: bytes) -> bool:
    return data.count(0) == len(data)


def encode_entry(e: Entry) -> bytes:
    return _ENTRY.pack(e.term, e.index, int(e.type)) + e.data


def decode_entry(payload: bytes) -> Entry:
    term, index, etype = _ENTRY.unpack_from(payload)
    return Entry(term=term, index=index, type=EntryType(etype), data=payload[_ENTRY.size :])


def encode_hard_state(hs: HardState) -> bytes:
    return _HARD_STATE.pack(hs.term, hs.vote, hs.commit)


def decode_hard_state(payload: bytes) -> HardState:
    term, vote, commit = _HARD_STATE.unpack(payload)
    return HardState(term=term, vote=vote, commit=commit)


# ---- reading -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Record:
    type: int
    payload: bytes


def _read_segment(path: Path, data: bytes, crc: int | None, last: bool) -> tuple[list[_Record], int, int]:
    """Records of one segment, the running CRC after them, and the offset where valid data ends.
    `crc` None: this is the first segment read (the chain starts at its CRC record)."""
    records: list[_Record] = []
    off = 0
    size = len(data)
    while off < size:
        if size - off < _HEADER.size:
            if last or _all_zero(data[off:]):
                break
            raise WalCorrupted(str(path), off, "truncated record header")
        length, rtype, stored = _HEADER.unpack_from(data, off)
        if length == 0 and rtype == 0 and stored == 0:
            break  # the zeroed, unused tail
        end = off + _HEADER.size + length
        payload = data[off + _HEADER.size : end]
        if end > size:
            if last:
                break  # torn: the record was cut short
            raise WalCorrupted(str(path), off, "record runs past the end of the segment")
        if not records:
            if rtype != CRC or length != _CRC.size:
                raise WalCorrupted(str(path), off, "segment does not start with a CRC record")
            previous = _CRC.unpack(payload)[0]
            if crc is not None and previous != crc:
                raise WalCorrupted(str(path), off, "CRC chain broken between segments")
            crc = previous
        assert crc is not None
        computed = _record_crc(length, rtype, payload, crc)
        if computed != stored or rtype not in (METADATA, HARD_STATE, ENTRY, SNAPSHOT, CRC):
            if last and _all_zero(data[end:]):
                break  # torn: the last record was only partly written
            reason = "CRC mismatch" if computed != stored else f"unknown record type {rtype}"
            raise WalCorrupted(str(path), off, reason)
        crc = computed
        records.append(_Record(rtype, payload))
        off = end
    return records, (crc if crc is not None else 0), off


def _choose_entries(
    records: list[_Record], snapshot_index: int | None, where: str
) -> tuple[WalSnapshot, list[WalSnapshot], list[Entry]]:
    snaps = [WalSnapshot(*_SNAPSHOT.unpack(r.payload)) for r in records if r.type == SNAPSHOT]
    if snapshot_index is None:
        chosen = snaps[-1] if snaps else WalSnapshot()
    else:
        matching = [s for s in snaps if s.index == snapshot_index]
        chosen = matching[-1] if matching else WalSnapshot(snapshot_index, 0)
    entries: list[Entry] = []
    for r in records:
        if r.type != ENTRY:
            continue
        e = decode_entry(r.payload)
        if e.index <= chosen.index:
            continue
        pos = e.index - chosen.index - 1
        if pos > len(entries):
            raise WalCorrupted(where, 0, f"missing entries before index {e.index}")
        del entries[pos:]  # a later append at this index replaces the old tail (a new leader's log)
        entries.append(e)
    return chosen, snaps, entries


# ---- the log -------------------------------------------------------------------------------------


class WAL:
    def __init__(
        self, directory: Path, metadata: WalMetadata, segments: list[tuple[int, int, Path]], segment_size: int
    ) -> None:
        self.dir = directory
        self.metadata = metadata
        self.segment_size = segment_size
        self._segments = segments  # (seq, first index, path), oldest first; the last is open for writing
        self._fd = -1
        self._offset = 0
        self._crc = 0
        self._hard_state = HardState()
        self._last_index = 0

    @classmethod
    def create(
        cls, directory: str | os.PathLike[str], metadata: WalMetadata, *, segment_size: int = SEGMENT_SIZE
    ) -> WAL:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if _segments(d):
            raise FileExistsError(f"wal: {d} already holds a WAL")
        wal = cls(d, metadata, [], segment_size)
        wal._start_segment(0, 1, initial=True)
        return wal

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        snapshot_index: int | None = None,
        *,
        segment_size: int = SEGMENT_SIZE,
    ) -> tuple[WAL, WalState]:
        """Read the whole log; entries are those after `snapshot_index` (default: the last marker)."""
        d = Path(directory)
        segments = _segments(d)
        if not segments:
            raise FileNotFoundError(f"wal: no WAL segments in {d}")
        for leftover in d.glob("*.tmp"):  # a segment whose creation a crash interrupted
            leftover.unlink()
        records: list[_Record] = []
        crc: int | None = None
        end = 0
        for i, (_, _, path) in enumerate(segments):
            last = i == len(segments) - 1
            recs, crc, end = _read_segment(path, path.read_bytes(), crc, last)
            records.extend(recs)
        metas = [r for r in records if r.type == METADATA]
        if not metas:
            raise WalCorrupted(str(segments[0][2]), 0, "no metadata record")
        metadata = WalMetadata(*_METADATA.unpack(metas[0].payload))
        hard_states = [r for r in records if r.type == HARD_STATE]
        hs = decode_hard_state(hard_states[-1].payload) if hard_states else HardState()
        chosen, snaps, entries = _choose_entries(records, snapshot_index, str(d))
        wal = cls(d, metadata, segments, segment_size)
        wal._crc = crc if crc is not None else 0
        wal._hard_state = hs
        all_entries = [r for r in records if r.type == ENTRY]
        wal._last_index = entries[-1].index if entries else max(chosen.index, _last_entry_index(all_entries))
        wal._reopen_tail(end)
        return wal, WalState(metadata, hs, chosen, entries, snaps)

    # ---- writing -------------------------------------------------------------------------------------

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool) -> None:
        """Append entries, then the hard state (if given and changed); fsync when `sync`."""
        parts: list[bytes] = []
        crc = self._crc
        for e in entries:
            rec, crc = _frame(ENTRY, encode_entry(e), crc)
            parts.append(rec)
        if entries:
            self._last_index = entries[-1].index
        if hard_state is not None and hard_state != self._hard_state:
            rec, crc = _frame(HARD_STATE, encode_hard_state(hard_state), crc)
            parts.append(rec)
            self._hard_state = hard_state
        if not parts:
            return
        self._write(b"".join(parts), crc)
        if self._offset >= self.segment_size:
            self._cut()  # syncs
        elif sync:
            os.fdatasync(self._fd)

    def save_snapshot(self, index: int, term: int, sync: bool = True) -> None:
        """Record that a snapshot at (index, term) exists; entries up to index may then be released."""
        rec, crc = _frame(SNAPSHOT, _SNAPSHOT.pack(index, term), self._crc)
        self._write(rec, crc)
        self._last_index = max(self._last_index, index)
        if sync:
            os.fdatasync(self._fd)

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def release_to(self, index: int) -> None:
        """Delete the segments holding only entries before `index` (after a snapshot at index)."""
        keep_from = 0
        for i, (_, first, _) in enumerate(self._segments):
            if first <= index:
                keep_from = i
        for _, _, path in self._segments[:keep_from]:
            path.unlink(missing_ok=True)
        self._segments = self._segments[keep_from:]

    def close(self) -> None:
        if self._fd >= 0:
            os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = -1

    @property
    def segment_paths(self) -> list[Path]:
        return [p for _, _, p in self._segments]

    def _write(self, data: bytes, crc: int) -> None:
        os.pwrite(self._fd, data, self._offset)
        self._offset += len(data)
        self._crc = crc

    def _reopen_tail(self, end: int) -> None:
        path = self._segments[-1][2]
        self._fd = os.open(path, os.O_RDWR)
        _lock(self._fd, path)
        size = os.fstat(self._fd).st_size
        if end < size:  # cut a torn tail and zero what follows, then write from there
            os.ftruncate(self._fd, end)
            _preallocate(self._fd, max(self.segment_size, end))
            os.fsync(self._fd)
        self._offset = end

    def _start_segment(self, seq: int, first_index: int, initial: bool = False) -> None:
        path = self.dir / segment_name(seq, first_index)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        _lock(fd, path)
        _preallocate(fd, self.segment_size)
        parts = []
        rec, crc = _frame(CRC, _CRC.pack(self._crc), self._crc)
        parts.append(rec)
        rec, crc = _frame(METADATA, _METADATA.pack(self.metadata.node_id, self.metadata.cluster_id), crc)
        parts.append(rec)
        if initial:
            rec, crc = _frame(SNAPSHOT, _SNAPSHOT.pack(0, 0), crc)
        else:
            rec, crc = _frame(HARD_STATE, encode_hard_state(self._hard_state), crc)
        parts.append(rec)
        data = b"".join(parts)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        os.rename(tmp, path)
        fsync_path(self.dir)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._offset = len(data)
        self._crc = crc
        self._segments.append((seq, first_index, path))

    def _cut(self) -> None:
        os.fdatasync(self._fd)
        os.ftruncate(self._fd, self._offset)  # drop the unused preallocated tail of the full segment
        os.fsync(self._fd)
        self._start_segment(self._segments[-1][0] + 1, self._last_index + 1)


def _lock(fd: int, path: Path) -> None:
    """The segment being written is locked, so a second process on the same WAL fails at once."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WalLocked(f"wal: {path} is in use by another process") from None


class WalLocked(RuntimeError):
    pass


def _last_entry_index(records: list[_Record]) -> int:
    return decode_entry(records[-1].payload).index if records else 0


def _preallocate(fd: int, size: int) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError:  # a filesystem without fallocate: grow it sparsely instead
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)

"""Snapshot files: Raft snapshot metadata plus the state machine's data (a consistent backend copy).

File `<term>-<index>.snap` (16 hex digits each, as etcd). Layout, little-endian:
magic b"PETCDSNP", format version (uint32), index, term (uint64), voter count (uint32) and IDs
(uint64 each), learner count and IDs, data length (uint64), data, then a CRC-32 of everything before
it (uint32). Written to a temporary file, fsync'd and renamed, so a snapshot file is whole or absent;
one that fails its check is renamed `*.broken` and the next older one is used, as etcd does.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

from petcd.raft.types import ConfState, Snapshot, SnapshotMetadata
from petcd.storage.errors import SnapshotCorrupted
from petcd.storage.fsync import fsync_path

MAGIC = b"PETCDSNP"
VERSION = 1
_HEAD = struct.Struct("<8sIQQ")  # magic, version, index, term
_COUNT = struct.Struct("<I")
_ID = struct.Struct("<Q")
_LEN = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")


def snapshot_name(term: int, index: int) -> str:
    return f"{term:016x}-{index:016x}.snap"


def encode_snapshot(snap: Snapshot) -> bytes:
    md = snap.metadata
    cs = md.conf_state
    parts = [_HEAD.pack(MAGIC, VERSION, md.index, md.term)]
    for ids in (cs.voters, cs.learners):
        parts.append(_COUNT.pack(len(ids)))
        parts.extend(_ID.pack(i) for i in ids)
    parts.append(_LEN.pack(len(snap.data)))
    parts.append(snap.data)
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def decode_snapshot(raw: bytes, where: str = "<bytes>") -> Snapshot:
    if len(raw) < _HEAD.size + _CRC.size:
        raise SnapshotCorrupted(where, "file too short")
    body, (crc,) = raw[: -_CRC.size], _CRC.unpack(raw[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise SnapshotCorrupted(where, "CRC mismatch")
    magic, version, index, term = _HEAD.unpack_from(body)
    if magic != MAGIC or version != VERSION:
        raise SnapshotCorrupted(where, f"unknown format {magic!r} version {version}")
    off = _HEAD.size
    groups: list[tuple[int, ...]] = []
    try:
        for _ in range(2):
            (n,) = _COUNT.unpack_from(body, off)
            off += _COUNT.size
            groups.append(tuple(_ID.unpack_from(body, off + i * _ID.size)[0] for i in range(n)))
            off += n * _ID.size
        (length,) = _LEN.unpack_from(body, off)
    except struct.error as err:
        raise SnapshotCorrupted(where, "truncated header") from err
    off += _LEN.size
    if off + length != len(body):
        raise SnapshotCorrupted(where, "data length does not match the file")
    md = SnapshotMetadata(index=index, term=term, conf_state=ConfState(voters=groups[0], learners=groups[1]))
    return Snapshot(metadata=md, data=body[off:])


class Snapshotter:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def save(self, snap: Snapshot) -> Path:
        md = snap.metadata
        path = self.dir / snapshot_name(md.term, md.index)
        tmp = path.with_suffix(".snap.tmp")
        with open(tmp, "wb") as f:
            f.write(encode_snapshot(snap))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        fsync_path(self.dir)
        return path

    def names(self) -> list[Path]:
        """Snapshot files, newest (highest index, then term) first."""
        found = []
        for p in self.dir.iterdir():
            m = _NAME.match(p.name)
            if m:
                found.append((int(m.group(2), 16), int(m.group(1), 16), p))
        return [p for _, _, p in sorted(found, reverse=True)]

    def load_newest(self, usable: set[tuple[int, int]] | None = None) -> Snapshot | None:
        """The newest snapshot that passes its check (optionally only those whose (index, term) is in
        `usable`: the ones with a WAL marker). Broken files are renamed `*.broken`."""
        for path in self.names():
            try:
                snap = decode_snapshot(path.read_bytes(), str(path))
            except SnapshotCorrupted:
                path.rename(path.with_name(path.name + ".broken"))
                continue
            if usable is None or (snap.metadata.index, snap.metadata.term) in usable:
                return snap
        return None

    def purge(self, keep: int = 5) -> None:
        """Delete all but the `keep` newest snapshot files (etcd's --max-snapshots)."""
        for path in self.names()[keep:]:
            path.unlink(missing_ok=True)

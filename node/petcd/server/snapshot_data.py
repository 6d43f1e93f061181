"""The data part of petcd's Raft snapshots.

Kept on disk (with the Snapshotter) it is the membership and the v2 store (which lives in memory and
is rebuilt from the snapshot plus the log), since the backend file holds the key space. Sent to a
follower that fell behind (MsgSnap) it also carries a consistent copy of the whole backend, which
the follower installs before recording the snapshot in its WAL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"PETCDSD2"
_LEN = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class SnapshotData:
    membership_json: bytes
    v2_store: bytes = b""  # petcd.v2.store.V2Store.save(); empty when the v2 API was never used
    backend: bytes = b""  # empty when the snapshot was made locally


def pack(data: SnapshotData) -> bytes:
    parts = [MAGIC]
    for blob in (data.membership_json, data.v2_store):
        parts += [_LEN.pack(len(blob)), blob]
    parts.append(data.backend)
    return b"".join(parts)


def unpack(raw: bytes) -> SnapshotData:
    if not raw.startswith(MAGIC):
        raise ValueError("not a petcd snapshot")
    pos = len(MAGIC)
    blobs = []
    for _ in range(2):
        (n,) = _LEN.unpack_from(raw, pos)
        pos += _LEN.size
        blobs.append(raw[pos : pos + n])
        pos += n
    return SnapshotData(blobs[0], blobs[1], raw[pos:])

"""The data part of petcd's Raft snapshots.

Kept on disk (with the Snapshotter) it is just the membership, since the backend file holds the key
space. Sent to a follower that fell behind (MsgSnap) it also carries a consistent copy of the whole
backend, which the follower installs before recording the snapshot in its WAL.
"""

from __future__ import annotations

import struct

MAGIC = b"PETCDSD1"
_LEN = struct.Struct("<I")


def pack(membership_json: bytes, backend: bytes = b"") -> bytes:
    return MAGIC + _LEN.pack(len(membership_json)) + membership_json + backend


def unpack(data: bytes) -> tuple[bytes, bytes]:
    """(membership JSON, backend bytes — empty when the snapshot was made locally)."""
    if not data.startswith(MAGIC):
        raise ValueError("not a petcd snapshot")
    (n,) = _LEN.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    return data[start : start + n], data[start + n :]

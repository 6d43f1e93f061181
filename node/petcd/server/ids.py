"""Member, cluster and request IDs computed as etcd computes them (pure)."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

_U64 = (1 << 64) - 1


def member_id(peer_urls: Iterable[str], token: str, now_seconds: int | None = None) -> int:
    """SHA-1 of the sorted peer URLs concatenated, then the token (and, for MemberAdd, the time)."""
    data = "".join(sorted(peer_urls)) + token
    if now_seconds is not None:
        data += str(now_seconds)
    return int.from_bytes(hashlib.sha1(data.encode()).digest()[:8], "big")


def cluster_id(member_ids: Iterable[int]) -> int:
    """SHA-1 over the initial member IDs, sorted, each as 8 big-endian bytes."""
    data = b"".join(struct.pack(">Q", m) for m in sorted(member_ids))
    return int.from_bytes(hashlib.sha1(data).digest()[:8], "big")


class RequestIdGenerator:
    """etcd's idutil.Generator: 2 bytes of member ID, 5 bytes of start time in ms, a counter byte.

    The counter carries into the time bytes, so IDs stay unique across restarts as long as the
    clock moves forward by more than the number of IDs issued per millisecond.
    """

    _SUFFIX_BITS = 48

    def __init__(self, member: int, now_ms: int) -> None:
        self._prefix = (member & 0xFFFF) << self._SUFFIX_BITS
        self._suffix = (now_ms << 8) & ((1 << self._SUFFIX_BITS) - 1)

    def next(self) -> int:
        self._suffix = (self._suffix + 1) & ((1 << self._SUFFIX_BITS) - 1)
        return (self._prefix | self._suffix) & _U64

    def next_lease_id(self) -> int:
        """A positive int64 (etcd masks the request ID to 63 bits for server-chosen lease IDs)."""
        return self.next() & ((1 << 63) - 1)


def format_id(value: int) -> str:
    """IDs print as lower-case hex without padding."""
    return f"{value:x}"

"""Key-range coverage for permissions (etcd's range permission cache over an interval tree).

A permission is a single key (empty range_end), a range [key, range_end), or open-ended
(range_end == b"\\x00"). A request's range is allowed when the union of the user's permitted
intervals covers all of it; a single-key request needs one interval containing the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

OPEN_END = b"\x00"

# An interval's end; None means "to the end of the key space".
End = bytes | None


@dataclass(frozen=True, slots=True)
class Interval:
    start: bytes
    end: End  # exclusive

    def contains_key(self, key: bytes) -> bool:
        return self.start <= key and (self.end is None or key < self.end)


def permission_interval(key: bytes, range_end: bytes) -> Interval:
    """The interval a granted permission covers."""
    if not range_end:
        return Interval(key, key + b"\x00")  # exactly one key
    return Interval(key, None if range_end == OPEN_END else range_end)


def is_valid_permission_range(key: bytes, range_end: bytes) -> bool:
    """etcd's isValidPermissionRange: a key is needed; a range must not be empty."""
    if not key:
        return False
    return not range_end or range_end == OPEN_END or key < range_end


def _end_le(a: End, b: End) -> bool:
    """a <= b where None is +infinity."""
    return b is None or (a is not None and a <= b)


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sorted, disjoint, non-touching intervals covering the same keys."""
    merged: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: i.start):
        if merged:
            last = merged[-1]
            if last.end is None or iv.start <= last.end:
                end = last.end if _end_le(iv.end, last.end) else iv.end
                merged[-1] = Interval(last.start, end)
                continue
        merged.append(iv)
    return tuple(merged)


def covers(merged: tuple[Interval, ...], key: bytes, range_end: bytes) -> bool:
    """Whether the merged permissions allow a request on key (empty range_end) or [key, range_end)."""
    if not range_end:
        return any(iv.contains_key(key) for iv in merged)
    wanted_end: End = None if range_end == OPEN_END else range_end
    return any(iv.start <= key and _end_le(wanted_end, iv.end) for iv in merged)

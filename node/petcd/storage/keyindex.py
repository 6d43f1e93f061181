"""The in-memory key index: for every key, the revisions at which it changed, in generations.

Modelled on etcd's mvcc keyIndex/treeIndex. A generation runs from the put that creates a key to the
tombstone that deletes it; the last generation is the open one (empty after a delete). The index is
rebuilt from the backend on open, so it is never persisted itself.

A revision is `(main, sub)`: main is the store revision, sub orders the changes inside one txn.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

Revision = tuple[int, int]


class Generation:
    __slots__ = ("created", "revs", "ver")

    def __init__(self) -> None:
        self.ver = 0  # puts in this generation (the tombstone counts too, as in etcd)
        self.created: Revision = (0, 0)
        self.revs: list[Revision] = []


class KeyIndex:
    __slots__ = ("generations", "key", "modified")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.modified: Revision = (0, 0)
        self.generations: list[Generation] = [Generation()]

    def put(self, rev: Revision) -> None:
        g = self.generations[-1]
        if not g.revs:
            g.created = rev
        g.revs.append(rev)
        g.ver += 1
        self.modified = rev

    def tombstone(self, rev: Revision) -> None:
        self.put(rev)
        self.generations.append(Generation())

    def is_live(self) -> bool:
        return bool(self.generations[-1].revs)

    def is_empty(self) -> bool:
        return len(self.generations) == 1 and not self.generations[0].revs

    def get(self, at: int) -> tuple[Revision, Revision, int] | None:
        """(modified, created, version) of the key as of store revision `at`, or None if absent."""
        last = self.generations[-1]
        if last.revs and self.modified[0] <= at:  # fast path: the latest state
            return self.modified, last.created, last.ver
        g = self._generation_at(at)
        if g is None:
            return None
        revs = g.revs
        for n in range(len(revs) - 1, -1, -1):
            if revs[n][0] <= at:
                return revs[n], g.created, g.ver - (len(revs) - n - 1)
        return None

    def _generation_at(self, at: int) -> Generation | None:
        gens = self.generations
        last = len(gens) - 1
        for i in range(last, -1, -1):
            g = gens[i]
            if not g.revs:
                continue
            if i != last and g.revs[-1][0] <= at:
                return None  # the key was deleted at or before `at`
            if g.revs[0][0] <= at:
                return g
        return None

    def since(self, rev: int) -> list[Revision]:
        """Revisions >= rev, one per main revision (the last sub wins), in order."""
        out: list[Revision] = []
        for g in self.generations:
            for r in g.revs:
                if r[0] < rev:
                    continue
                if out and out[-1][0] == r[0]:
                    out[-1] = r
                else:
                    out.append(r)
        return out

    def compact(self, at: int, keep: set[Revision]) -> None:
        """Drop history older than `at`; record in `keep` the revisions that must stay in the backend."""
        gens = self.generations
        i = 0
        # the first generation that holds `at` or was created after it
        while i < len(gens) - 1 and gens[i].revs[-1][0] <= at:
            i += 1
        g = gens[i]
        if g.revs:
            # index of the last revision <= at, walking backwards
            j = -1
            for n in range(len(g.revs) - 1, -1, -1):
                if g.revs[n][0] <= at:
                    j = n
                    keep.add(g.revs[n])
                    break
            if j > 0:
                g.revs = g.revs[j:]
            if len(g.revs) == 1 and i != len(gens) - 1:  # only a tombstone left: drop it too
                keep.discard(g.revs[0])
                i += 1
        self.generations = gens[i:]


class TreeIndex:
    """All keys in order (a sorted list + a dict); ranges are bisected."""

    __slots__ = ("_by_key", "_keys")

    def __init__(self) -> None:
        self._by_key: dict[bytes, KeyIndex] = {}
        self._keys: list[bytes] = []

    def __len__(self) -> int:
        return len(self._by_key)

    def lookup(self, key: bytes) -> KeyIndex | None:
        return self._by_key.get(key)

    def get(self, key: bytes, at: int) -> tuple[Revision, Revision, int] | None:
        ki = self._by_key.get(key)
        return None if ki is None else ki.get(at)

    def put(self, key: bytes, rev: Revision) -> None:
        ki = self._by_key.get(key)
        if ki is None:
            ki = self._by_key[key] = KeyIndex(key)
            bisect.insort(self._keys, key)
        ki.put(rev)

    def restore_put(self, key: bytes, rev: Revision, created: int, version: int) -> None:
        """Replay one stored put on open (call finish_restore at the end). After a compaction the oldest
        kept row of a generation is not its first, so the row's own create revision and version seed
        the generation, as etcd does."""
        ki = self._by_key.get(key)
        if ki is None:
            ki = self._by_key[key] = KeyIndex(key)
        g = ki.generations[-1]
        first = not g.revs
        ki.put(rev)
        if first:
            g.created = (created, 0)
            g.ver = version

    def restore_tombstone(self, key: bytes, rev: Revision) -> None:
        ki = self._by_key.get(key)
        if ki is None:
            ki = self._by_key[key] = KeyIndex(key)
        ki.tombstone(rev)

    def finish_restore(self) -> None:
        self._keys = sorted(self._by_key)

    def tombstone(self, key: bytes, rev: Revision) -> None:
        self._by_key[key].tombstone(rev)

    def key_indexes(self, key: bytes, range_end: bytes) -> Iterator[KeyIndex]:
        """KeyIndexes of the keys in [key, range_end) in key order; range_end b"" = the single key,
        b"\\x00" = no upper bound."""
        if not range_end:
            ki = self._by_key.get(key)
            if ki is not None:
                yield ki
            return
        keys = self._keys
        i = bisect.bisect_left(keys, key)
        if range_end == b"\x00":
            stop = len(keys)
        else:
            if range_end <= key:
                return
            stop = bisect.bisect_left(keys, range_end, i)
        by_key = self._by_key
        for k in keys[i:stop]:
            yield by_key[k]

    def range(self, key: bytes, range_end: bytes, at: int) -> Iterator[tuple[bytes, Revision]]:
        """(key, modified revision) of every key alive at `at` in the range, in key order."""
        for ki in self.key_indexes(key, range_end):
            got = ki.get(at)
            if got is not None:
                yield ki.key, got[0]

    def compact(self, at: int) -> set[Revision]:
        keep: set[Revision] = set()
        emptied = False
        for ki in self._by_key.values():
            ki.compact(at, keep)
            if ki.is_empty():
                emptied = True
        if emptied:
            self._by_key = {k: ki for k, ki in self._by_key.items() if not ki.is_empty()}
            self._keys = [k for k in self._keys if k in self._by_key]
        return keep

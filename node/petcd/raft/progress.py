"""The leader's view of each follower: how far it is replicated and how to send it more.

A follower is in one of three states (etcd's tracker/progress.go):
- PROBE: we do not know its log; send one append at a time and wait for the answer.
- REPLICATE: its log matches; stream appends optimistically, at most `max_inflight` unacknowledged.
- SNAPSHOT: it needs a snapshot; send nothing until the snapshot is reported done.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


class Inflights:
    """The last indexes of the appends sent but not acknowledged, bounded by `size`."""

    __slots__ = ("_queue", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._queue: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, last_index: int) -> None:
        if self.full():
            raise AssertionError("cannot add into a full inflights")
        self._queue.append(last_index)

    def free_le(self, to: int) -> None:
        queue = self._queue
        while queue and queue[0] <= to:
            queue.popleft()

    def free_first_one(self) -> None:
        if self._queue:
            self._queue.popleft()

    def full(self) -> bool:
        return len(self._queue) >= self.size

    def reset(self) -> None:
        self._queue.clear()


class Progress:
    __slots__ = (
        "inflights", "is_learner", "match", "next", "pending_snapshot", "probe_sent", "recent_active", "state"
    )

    def __init__(self, next_index: int, max_inflight: int, is_learner: bool = False) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.pending_snapshot = 0  # index of the snapshot being sent, in SNAPSHOT state
        self.recent_active = True  # heard from within the last election timeout (CheckQuorum)
        self.probe_sent = False  # in PROBE, an append is outstanding: pause until it is answered
        self.inflights = Inflights(max_inflight)
        self.is_learner = is_learner

    def __repr__(self) -> str:
        return (f"Progress({self.state.name} match={self.match} next={self.next} "
                f"learner={self.is_learner} inflight={len(self.inflights)})")

    def _reset_state(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        # After a snapshot, resume just after it (or after match, whichever is further).
        if self.state == ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, index: int) -> bool:
        """An append up to `index` was acknowledged; False if that is stale news."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """An append at `rejected` was refused, the follower hints `match_hint`; False if stale."""
        if self.state == ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        if self.state == ProgressState.PROBE:
            return self.probe_sent
        if self.state == ProgressState.REPLICATE:
            return self.inflights.full()
        return True

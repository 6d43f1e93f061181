"""Since when each peer has been connected (etcd's rafthttp ActiveSince), for the strict
reconfiguration checks: etcd refuses a membership change unless enough voters have been connected
for its health interval (pure; the server samples the transport and passes the clock in)."""

from __future__ import annotations

from collections.abc import Iterable

HEALTH_INTERVAL_SECONDS = 5.0  # etcd's HealthInterval


class PeerActivity:
    def __init__(self) -> None:
        self._since: dict[int, float] = {}

    def observe(self, peer: int, active: bool, now: float) -> None:
        if active:
            self._since.setdefault(peer, now)
        else:
            self._since.pop(peer, None)

    def forget_others(self, peers: Iterable[int]) -> None:
        keep = set(peers)
        for peer in [p for p in self._since if p not in keep]:
            del self._since[peer]

    def active_since(self, peer: int) -> float | None:
        """When the current connection came up; None while disconnected."""
        return self._since.get(peer)

    def connected_since(self, members: Iterable[int], me: int, cutoff: float) -> int:
        """How many of `members` (this member counts as connected) have been connected since `cutoff`
        (etcd's numConnectedSince)."""
        count = 0
        for member in members:
            since = self._since.get(member)
            if member == me or (since is not None and since <= cutoff):
                count += 1
        return count

"""Pending ReadIndex requests on the leader, confirmed by a heartbeat round (etcd's read_only.go)."""

from __future__ import annotations

from dataclasses import dataclass, field

from petcd.raft.types import Message


@dataclass(slots=True)
class ReadIndexStatus:
    request: Message
    index: int  # the leader's commit index when the request arrived
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    def __init__(self) -> None:
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, request: Message) -> None:
        ctx = request.entries[0].data
        if ctx in self.pending:
            return
        self.pending[ctx] = ReadIndexStatus(request, index)
        self.queue.append(ctx)

    def recv_ack(self, node: int, ctx: bytes) -> set[int] | None:
        status = self.pending.get(ctx)
        if status is None:
            return None
        status.acks.add(node)
        return status.acks

    def advance(self, ctx: bytes) -> list[ReadIndexStatus]:
        """Everything queued up to and including `ctx` is confirmed: a later heartbeat round vouches for
        the earlier requests too."""
        if ctx not in self.pending:
            return []
        position = self.queue.index(ctx) + 1
        confirmed = [self.pending.pop(c) for c in self.queue[:position]]
        del self.queue[:position]
        return confirmed

    def last_pending_request_ctx(self) -> bytes:
        return self.queue[-1] if self.queue else b""

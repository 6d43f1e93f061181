"""The Ready loop: the one place that drives the Raft core (etcd's raftNode.start).

Each round: take a Ready; persist hard state + entries (+ snapshot) and fsync (in a worker thread,
so the event loop keeps accepting requests, which then batch into the next round); append them to
MemoryStorage; send the messages; apply the snapshot and the committed entries; hand back read
states; advance. Ticks come from a timer at the heartbeat interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from petcd.log import get_logger
from petcd.raft.node import RawNode
from petcd.raft.storage import MemoryStorage
from petcd.raft.types import Entry, HardState, Message, ReadState, Ready, Snapshot, SoftState
from petcd.server.background import Background

log = get_logger("raft")


class DurableLog(Protocol):
    """What the loop needs from the WAL (petcd.storage.disk.RaftDisk)."""

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], must_sync: bool) -> None: ...


class Applier(Protocol):
    """What the loop hands to the state machine, in log order."""

    async def apply_snapshot(self, snapshot: Snapshot) -> None: ...

    async def apply_entries(self, entries: Sequence[Entry]) -> None: ...

    def on_soft_state(self, soft: SoftState) -> None: ...

    def on_read_states(self, states: Sequence[ReadState]) -> None: ...

    def on_hard_state(self, hard: HardState) -> None: ...


class RaftLoop:
    def __init__(
        self,
        node: RawNode,
        storage: MemoryStorage,
        wal: DurableLog,
        send: Callable[[Sequence[Message]], None],
        applier: Applier,
        persist_snapshot: Callable[[Snapshot], Snapshot],
        tick_seconds: float,
        after_round: Callable[[], Awaitable[None]] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.node = node
        self.storage = storage
        self._wal = wal
        self._send = send
        self._applier = applier
        self._persist_snapshot = persist_snapshot
        self._tick_seconds = tick_seconds
        self._after_round = after_round
        self._wake = asyncio.Event()
        self._background = Background()
        self.failed: BaseException | None = None
        self._on_failure = on_failure

    # ---- inputs (all on the event loop) -------------------------------------------------------------

    def poke(self) -> None:
        """Something changed in the node (proposal, step, read index): run a round soon."""
        self._wake.set()

    def step(self, msg: Message) -> None:
        try:
            self.node.step(msg)
        except Exception as exc:  # a message the core rejects (stale, unknown peer) is dropped
            fields = {"type": msg.type.name, "from": f"{msg.frm:x}", "error": str(exc)}
            log.debug("dropped a raft message", **fields)
        self._wake.set()

    # ---- the loop -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._background.spawn(self._ticker())
        self._background.spawn(self._run())

    async def stop(self) -> None:
        await self._background.stop()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            self.node.tick()
            self._wake.set()

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self.node.has_ready():
                    await self._round(self.node.ready())
                if self._after_round is not None:
                    await self._after_round()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A failed fsync or apply leaves the member in an unknown state: stop serving (etcd panics).
            log.exception("raft loop failed; the member stops serving")
            self.failed = exc
            if self._on_failure is not None:
                self._on_failure(exc)

    async def _round(self, rd: Ready) -> None:
        if rd.soft_state is not None:
            self._applier.on_soft_state(rd.soft_state)
        if rd.snapshot is not None:
            # Rare and order-sensitive (the backend is replaced before the WAL marker): on the loop.
            self.storage.apply_snapshot(self._persist_snapshot(rd.snapshot))
        if rd.entries or rd.hard_state is not None:
            await asyncio.to_thread(self._wal.save, rd.hard_state, rd.entries, rd.must_sync)
        if rd.hard_state is not None:
            self.storage.set_hard_state(rd.hard_state)
            self._applier.on_hard_state(rd.hard_state)
        if rd.entries:
            self.storage.append(rd.entries)
        if rd.messages:
            self._send(rd.messages)
        if rd.snapshot is not None:
            await self._applier.apply_snapshot(rd.snapshot)
        if rd.committed_entries:
            await self._applier.apply_entries(rd.committed_entries)
        if rd.read_states:
            self._applier.on_read_states(rd.read_states)
        self.node.advance(rd)

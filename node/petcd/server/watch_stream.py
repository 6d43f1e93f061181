"""Drives the pure watch hub from the event loop: one outgoing queue per gRPC watch stream.

Applied events go to `on_events`; watchers that start in the past are caught up in bounded batches by
a background task (yielding between batches, so a big replay never stalls the loop); progress
notifications fire on etcd's --experimental-watch-progress-notify-interval.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from petcd.server.background import Background
from petcd.storage.kv import Event
from petcd.storage.watch import Outbox, WatchCreate, WatchHub, WatchResponse


class WatchDispatcher:
    def __init__(self, hub: WatchHub, progress_interval: float) -> None:
        self.hub = hub
        self._progress_interval = progress_interval
        self._queues: dict[int, asyncio.Queue[WatchResponse]] = {}
        self._catch_up_needed = asyncio.Event()
        self._background = Background()

    def start(self) -> None:
        self._background.spawn(self._catch_up_loop())
        self._background.spawn(self._progress_loop())

    async def stop(self) -> None:
        await self._background.stop()

    # ---- streams ----------------------------------------------------------------------------------

    def open(self) -> tuple[int, asyncio.Queue[WatchResponse]]:
        sid = self.hub.open_stream()
        queue: asyncio.Queue[WatchResponse] = asyncio.Queue()
        self._queues[sid] = queue
        return sid, queue

    def close(self, sid: int) -> None:
        self._queues.pop(sid, None)
        self.hub.close_stream(sid)

    def create(self, sid: int, req: WatchCreate) -> None:
        self._enqueue(sid, self.hub.create(sid, req))
        if self.hub.has_unsynced:
            self._catch_up_needed.set()

    def cancel(self, sid: int, watch_id: int) -> None:
        self._enqueue(sid, self.hub.cancel(sid, watch_id))

    def request_progress(self, sid: int) -> None:
        self._enqueue(sid, self.hub.request_progress(sid))

    # ---- feeding ----------------------------------------------------------------------------------

    def on_events(self, events: Sequence[Event]) -> None:
        self._deliver(self.hub.notify(list(events)))
        if self.hub.has_unsynced:
            self._catch_up_needed.set()

    def _enqueue(self, sid: int, responses: list[WatchResponse]) -> None:
        queue = self._queues.get(sid)
        if queue is not None:
            for r in responses:
                queue.put_nowait(r)

    def _deliver(self, out: Outbox) -> None:
        for sid, responses in out.items():
            self._enqueue(sid, responses)

    async def _catch_up_loop(self) -> None:
        while True:
            await self._catch_up_needed.wait()
            self._catch_up_needed.clear()
            while self.hub.has_unsynced:
                self._deliver(self.hub.catch_up())
                await asyncio.sleep(0)

    async def _progress_loop(self) -> None:
        while True:
            # etcd adds up to 10% jitter so that many members do not tick together.
            await asyncio.sleep(self._progress_interval * (1 + random.random() / 10))
            self._deliver(self.hub.progress_tick())

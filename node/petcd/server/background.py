"""Background tasks one part of the member owns: kept referenced while they run (the event loop
holds only weak references), cancelled and awaited together on stop, for a bounded time."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from petcd.cancellation import cancel_and_wait


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        await cancel_and_wait(list(self._tasks))

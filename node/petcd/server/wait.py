"""Proposals waiting for their entry to be applied, keyed by request ID (etcd's wait.Wait)."""

from __future__ import annotations

import asyncio
from typing import Any


class Waiters:
    def __init__(self) -> None:
        self._pending: dict[int, asyncio.Future[Any]] = {}

    def register(self, request_id: int) -> asyncio.Future[Any]:
        if request_id in self._pending:
            raise ValueError(f"duplicate request id {request_id:x}")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        return fut

    def forget(self, request_id: int) -> None:
        """The proposer gave up (timeout, cancellation): a later result is dropped."""
        self._pending.pop(request_id, None)

    def trigger(self, request_id: int, result: Any) -> None:
        """Called by apply on the member that proposed; an exception result is raised to the waiter."""
        fut = self._pending.pop(request_id, None)
        if fut is None or fut.done():
            return
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)

    def fail_all(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)

    def __len__(self) -> int:
        return len(self._pending)


class IndexWaiter:
    """Waits for a monotonically increasing index (the applied index) to reach a value."""

    def __init__(self, start: int = 0) -> None:
        self.index = start
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def advance(self, index: int) -> None:
        if index <= self.index:
            return
        self.index = index
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, fut in self._waiting:
            if target <= index:
                if not fut.done():
                    fut.set_result(None)
            elif not fut.done():
                still.append((target, fut))
        self._waiting = still

    async def wait(self, index: int) -> None:
        if index <= self.index:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((index, fut))
        await fut

    def fail_all(self, exc: BaseException) -> None:
        waiting, self._waiting = self._waiting, []
        for _, fut in waiting:
            if not fut.done():
                fut.set_exception(exc)

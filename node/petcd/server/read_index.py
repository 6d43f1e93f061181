"""Linearizable reads: concurrent readers share one ReadIndex round (etcd's linearizableReadLoop).

A reader calls `wait()`. The loop takes everyone waiting, asks Raft for a read index with a fresh
context, waits for the matching read state and then for the applied index to reach it, and releases
the whole batch at once. Readers arriving meanwhile form the next batch.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

from petcd.api import errors
from petcd.cancellation import cancel_and_wait

RETRY_SECONDS = 0.5  # etcd's readIndexRetryTime: ask again if no answer came


class ReadIndexBatcher:
    def __init__(
        self,
        request_read_index: Callable[[bytes], None],
        wait_applied: Callable[[int], Awaitable[None]],
        timeout: float,
    ) -> None:
        self._request_read_index = request_read_index
        self._wait_applied = wait_applied
        self._timeout = timeout
        self._next_batch: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._answers: dict[bytes, asyncio.Future[int]] = {}
        self._ctx_counter = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
        if self._next_batch is not None and not self._next_batch.done():
            self._next_batch.set_exception(errors.STOPPED)

    async def wait(self) -> None:
        """Returns once this member has applied everything committed when the call began."""
        if self._next_batch is None:
            self._next_batch = asyncio.get_running_loop().create_future()
        batch = self._next_batch
        self._wake.set()
        await asyncio.shield(batch)

    def on_read_state(self, request_ctx: bytes, index: int) -> None:
        """Called by the Ready loop for each ReadState Raft hands back."""
        fut = self._answers.pop(request_ctx, None)
        if fut is not None and not fut.done():
            fut.set_result(index)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._next_batch = self._next_batch, None
            if batch is None:
                continue
            try:
                index = await self._read_index()
                await asyncio.wait_for(self._wait_applied(index), self._timeout)
            except (TimeoutError, errors.EtcdError) as exc:
                err = exc if isinstance(exc, errors.EtcdError) else errors.TIMEOUT
                if not batch.done():
                    batch.set_exception(err)
                batch.exception()  # a batch nobody awaits any more must not warn
                continue
            if not batch.done():
                batch.set_result(None)

    async def _read_index(self) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while True:
            ctx = next(self._ctx_counter).to_bytes(8, "big")
            fut: asyncio.Future[int] = loop.create_future()
            self._answers[ctx] = fut
            self._request_read_index(ctx)
            remaining = deadline - loop.time()
            try:
                return await asyncio.wait_for(fut, min(RETRY_SECONDS, max(remaining, 0.0)))
            except TimeoutError:
                self._answers.pop(ctx, None)
                if loop.time() >= deadline:
                    raise errors.TIMEOUT from None

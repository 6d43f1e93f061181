"""Cancel tasks and wait for them, bounded.

A single `task.cancel()` is not enough on Python 3.11: `asyncio.wait_for` swallows the cancellation
when its inner awaitable finishes in the same loop iteration (a refused dial to a peer that has just
stopped), and a task in a redial loop then runs on, so awaiting it never returns. Cancelling again
on every round reaches it at its next await; the bound makes a stop finish even if a task still
refuses (it is reported, never waited for forever), as etcd bounds each step of its stop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from petcd.log import get_logger

log = get_logger("server")

STOP_BOUND_SECONDS = 5.0
_RECANCEL_SECONDS = 0.05


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]],
                          within: float = STOP_BOUND_SECONDS) -> set[asyncio.Future[Any]]:
    """Cancel `tasks` until they are done, for at most `within` seconds; returns those still running."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while pending:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=min(_RECANCEL_SECONDS, remaining))
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: a task that failed while stopping must not warn later
    if pending:
        log.warn("tasks still running after the stop bound; not waiting for them",
                 tasks=", ".join(sorted(_name(t) for t in pending)), **{"bound-seconds": within})
    return pending


def _name(task: asyncio.Future[Any]) -> str:
    coro = task.get_coro() if isinstance(task, asyncio.Task) else None
    return getattr(coro, "__qualname__", repr(task))

"""cancel_and_wait: a task that lost a cancellation still ends; one that never ends is given up on."""

from __future__ import annotations

import asyncio
import random
import socket
import sys

import uvloop
from petcd.cancellation import cancel_and_wait
from petcd.transport.peer import Local, Peer, Settings


async def _redial_loop(cancellations_swallowed: list[int]) -> None:
    """A loop that swallows its first cancellation, as a redial loop does when Python 3.11's
    asyncio.wait_for loses the cancellation to a dial that failed in the same loop iteration."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if cancellations_swallowed:
                raise
            cancellations_swallowed.append(1)


def test_the_real_wait_for_race_loses_a_single_cancel() -> None:
    """The premise: on this Python a single cancel can be lost by wait_for (fixed in 3.12), so one
    cancel followed by an unbounded await is not a safe stop."""

    async def scenario() -> bool:
        inner: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(asyncio.wait_for(inner, 3600))
        await asyncio.sleep(0)  # the task is now waiting inside wait_for
        inner.set_result(1)
        task.cancel()  # in the same iteration as the inner result
        await asyncio.wait([task], timeout=5)
        return task.done() and not task.cancelled()

    lost = asyncio.run(scenario())
    assert lost is (sys.version_info < (3, 12))


def test_a_task_that_swallowed_one_cancellation_is_cancelled_again_and_ends() -> None:
    async def scenario() -> tuple[set[asyncio.Future[object]], bool, list[int]]:
        swallowed: list[int] = []
        task = asyncio.create_task(_redial_loop(swallowed))
        await asyncio.sleep(0)
        left = await cancel_and_wait([task], within=3600)
        return left, task.cancelled(), swallowed

    left, cancelled, swallowed = asyncio.run(scenario())
    assert left == set()
    assert cancelled
    assert swallowed == [1]


def test_a_task_that_never_ends_is_returned_once_the_bound_is_reached() -> None:
    async def scenario() -> tuple[bool, bool]:
        release = asyncio.Event()

        async def stubborn() -> None:
            while not release.is_set():
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    continue

        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        left = await cancel_and_wait([task], within=0.2)
        returned_it = left == {task}
        still_running = not task.done()
        release.set()
        task.cancel()
        await asyncio.wait([task], timeout=5)
        return returned_it, still_running

    returned_it, still_running = asyncio.run(scenario())
    assert returned_it
    assert still_running


def test_failures_of_tasks_are_retrieved_not_raised() -> None:
    async def scenario() -> set[asyncio.Future[object]]:
        async def fails() -> None:
            raise RuntimeError("broken while stopping")

        task = asyncio.create_task(fails())
        await asyncio.sleep(0)
        return await cancel_and_wait([task])

    assert asyncio.run(scenario()) == set()


def test_a_peer_redialling_a_member_that_is_gone_always_stops() -> None:
    """The shutdown hang itself: a peer's redial loop against a port nobody listens on (every member
    stopping at once) lost a single cancel about once in twelve stops and redialled forever. Many
    stops at random moments of the loop; each must end (the bound only detects a hang)."""
    class Unreachable:
        def report_unreachable(self, peer_id: int) -> None:
            pass

        def removed_from_cluster(self) -> None:
            pass

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> int:
        for stop in range(300):
            peer = Peer(Local(1, lambda: 7), 2, [f"http://127.0.0.1:{port}"], Unreachable(),  # type: ignore[arg-type]
                        None, Settings(backoff_initial=0.0005, backoff_max=0.001))
            peer.start()
            await asyncio.sleep(random.random() * 0.005)
            done, _ = await asyncio.wait([asyncio.ensure_future(peer.stop())], timeout=30)
            if not done:  # the first stop that hung; end its loop so that the event loop can close
                await cancel_and_wait(asyncio.all_tasks() - {asyncio.current_task()})
                return stop
        return -1

    assert uvloop.run(scenario()) == -1

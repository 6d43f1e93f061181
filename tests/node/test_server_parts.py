"""In-process checks of the server shell's small parts: batched read index, waiters, the compactor's
schedule, snapshot data and membership encodings."""

from __future__ import annotations

import asyncio

import pytest
from petcd.api import errors
from petcd.server import snapshot_data
from petcd.server.compactor import AutoCompactor
from petcd.server.membership import Member, Membership
from petcd.server.read_index import ReadIndexBatcher
from petcd.server.wait import IndexWaiter, Waiters


def test_concurrent_reads_share_one_read_index_round() -> None:
    async def scenario() -> tuple[int, list[int]]:
        applied = IndexWaiter(5)
        asked: list[bytes] = []
        batcher: ReadIndexBatcher

        def request_read_index(ctx: bytes) -> None:
            asked.append(ctx)
            # Raft answers later with the commit index (7), which this member has not applied yet.
            asyncio.get_running_loop().call_later(0.01, batcher.on_read_state, ctx, 7)

        batcher = ReadIndexBatcher(request_read_index, applied.wait, timeout=5)
        batcher.start()
        done: list[int] = []

        async def reader(n: int) -> None:
            await batcher.wait()
            done.append(n)

        readers = [asyncio.create_task(reader(n)) for n in range(20)]
        await asyncio.sleep(0.05)
        assert done == [], "a read finished before the read index was applied"
        applied.advance(7)
        await asyncio.gather(*readers)
        await batcher.stop()
        return len(asked), done

    rounds, done = asyncio.run(scenario())
    assert rounds == 1
    assert sorted(done) == list(range(20))


def test_read_index_times_out_with_etcds_error() -> None:
    async def scenario() -> None:
        batcher = ReadIndexBatcher(lambda ctx: None, IndexWaiter().wait, timeout=0.3)
        batcher.start()
        try:
            with pytest.raises(errors.EtcdError) as caught:
                await batcher.wait()
            assert caught.value == errors.TIMEOUT
        finally:
            await batcher.stop()

    asyncio.run(scenario())


def test_waiters_deliver_results_and_errors_once() -> None:
    async def scenario() -> None:
        w = Waiters()
        ok, bad, gone = w.register(1), w.register(2), w.register(3)
        w.trigger(1, "result")
        w.trigger(2, errors.LEASE_NOT_FOUND)
        w.forget(3)
        w.trigger(3, "late")
        assert await ok == "result"
        with pytest.raises(errors.EtcdError):
            await bad
        assert not gone.done() and len(w) == 0

    asyncio.run(scenario())


def test_periodic_compactor_keeps_the_retention_window() -> None:
    revision = [10]
    c = AutoCompactor("periodic", 60.0, lambda: revision[0], lambda: True, _never)
    c.sample(0.0)
    revision[0] = 50
    c.sample(30.0)
    assert c.next_target(59.0) == 0
    assert c.next_target(60.0) == 10
    assert c.next_target(90.0) == 50


def test_revision_compactor_keeps_the_last_n_revisions() -> None:
    c = AutoCompactor("revision", 100, lambda: 1050, lambda: True, _never)
    assert c.next_target(0.0) == 950


async def _never(revision: int) -> None:
    raise AssertionError("not called")


def test_snapshot_data_and_membership_round_trip() -> None:
    a = Member(1, "a", ("http://a:2380",), ("http://a:2379",))
    m = Membership(7, {1: a, 2: Member(2, is_learner=True)})
    m.remove(3)
    data = snapshot_data.SnapshotData(m.to_json(), b"v2", b"backend bytes")
    back = snapshot_data.unpack(snapshot_data.pack(data))
    assert back == data
    again = Membership.from_json(back.membership_json)
    assert again == m
    assert again.voters() == (1,) and again.learners() == (2,)

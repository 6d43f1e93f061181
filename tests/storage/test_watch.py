"""The watch hub: live events, catch-up from history, compaction, filters, prev_kv, progress, fragments."""

from __future__ import annotations

import pytest
from petcd.storage.kv import DeleteRangeRequest, Event, EventType, PutRequest, TxnRequest
from petcd.storage.mvcc import MVCCStore
from petcd.storage.watch import (
    ERR_COMPACTED,
    ERR_DUPLICATE_ID,
    ERR_EMPTY_RANGE,
    FilterType,
    WatchCreate,
    WatchHub,
    WatchResponse,
)


class Harness:
    """Applies writes to the store and feeds the hub the way the server shell does."""

    def __init__(self, store: MVCCStore, **hub_options: int) -> None:
        self.store = store
        self.hub = WatchHub(store, **hub_options)

    def write(self, *ops: PutRequest | DeleteRangeRequest) -> dict[int, list[WatchResponse]]:
        with self.store.batch() as b:
            for op in ops:
                if isinstance(op, PutRequest):
                    b.put(op)
                else:
                    b.delete_range(op)
        return self.hub.notify(b.events)

    def catch_up(self) -> dict[int, list[WatchResponse]]:
        out: dict[int, list[WatchResponse]] = {}
        for _ in range(1000):
            if not self.hub.has_unsynced:
                break
            for sid, resps in self.hub.catch_up().items():
                out.setdefault(sid, []).extend(resps)
        return out


def flat(out: dict[int, list[WatchResponse]], sid: int) -> list[tuple[EventType, bytes, int]]:
    return [(e.type, e.kv.key, e.kv.mod_revision) for r in out.get(sid, []) for e in r.events]


@pytest.fixture
def h(store: MVCCStore) -> Harness:
    return Harness(store)


def test_created_reply_and_live_events_one_response_per_revision(h: Harness) -> None:
    sid = h.hub.open_stream()
    assert h.hub.create(sid, WatchCreate(b"a", b"c")) == [WatchResponse(0, 1, created=True)]
    assert h.hub.create(sid, WatchCreate(b"b"))[0].watch_id == 1
    out = h.write(PutRequest(b"a", b"1"), PutRequest(b"b", b"2"), PutRequest(b"c", b"3"))
    resps = out[sid]
    assert [(r.watch_id, r.revision, [e.kv.key for e in r.events]) for r in resps] == [
        (0, 2, [b"a"]),
        (0, 3, [b"b"]),
        (1, 3, [b"b"]),
    ]
    out = h.write(DeleteRangeRequest(b"a", b"z"))
    deletes = [e for r in out[sid] for e in r.events]
    assert {(e.type, e.kv.key, e.kv.mod_revision, e.kv.value) for e in deletes} == {
        (EventType.DELETE, b"a", 5, b""),
        (EventType.DELETE, b"b", 5, b""),
    }


def test_a_txn_is_one_response_with_all_its_events(h: Harness) -> None:
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"\x00", b"\x00"))
    with h.store.batch() as b:
        b.txn(TxnRequest([], [PutRequest(b"x"), PutRequest(b"y"), DeleteRangeRequest(b"zz")]))
    out = h.hub.notify(b.events)
    assert len(out[sid]) == 1 and [e.kv.key for e in out[sid][0].events] == [b"x", b"y"]


def test_start_revision_in_the_past_catches_up_then_goes_live(h: Harness) -> None:
    for i in range(10):
        h.write(PutRequest(b"k%d" % (i % 3), b"%d" % i))
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"k", b"l", start_revision=4))
    assert h.write(PutRequest(b"k0", b"live")) == {}  # not synced yet: nothing live
    out = h.catch_up()
    history = [(EventType.PUT, b"k%d" % ((r - 2) % 3), r) for r in range(4, 12)]
    assert flat(out, sid) == [*history, (EventType.PUT, b"k0", 12)]
    assert all(r.revision == 12 for r in out[sid])
    out = h.write(PutRequest(b"k1", b"after"))
    assert flat(out, sid) == [(EventType.PUT, b"k1", 13)]


def test_catch_up_is_bounded_and_never_repeats_a_revision(store: MVCCStore) -> None:
    h = Harness(store, catch_up_events=7)
    for i in range(50):
        h.write(PutRequest(b"key", b"%d" % i))
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"key", start_revision=2))
    first = h.hub.catch_up()
    assert len(flat(first, sid)) <= 8
    seen = flat(first, sid)
    # writes interleaved with the catch-up
    for i in range(5):
        seen += flat(h.write(PutRequest(b"key", b"more%d" % i)), sid)
        seen += flat(h.hub.catch_up(), sid)
    seen += flat(h.catch_up(), sid)
    seen += flat(h.write(PutRequest(b"key", b"end")), sid)
    assert [rev for _, _, rev in seen] == list(range(2, 58))


def test_future_start_revision_waits(h: Harness) -> None:
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"a", start_revision=4))
    assert h.write(PutRequest(b"a")) == {}
    assert h.write(PutRequest(b"a")) == {}
    assert flat(h.write(PutRequest(b"a")), sid) == [(EventType.PUT, b"a", 4)]


def test_compacted_start_revision_gets_the_compact_revision_and_is_removed(h: Harness) -> None:
    for _ in range(5):
        h.write(PutRequest(b"a"))
    h.store.compact(4)
    sid = h.hub.open_stream()
    assert h.hub.create(sid, WatchCreate(b"a", start_revision=2))[0].created
    out = h.catch_up()
    assert out[sid] == [WatchResponse(0, 0, canceled=True, compact_revision=4)]
    assert h.hub.watcher_count() == 0
    h.hub.create(sid, WatchCreate(b"a", start_revision=4))
    assert flat(h.catch_up(), sid) == [(EventType.PUT, b"a", rev) for rev in (4, 5, 6)]


def test_bad_creates_are_created_and_canceled(h: Harness) -> None:
    sid = h.hub.open_stream()
    neg = h.hub.create(sid, WatchCreate(b"a", start_revision=-1))[0]
    assert (neg.watch_id, neg.created, neg.canceled, neg.cancel_reason) == (-1, True, True, ERR_COMPACTED)
    empty = h.hub.create(sid, WatchCreate(b"b", b"a"))[0]
    assert (empty.watch_id, empty.canceled, empty.cancel_reason) == (-1, True, ERR_EMPTY_RANGE)
    h.hub.create(sid, WatchCreate(b"a", watch_id=7))
    dup = h.hub.create(sid, WatchCreate(b"a", watch_id=7))[0]
    assert (dup.watch_id, dup.canceled, dup.cancel_reason) == (-1, True, ERR_DUPLICATE_ID)
    assert h.hub.watcher_count() == 1


def test_empty_key_watches_from_zero_byte(h: Harness) -> None:
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"", b"\x00"))
    assert flat(h.write(PutRequest(b"\x00\x00")), sid) == [(EventType.PUT, b"\x00\x00", 2)]


def test_filters(h: Harness) -> None:
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"a", filters=(FilterType.NOPUT,)))
    h.hub.create(sid, WatchCreate(b"a", filters=(FilterType.NODELETE,)))
    out = h.write(PutRequest(b"a"))
    assert [r.watch_id for r in out[sid]] == [1]
    out = h.write(DeleteRangeRequest(b"a"))
    assert [r.watch_id for r in out[sid]] == [0]


def test_prev_kv(h: Harness) -> None:
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"a", prev_kv=True))
    first = h.write(PutRequest(b"a", b"1"))[sid][0].events[0]
    assert first.prev_kv is None  # a create has no previous version
    second = h.write(PutRequest(b"a", b"2"))[sid][0].events[0]
    assert second.prev_kv is not None and second.prev_kv.value == b"1"
    deleted = h.write(DeleteRangeRequest(b"a"))[sid][0].events[0]
    assert deleted.prev_kv is not None and deleted.prev_kv.value == b"2"


def test_cancel_and_close(h: Harness) -> None:
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"a"))
    assert h.hub.cancel(sid, 0) == [WatchResponse(0, 1, canceled=True)]
    assert h.hub.cancel(sid, 0) == []
    assert h.write(PutRequest(b"a")) == {}
    other = h.hub.open_stream()
    h.hub.create(other, WatchCreate(b"a"))
    h.hub.close_stream(other)
    assert h.write(PutRequest(b"a")) == {}


def test_progress_request_waits_for_sync(h: Harness) -> None:
    sid = h.hub.open_stream()
    assert h.hub.request_progress(sid) == []  # no watchers: nothing
    h.hub.create(sid, WatchCreate(b"a"))
    assert h.hub.request_progress(sid) == [WatchResponse(-1, 1)]
    h.write(PutRequest(b"a"))
    h.hub.create(sid, WatchCreate(b"a", start_revision=1))
    assert h.hub.request_progress(sid) == []
    out = h.catch_up()
    assert out[sid][-1] == WatchResponse(-1, 2)


def test_progress_tick_only_for_idle_synced_watchers(h: Harness) -> None:
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"a", progress_notify=True))
    h.hub.create(sid, WatchCreate(b"b", progress_notify=True))
    h.hub.create(sid, WatchCreate(b"c"))
    h.write(PutRequest(b"a"))
    assert h.hub.progress_tick() == {sid: [WatchResponse(1, 2)]}
    assert h.hub.progress_tick() == {sid: [WatchResponse(0, 2), WatchResponse(1, 2)]}


def test_fragmenting_large_responses(store: MVCCStore) -> None:
    h = Harness(store, fragment_size=1000)
    sid = h.hub.open_stream()
    h.hub.create(sid, WatchCreate(b"k", b"l", fragment=True))
    h.hub.create(sid, WatchCreate(b"k", b"l"))
    with store.batch() as b:
        b.txn(TxnRequest([], [PutRequest(b"k%02d" % i, b"v" * 300) for i in range(10)]))
    out = h.hub.notify(b.events)
    fragmented = [r for r in out[sid] if r.watch_id == 0]
    whole = [r for r in out[sid] if r.watch_id == 1]
    assert len(whole) == 1 and len(whole[0].events) == 10
    assert len(fragmented) > 2
    assert [r.fragment for r in fragmented] == [True] * (len(fragmented) - 1) + [False]
    assert [e for r in fragmented for e in r.events] == whole[0].events


def test_many_streams_each_get_their_own_ids(h: Harness) -> None:
    streams = [h.hub.open_stream() for _ in range(3)]
    for sid in streams:
        assert h.hub.create(sid, WatchCreate(b"x"))[0].watch_id == 0
    out = h.write(PutRequest(b"x"))
    assert sorted(out) == sorted(streams)
    assert all(isinstance(out[s][0].events[0], Event) for s in streams)

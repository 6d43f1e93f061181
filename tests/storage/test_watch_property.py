"""Property test of the watch hub: with writes, catch-up rounds, cancels and compactions interleaved at
random, every watcher gets exactly the events of its range from its start revision, in order, without
gaps or duplicates — or, when history it still needed was compacted, a prefix and then the compact
revision. (The one loss etcd also has: a DELETE at exactly a compaction revision, read from history
after that compaction.)"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from petcd.storage.kv import DeleteRangeRequest, Event, EventType, KeyValue, PutRequest, TxnRequest
from petcd.storage.mvcc import MVCCStore
from petcd.storage.watch import FilterType, WatchCreate, WatchHub

KEYS = [b"a", b"ab", b"b", b"c", b"\x00", b"\xff"]
WRITE_METHOD = {PutRequest: "put", DeleteRangeRequest: "delete_range", TxnRequest: "txn"}
EXAMPLES = int(os.environ.get("PETCD_WATCH_EXAMPLES", "60"))

keys = st.sampled_from(KEYS)
writes = st.one_of(
    st.builds(PutRequest, keys, st.binary(max_size=3)),
    st.builds(DeleteRangeRequest, keys, st.sampled_from([b"", b"\x00", b"b"])),
    st.builds(
        TxnRequest,
        st.just([]),
        st.lists(st.builds(PutRequest, keys, st.binary(max_size=2)), max_size=3, unique_by=lambda p: p.key),
    ),
)
creates = st.builds(
    WatchCreate,
    keys,
    st.sampled_from([b"", b"\x00", b"b", b"c"]),
    start_revision=st.integers(0, 12),
    filters=st.sampled_from([(), (FilterType.NOPUT,), (FilterType.NODELETE,)]),
    prev_kv=st.booleans(),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("write"), writes),
        st.tuples(st.just("write"), writes),
        st.tuples(st.just("create"), creates),
        st.tuples(st.just("catch_up"), st.none()),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
        st.tuples(st.just("compact"), st.integers(1, 40)),
    ),
    min_size=25,
    max_size=80,
)


@dataclass
class Watched:
    create: WatchCreate
    start: int
    got: list[Event] = field(default_factory=list)
    compacted: bool = False
    canceled: bool = False

    @property
    def ended(self) -> bool:
        return self.compacted or self.canceled


def in_range(w: WatchCreate, key: bytes) -> bool:
    if not w.range_end:
        return key == w.key
    return w.key <= key and (w.range_end == b"\x00" or key < w.range_end)


def expected_prev(log: list[Event], e: Event) -> KeyValue | None:
    prev = None
    for old in log:
        if old.kv.mod_revision >= e.kv.mod_revision:
            break
        if old.kv.key == e.kv.key:
            prev = old.kv if old.type == EventType.PUT else None
    return prev


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, batch_size=st.integers(1, 20))
def test_every_watcher_sees_its_history_exactly(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, Any]], batch_size: int
) -> None:
    store = MVCCStore.open(tmp_path_factory.mktemp("watch") / "db", sync=False)
    hub = WatchHub(store, catch_up_events=batch_size)
    sid = hub.open_stream()
    log: list[Event] = []
    watched: dict[int, Watched] = {}
    compactions: set[int] = set()

    def deliver(out: dict[int, list[Any]]) -> None:
        for resp in out.get(sid, []):
            w = watched[resp.watch_id]
            assert not w.ended, "a response after the watcher ended"
            if resp.compact_revision:
                w.compacted = True
            w.got.extend(resp.events)

    try:
        for name, arg in steps:
            if name == "write":
                with store.batch() as b:
                    getattr(b, WRITE_METHOD[type(arg)])(arg)
                log.extend(b.events)
                deliver(hub.notify(b.events))
            elif name == "create":
                (created,) = hub.create(sid, arg)
                start = arg.start_revision or store.current_revision + 1
                watched[created.watch_id] = Watched(arg, start)
            elif name == "catch_up":
                deliver(hub.catch_up())
            elif name == "cancel" and arg in watched and not watched[arg].ended:
                assert hub.cancel(sid, arg)[0].canceled
                watched[arg].canceled = True
            elif name == "compact" and store.compact_revision < arg <= store.current_revision:
                store.compact(arg)
                compactions.add(arg)
        for _ in range(1000):
            if not hub.has_unsynced:
                break
            deliver(hub.catch_up())
        assert not hub.has_unsynced
        for w in watched.values():
            c = w.create
            wanted = [
                e
                for e in log
                if e.kv.mod_revision >= w.start
                and in_range(c, e.kv.key)
                and not (e.type == EventType.PUT and FilterType.NOPUT in c.filters)
                and not (e.type == EventType.DELETE and FilterType.NODELETE in c.filters)
            ]
            got = [(e.type, e.kv) for e in w.got]
            # as in etcd, compacting at C drops a tombstone written at C: a watcher that reads revision C
            # from history afterwards never sees that DELETE
            want = [
                (e.type, e.kv)
                for e in wanted
                if not (e.type == EventType.DELETE and e.kv.mod_revision in compactions)
                or (e.type, e.kv) in got
            ]
            if w.ended:
                assert got == want[: len(got)]
            else:
                assert got == want
            for e in w.got:
                if c.prev_kv and e.prev_kv is not None:
                    assert e.prev_kv == expected_prev(log, e)
                if c.prev_kv and e.prev_kv is None and store.compact_revision < 1:
                    assert expected_prev(log, e) is None
    finally:
        store.close()

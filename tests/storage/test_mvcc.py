"""MVCCStore: revisions, ranges, puts, deletes, txns, compaction, hash and restart, as etcd does them."""

from __future__ import annotations

from pathlib import Path

import pytest
from petcd.storage.errors import CompactedError, FutureRevisionError, KeyNotFoundError, LeaseNotFoundError
from petcd.storage.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    EventType,
    KeyValue,
    PutRequest,
    PutResult,
    RangeRequest,
    RangeResult,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResult,
    prefix_range_end,
)
from petcd.storage.mvcc import MVCCStore

ALL = b"\x00"


def put(store: MVCCStore, key: bytes, value: bytes = b"v", lease: int = 0) -> int:
    return store.put(PutRequest(key, value, lease=lease)).revision


def keys(result: RangeResult) -> list[bytes]:
    return [kv.key for kv in result.kvs]


def test_empty_store_is_at_revision_one(store: MVCCStore) -> None:
    assert store.current_revision == 1
    r = store.range(RangeRequest(b"a"))
    assert (r.revision, r.kvs, r.more, r.count) == (1, [], False, 0)


def test_put_creates_then_updates_versions(store: MVCCStore) -> None:
    assert put(store, b"a", b"1") == 2
    assert put(store, b"a", b"2") == 3
    assert store.get(b"a") == KeyValue(b"a", 2, 3, 2, b"2", 0)
    assert store.get(b"a", revision=2) == KeyValue(b"a", 2, 2, 1, b"1", 0)


def test_delete_then_put_starts_a_new_generation(store: MVCCStore) -> None:
    put(store, b"a")
    put(store, b"a")
    res = store.delete_range(DeleteRangeRequest(b"a", prev_kv=True))
    assert (res.revision, res.deleted) == (4, 1)
    assert res.prev_kvs == [KeyValue(b"a", 2, 3, 2, b"v", 0)]
    assert store.get(b"a") is None
    put(store, b"a", b"new")
    assert store.get(b"a") == KeyValue(b"a", 5, 5, 1, b"new", 0)
    assert store.get(b"a", revision=4) is None
    assert store.get(b"a", revision=3) == KeyValue(b"a", 2, 3, 2, b"v", 0)


def test_delete_of_nothing_does_not_bump_the_revision(store: MVCCStore) -> None:
    put(store, b"a")
    res = store.delete_range(DeleteRangeRequest(b"zz"))
    assert (res.revision, res.deleted) == (2, 0)
    assert store.current_revision == 2


def test_put_prev_kv_ignore_value_and_lease(store: MVCCStore) -> None:
    with store.batch() as b:
        b.lease_grant(7, 100, now=0.0)
    assert put(store, b"k", b"v1", lease=7) == 2
    res = store.put(PutRequest(b"k", ignore_value=True, ignore_lease=True, prev_kv=True))
    assert res == PutResult(3, KeyValue(b"k", 2, 2, 1, b"v1", 7))
    assert store.get(b"k") == KeyValue(b"k", 2, 3, 2, b"v1", 7)
    with pytest.raises(KeyNotFoundError, match=r"^etcdserver: key not found$"):
        store.put(PutRequest(b"missing", ignore_value=True))
    with pytest.raises(LeaseNotFoundError, match=r"^etcdserver: requested lease not found$"):
        store.put(PutRequest(b"k", b"x", lease=99))
    assert store.current_revision == 3


def test_binary_keys_including_the_eight_zero_bytes(store: MVCCStore) -> None:
    zero = b"\x00" * 8
    put(store, zero, b"z")
    put(store, b"\xff\xfe", b"f")
    put(store, b"\x00", b"one")
    r = store.range(RangeRequest(ALL, ALL))
    assert keys(r) == [b"\x00", zero, b"\xff\xfe"]
    assert store.get(zero) is not None


@pytest.fixture
def abc(store: MVCCStore) -> MVCCStore:
    # a@2 (v1), b@3, c@4, a@5 (v2), d@6 -> a: create 2 mod 5 ver 2
    for k, v in [(b"a", b"3"), (b"b", b"2"), (b"c", b"1"), (b"a", b"4"), (b"d", b"0")]:
        put(store, k, v)
    return store


def test_range_prefix_from_key_and_whole_keyspace(abc: MVCCStore) -> None:
    assert keys(abc.range(RangeRequest(b"b", ALL))) == [b"b", b"c", b"d"]
    assert keys(abc.range(RangeRequest(ALL, ALL))) == [b"a", b"b", b"c", b"d"]
    assert keys(abc.range(RangeRequest(b"b", b"d"))) == [b"b", b"c"]
    assert keys(abc.range(RangeRequest(b"d", b"b"))) == []
    assert prefix_range_end(b"a\xff") == b"b"
    assert prefix_range_end(b"\xff\xff") == b"\x00"


def test_range_limit_more_count(abc: MVCCStore) -> None:
    r = abc.range(RangeRequest(b"a", ALL, limit=2))
    assert (keys(r), r.more, r.count) == ([b"a", b"b"], True, 4)
    r = abc.range(RangeRequest(b"a", ALL, limit=4))
    assert (keys(r), r.more, r.count) == ([b"a", b"b", b"c", b"d"], False, 4)


def test_range_count_only_and_keys_only(abc: MVCCStore) -> None:
    r = abc.range(RangeRequest(b"a", ALL, count_only=True))
    assert (r.kvs, r.count) == ([], 4)
    r = abc.range(RangeRequest(b"a", ALL, keys_only=True))
    assert [kv.value for kv in r.kvs] == [b""] * 4
    assert r.kvs[0].version == 2


def test_range_sort_targets(abc: MVCCStore) -> None:
    def sort(target: SortTarget, order: SortOrder, limit: int = 0) -> list[bytes]:
        return keys(abc.range(RangeRequest(b"a", ALL, sort_target=target, sort_order=order, limit=limit)))

    assert sort(SortTarget.KEY, SortOrder.DESCEND) == [b"d", b"c", b"b", b"a"]
    assert sort(SortTarget.VALUE, SortOrder.ASCEND) == [b"d", b"c", b"b", b"a"]
    assert sort(SortTarget.MOD, SortOrder.DESCEND) == [b"d", b"a", b"c", b"b"]
    assert sort(SortTarget.CREATE, SortOrder.ASCEND, limit=2) == [b"a", b"b"]
    assert sort(SortTarget.VERSION, SortOrder.DESCEND, limit=1) == [b"a"]
    # a target without an order sorts ascending, but (as etcd) only over the first limit+1 keys by name
    assert sort(SortTarget.MOD, SortOrder.NONE) == [b"b", b"c", b"a", b"d"]
    assert sort(SortTarget.VALUE, SortOrder.NONE, limit=2) == [b"c", b"b"]


def test_range_min_max_revisions_filter_after_count(abc: MVCCStore) -> None:
    r = abc.range(RangeRequest(b"a", ALL, min_mod_revision=4))
    assert (keys(r), r.count) == ([b"a", b"c", b"d"], 4)
    r = abc.range(RangeRequest(b"a", ALL, max_create_revision=3, limit=1))
    assert (keys(r), r.more, r.count) == ([b"a"], True, 4)
    r = abc.range(RangeRequest(b"a", ALL, min_create_revision=3, max_mod_revision=4))
    assert keys(r) == [b"b", b"c"]


def test_range_at_revision_compacted_and_future(abc: MVCCStore) -> None:
    r = abc.range(RangeRequest(b"a", ALL, revision=3))
    assert (keys(r), r.revision) == ([b"a", b"b"], 6)
    future = r"^etcdserver: mvcc: required revision is a future revision$"
    with pytest.raises(FutureRevisionError, match=future):
        abc.range(RangeRequest(b"a", revision=7))
    assert abc.compact(4) == 6
    with pytest.raises(CompactedError, match=r"^etcdserver: mvcc: required revision has been compacted$"):
        abc.range(RangeRequest(b"a", revision=3))
    r = abc.range(RangeRequest(b"a", ALL, revision=4))
    assert [(kv.key, kv.version) for kv in r.kvs] == [(b"a", 1), (b"b", 1), (b"c", 1)]


def test_compact_errors(abc: MVCCStore) -> None:
    with pytest.raises(FutureRevisionError):
        abc.compact(7)
    abc.compact(3)
    with pytest.raises(CompactedError):
        abc.compact(3)
    assert abc.compact_revision == 3


def test_compaction_removes_old_revisions_and_deleted_keys(store: MVCCStore) -> None:
    put(store, b"a")
    put(store, b"a")
    put(store, b"b")
    store.delete_range(DeleteRangeRequest(b"b"))  # rev 5
    put(store, b"c")  # rev 6
    store.compact(5)
    events, _ = store.history(0, 10, 100)
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == [
        (EventType.PUT, b"a", 3),
        (EventType.PUT, b"c", 6),
    ]
    r = store.range(RangeRequest(ALL, ALL, revision=5))
    assert keys(r) == [b"a"]


def txn(store: MVCCStore, compare: list[Compare], success: list, failure: list | None = None) -> TxnResult:  # type: ignore[type-arg]
    return store.txn(TxnRequest(compare, success, failure or []))


def test_txn_compares_all_targets(abc: MVCCStore) -> None:
    def holds(c: Compare) -> bool:
        return txn(abc, [c], []).succeeded

    assert holds(Compare(b"a", CompareTarget.VERSION, CompareResult.EQUAL, 2))
    assert holds(Compare(b"a", CompareTarget.CREATE, CompareResult.LESS, 3))
    assert holds(Compare(b"a", CompareTarget.MOD, CompareResult.GREATER, 4))
    assert holds(Compare(b"a", CompareTarget.VALUE, CompareResult.EQUAL, b"4"))
    assert holds(Compare(b"a", CompareTarget.VALUE, CompareResult.NOT_EQUAL, b"3"))
    assert holds(Compare(b"a", CompareTarget.LEASE, CompareResult.EQUAL, 0))
    # a missing key compares as zero, except VALUE which always fails
    assert holds(Compare(b"zz", CompareTarget.VERSION, CompareResult.EQUAL, 0))
    assert holds(Compare(b"zz", CompareTarget.MOD, CompareResult.LESS, 1))
    assert not holds(Compare(b"zz", CompareTarget.VALUE, CompareResult.NOT_EQUAL, b"x"))
    # a range compare must hold for every key in it
    assert holds(Compare(b"a", CompareTarget.VERSION, CompareResult.GREATER, 0, range_end=b"e"))
    assert not holds(Compare(b"a", CompareTarget.VERSION, CompareResult.GREATER, 1, range_end=b"e"))
    assert abc.current_revision == 6  # read-only txns do not write


def test_txn_one_revision_and_reads_see_own_writes(abc: MVCCStore) -> None:
    res = txn(
        abc,
        [Compare(b"a", CompareTarget.VERSION, CompareResult.EQUAL, 2)],
        [
            PutRequest(b"x", b"1"),
            DeleteRangeRequest(b"b", prev_kv=True),
            RangeRequest(b"a", ALL),
            PutRequest(b"a", b"5", prev_kv=True),
        ],
    )
    assert res.succeeded and res.revision == 7
    put_x, delete_b, range_all, put_a = res.responses
    assert put_x == PutResult(7)
    assert delete_b.deleted == 1 and delete_b.revision == 7  # type: ignore[union-attr]
    assert keys(range_all) == [b"a", b"c", b"d", b"x"]  # type: ignore[arg-type]
    assert range_all.revision == 7
    assert put_a.prev_kv.value == b"4"  # type: ignore[union-attr]
    assert abc.current_revision == 7
    events, _ = abc.history(7, 7, 100)
    assert [(e.type, e.kv.key) for e in events] == [
        (EventType.PUT, b"x"),
        (EventType.DELETE, b"b"),
        (EventType.PUT, b"a"),
    ]


def test_txn_failure_branch_and_nested(abc: MVCCStore) -> None:
    res = txn(
        abc,
        [Compare(b"a", CompareTarget.VALUE, CompareResult.EQUAL, b"nope")],
        [PutRequest(b"s")],
        [
            PutRequest(b"f", b"1"),
            TxnRequest(
                # nested compares see the state before the outer txn: f does not exist yet
                [Compare(b"f", CompareTarget.VERSION, CompareResult.EQUAL, 0)],
                [PutRequest(b"g"), RangeRequest(b"f")],
                [PutRequest(b"h")],
            ),
        ],
    )
    assert not res.succeeded and res.revision == 7
    nested = res.responses[1]
    assert isinstance(nested, TxnResult) and nested.succeeded
    assert keys(nested.responses[1]) == [b"f"]  # type: ignore[arg-type]
    assert abc.get(b"g") is not None and abc.get(b"h") is None and abc.get(b"s") is None


def test_txn_errors_write_nothing(abc: MVCCStore) -> None:
    bad_ops = (PutRequest(b"n", lease=5), PutRequest(b"n", ignore_value=True), RangeRequest(b"a", revision=9))
    for bad in bad_ops:
        with pytest.raises((LeaseNotFoundError, KeyNotFoundError, FutureRevisionError)):
            txn(abc, [], [PutRequest(b"first"), bad])
    assert abc.current_revision == 6 and abc.get(b"first") is None


def test_hash_kv_is_deterministic_and_checks_revisions(tmp_path: Path) -> None:
    stores = [MVCCStore.open(tmp_path / name / "db", sync=False) for name in ("m1", "m2")]
    try:
        for s in stores:
            for i in range(20):
                put(s, b"k%d" % (i % 7), b"v%d" % i)
            s.delete_range(DeleteRangeRequest(b"k3"))
            s.compact(10)
        h1, h2 = (s.hash_kv(15) for s in stores)
        assert h1 == h2 and h1.hash_revision == 15 and h1.compact_revision == 10
        assert stores[0].hash_kv(0).hash != h1.hash
        with pytest.raises(CompactedError):
            stores[0].hash_kv(9)
        with pytest.raises(FutureRevisionError):
            stores[0].hash_kv(23)
    finally:
        for s in stores:
            s.close()


def test_restart_recovers_revision_data_index_and_leases(db_path: Path) -> None:
    s = MVCCStore.open(db_path, sync=False)
    with s.batch() as b:
        b.lease_grant(11, 60, now=0.0)
        b.set_applied(1, 1)
        b.put(PutRequest(b"a", b"1", lease=11))
        b.set_applied(2, 1)
        b.put(PutRequest(b"b", b"2"))
        b.delete_range(DeleteRangeRequest(b"b"))
        b.set_applied(3, 2)
    s.compact(3)
    before = (s.current_revision, s.range(RangeRequest(ALL, ALL)), s.hash_kv())
    s.close()
    s = MVCCStore.open(db_path, sync=False)
    try:
        assert (s.current_revision, s.range(RangeRequest(ALL, ALL)), s.hash_kv()) == before
        assert (s.consistent_index, s.term, s.compact_revision) == (3, 2, 3)
        assert s.lessor.time_to_live(11, now=0.0, with_keys=True).keys == [b"a"]
    finally:
        s.close()


def test_apply_is_idempotent_by_consistent_index(store: MVCCStore) -> None:
    def apply(index: int, key: bytes) -> None:
        with store.batch() as b:
            if b.applies(index):
                b.put(PutRequest(key))
                b.set_applied(index, 1)

    apply(1, b"a")
    apply(2, b"b")
    apply(2, b"b")
    apply(1, b"a")
    assert store.current_revision == 3 and store.consistent_index == 2


def test_an_exception_inside_a_batch_rolls_everything_back(store: MVCCStore) -> None:
    put(store, b"a")
    with pytest.raises(RuntimeError), store.batch() as b:
        b.put(PutRequest(b"b"))
        b.set_applied(5, 1)
        raise RuntimeError("crash in the middle of apply")
    assert store.current_revision == 2 and store.get(b"b") is None and store.consistent_index == 0
    assert put(store, b"b") == 3


def test_lease_revoke_deletes_keys_in_one_revision(store: MVCCStore) -> None:
    with store.batch() as b:
        b.lease_grant(1, 10, now=0.0)
    put(store, b"x", lease=1)
    put(store, b"y", lease=1)
    put(store, b"z", lease=1)
    put(store, b"z")  # re-put without the lease detaches it
    with store.batch() as b:
        assert b.lease_revoke(1) == 6
        assert [(e.type, e.kv.key) for e in b.events] == [(EventType.DELETE, b"x"), (EventType.DELETE, b"y")]
    assert keys(store.range(RangeRequest(ALL, ALL))) == [b"z"]
    with pytest.raises(LeaseNotFoundError), store.batch() as b:
        b.lease_revoke(1)


def test_defragment_and_sizes(store: MVCCStore) -> None:
    for i in range(300):
        put(store, b"key%d" % i, b"x" * 500)
    store.delete_range(DeleteRangeRequest(b"key", b"kez"))
    store.compact(store.current_revision)
    size, in_use = store.backend.size(), store.backend.size_in_use()
    assert in_use < size
    before = store.hash_kv()
    store.backend.defragment()
    assert store.backend.size() < size
    assert store.hash_kv() == before
    assert put(store, b"after") == store.current_revision


def test_backend_snapshot_restores_into_another_store(store: MVCCStore, tmp_path: Path) -> None:
    put(store, b"a", b"1")
    put(store, b"b", b"2")
    data = store.backend.snapshot_bytes()
    other = MVCCStore.open(tmp_path / "other" / "db", sync=False)
    try:
        put(other, b"junk")
        other.restore_snapshot(data)
        assert other.range(RangeRequest(ALL, ALL)) == store.range(RangeRequest(ALL, ALL))
        assert other.hash_kv() == store.hash_kv()
    finally:
        other.close()


def test_restart_after_compaction_keeps_create_revision_and_version(db_path: Path) -> None:
    s = MVCCStore.open(db_path, sync=False)
    for _ in range(3):
        put(s, b"a")  # revs 2, 3, 4: version 3, created at 2
    put(s, b"b")
    s.compact(5)  # only a@4 stays of a's history
    with pytest.raises(CompactedError):
        s.compact(3)  # a failed request must not disturb the index either
    assert put(s, b"a") == 6
    s.close()
    s = MVCCStore.open(db_path, sync=False)
    try:
        assert s.get(b"a") == KeyValue(b"a", 2, 6, 4, b"v", 0)
        put(s, b"a")
        assert s.get(b"a") == KeyValue(b"a", 2, 7, 5, b"v", 0)
    finally:
        s.close()


def test_hash_kv_of_a_fresh_store_reports_no_compaction(store: MVCCStore) -> None:
    fresh = store.hash_kv()
    assert (fresh.compact_revision, fresh.hash_revision) == (-1, 1)  # etcd answers -1 too
    put(store, b"a")
    assert store.hash_kv(1) == fresh
    whole_db = store.backend.hash()
    put(store, b"b")
    assert store.backend.hash() != whole_db


def test_backend_snapshot_in_chunks_equals_the_whole_copy(store: MVCCStore) -> None:
    for i in range(200):
        put(store, b"k%d" % i, b"x" * 300)
    chunks = list(store.backend.snapshot_chunks(chunk_size=4096))
    assert len(chunks) > 2 and all(len(c) == 4096 for c in chunks[:-1])
    assert b"".join(chunks) == store.backend.snapshot_bytes()
    assert not list(store.backend.path.parent.glob("*.stream-*"))

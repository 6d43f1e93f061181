"""The requests kube-apiserver's etcd3 storage sends (k8s.io/apiserver/pkg/storage/etcd3), on the
MVCC store: create and optimistic update through Txn on mod_revision, paginated LIST (limit, a fixed
revision, continue key = last key + \\x00), count_only, and its compactor's Txn on compact_rev_key."""

from __future__ import annotations

import pytest
from petcd.storage.errors import CompactedError
from petcd.storage.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    KeyValue,
    PutRequest,
    RangeRequest,
    RangeResult,
    TxnRequest,
    TxnResult,
    prefix_range_end,
)
from petcd.storage.mvcc import MVCCStore

PREFIX = b"/registry/configmaps/default/"
COMPACT_REV_KEY = b"compact_rev_key"


def create(store: MVCCStore, key: bytes, value: bytes) -> TxnResult:
    """store.Create: put only if the key does not exist (mod_revision 0), else read it back."""
    absent = Compare(key, CompareTarget.MOD, CompareResult.EQUAL, 0)
    return store.txn(TxnRequest([absent], [PutRequest(key, value)], [RangeRequest(key)]))


def update(store: MVCCStore, key: bytes, value: bytes, seen_revision: int) -> TxnResult:
    """store.GuaranteedUpdate: put only if unchanged since it was read, else read the current one."""
    unchanged = Compare(key, CompareTarget.MOD, CompareResult.EQUAL, seen_revision)
    return store.txn(TxnRequest([unchanged], [PutRequest(key, value)], [RangeRequest(key)]))


def current(result: TxnResult) -> KeyValue:
    read = result.responses[0]
    assert isinstance(read, RangeResult)
    return read.kvs[0]


def test_create_succeeds_once_then_returns_the_existing_object(store: MVCCStore) -> None:
    first = create(store, PREFIX + b"a", b"one")
    assert first.succeeded
    again = create(store, PREFIX + b"a", b"two")
    assert not again.succeeded
    assert current(again).value == b"one" and current(again).mod_revision == first.revision


def test_update_with_a_stale_resource_version_fails_and_returns_the_current_object(store: MVCCStore) -> None:
    created = create(store, PREFIX + b"a", b"v1").revision
    assert update(store, PREFIX + b"a", b"v2", created).succeeded
    stale = update(store, PREFIX + b"a", b"v3", created)
    assert not stale.succeeded
    fresh = current(stale)
    assert fresh.value == b"v2" and fresh.version == 2
    assert update(store, PREFIX + b"a", b"v3", fresh.mod_revision).succeeded


def test_paginated_list_reads_every_page_at_the_first_page_revision(store: MVCCStore) -> None:
    for i in range(120):
        create(store, PREFIX + b"cm-%03d" % i, b"x")
    end = prefix_range_end(PREFIX)
    first = store.range(RangeRequest(PREFIX, end, limit=50))
    snapshot = first.revision
    # The cluster moves on between pages: a listed object is deleted, new ones appear.
    store.delete_range(DeleteRangeRequest(PREFIX + b"cm-010"))
    create(store, PREFIX + b"cm-500", b"x")
    names, page, pages = [kv.key for kv in first.kvs], first, 1
    while page.more:
        start = page.kvs[-1].key + b"\x00"  # kube-apiserver's continue key
        page = store.range(RangeRequest(start, end, limit=50, revision=snapshot))
        names += [kv.key for kv in page.kvs]
        pages += 1
    assert pages == 3 and first.count == 120
    assert names == [PREFIX + b"cm-%03d" % i for i in range(120)]
    assert store.range(RangeRequest(PREFIX, end, count_only=True)).count == 120  # 120 - 1 + 1
    counted = store.range(RangeRequest(PREFIX, end, count_only=True))
    assert counted.kvs == [] and not counted.more


def test_the_compactor_claims_compact_rev_key_by_version_then_compacts(store: MVCCStore) -> None:
    for i in range(10):
        create(store, PREFIX + b"cm-%d" % i, b"x")
    target = store.current_revision

    def claim(seen_version: int, revision: int) -> TxnResult:
        same = Compare(COMPACT_REV_KEY, CompareTarget.VERSION, CompareResult.EQUAL, seen_version)
        put = PutRequest(COMPACT_REV_KEY, str(revision).encode())
        return store.txn(TxnRequest([same], [put], [RangeRequest(COMPACT_REV_KEY)]))

    assert claim(0, target).succeeded
    lost = claim(0, target)  # another API server got there first: it reads the key's version back
    assert not lost.succeeded and current(lost).version == 1
    store.compact(target)
    assert store.compact_revision == target
    with pytest.raises(CompactedError):
        store.range(RangeRequest(PREFIX, prefix_range_end(PREFIX), revision=target - 1))
    assert store.range(RangeRequest(PREFIX, prefix_range_end(PREFIX), revision=target)).count == 10

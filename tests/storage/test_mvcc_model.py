"""Property test: random op sequences give the same answers from the MVCC store and from the model.

Also checks that restarts in the middle change nothing, and that replaying the writes in one big
write batch (as the server applies many Raft entries at once) ends in the same state and hash.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from petcd.storage.errors import StorageError
from petcd.storage.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    SortOrder,
    SortTarget,
    TxnRequest,
    prefix_range_end,
)
from petcd.storage.mvcc import MVCCStore
from storage_model import Model

KEYS = [b"\x00", b"\x00" * 8, b"a", b"ab", b"abc", b"b", b"ba", b"c", b"\xff", b"\xff\xff"]
LEASES = {1, 2}
EXAMPLES = int(os.environ.get("PETCD_MVCC_EXAMPLES", "60"))

keys = st.sampled_from(KEYS)
values = st.binary(max_size=6)
revisions = st.integers(min_value=-1, max_value=40)


@st.composite
def range_ends(draw: st.DrawFn, key: bytes) -> bytes:
    choice = draw(st.sampled_from(["single", "from", "prefix", "key"]))
    if choice == "single":
        return b""
    if choice == "from":
        return b"\x00"
    if choice == "prefix":
        return prefix_range_end(key)
    return draw(keys)


@st.composite
def range_requests(draw: st.DrawFn, in_txn: bool = False) -> RangeRequest:
    key = draw(keys)
    return RangeRequest(
        key,
        draw(range_ends(key)),
        limit=draw(st.integers(0, 4)),
        revision=0 if in_txn and draw(st.booleans()) else draw(revisions),
        sort_order=draw(st.sampled_from(SortOrder)),
        sort_target=draw(st.sampled_from(SortTarget)),
        keys_only=draw(st.booleans()),
        count_only=draw(st.integers(0, 5)) == 0,
        min_mod_revision=draw(st.sampled_from([0, 0, 0, 3, 8])),
        max_mod_revision=draw(st.sampled_from([0, 0, 0, 5, 12])),
        min_create_revision=draw(st.sampled_from([0, 0, 0, 2, 6])),
        max_create_revision=draw(st.sampled_from([0, 0, 0, 4, 10])),
    )


@st.composite
def put_requests(draw: st.DrawFn) -> PutRequest:
    return PutRequest(
        draw(keys),
        draw(values),
        lease=draw(st.sampled_from([0, 0, 0, 1, 2, 3])),
        prev_kv=draw(st.booleans()),
        ignore_value=draw(st.integers(0, 6)) == 0,
        ignore_lease=draw(st.integers(0, 6)) == 0,
    )


@st.composite
def delete_requests(draw: st.DrawFn) -> DeleteRangeRequest:
    key = draw(keys)
    return DeleteRangeRequest(key, draw(range_ends(key)), prev_kv=draw(st.booleans()))


@st.composite
def compares(draw: st.DrawFn) -> Compare:
    target = draw(st.sampled_from(CompareTarget))
    value: int | bytes = draw(values) if target == CompareTarget.VALUE else draw(st.integers(0, 12))
    key = draw(keys)
    result = draw(st.sampled_from(CompareResult))
    return Compare(key, target, result, value, draw(st.just(b"") | range_ends(key)))


def txn_requests(depth: int = 2) -> st.SearchStrategy[TxnRequest]:
    leaf = st.one_of(range_requests(in_txn=True), put_requests(), delete_requests())
    ops = st.lists(leaf | txn_requests(depth - 1), max_size=4) if depth > 0 else st.lists(leaf, max_size=4)
    return st.builds(TxnRequest, st.lists(compares(), max_size=3), ops, ops)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), put_requests()),
        st.tuples(st.just("put"), put_requests()),
        st.tuples(st.just("range"), range_requests()),
        st.tuples(st.just("delete_range"), delete_requests()),
        st.tuples(st.just("txn"), txn_requests()),
        st.tuples(st.just("compact"), revisions),
        st.tuples(st.just("restart"), st.none()),
    ),
    min_size=20,
    max_size=80,
)


def outcome(fn: Any, arg: Any) -> Any:
    try:
        return fn(arg)
    except StorageError as err:
        return type(err)


def open_store(path: Path) -> MVCCStore:
    s = MVCCStore.open(path, sync=False)
    with s.batch() as b:
        for lease_id in sorted(LEASES):
            b.lease_grant(lease_id, 60, now=0.0)
    return s


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_store_agrees_with_the_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, Any]]
) -> None:
    d = tmp_path_factory.mktemp("mvcc")
    store = open_store(d / "a" / "db")
    model = Model(set(LEASES))
    writes: list[tuple[str, Any]] = []
    try:
        for name, arg in ops:
            if name == "restart":
                before = store.hash_kv()
                store.close()
                store = MVCCStore.open(d / "a" / "db", sync=False)
                assert store.hash_kv() == before
                continue
            got = outcome(getattr(store, name), arg)
            want = outcome(getattr(model, name), arg)
            assert got == want, (name, arg)
            assert store.current_revision == model.revision
            if name != "range":
                writes.append((name, arg))
        everything = RangeRequest(b"\x00", b"\x00")
        assert store.range(everything) == model.range(everything)
        for rev in range(max(model.compacted, 1), model.revision + 1):
            assert store.range(RangeRequest(b"\x00", b"\x00", revision=rev)) == model.range(
                RangeRequest(b"\x00", b"\x00", revision=rev)
            )
        # the same writes applied as one batch (errors caught per entry) end in the same state
        other = open_store(d / "b" / "db")
        try:
            with other.batch() as b:
                for index, (name, arg) in enumerate(writes, start=1):
                    outcome(getattr(b, name), arg)
                    b.set_applied(index, 1)
            assert other.current_revision == store.current_revision
            assert other.hash_kv() == store.hash_kv()
            assert other.range(everything) == store.range(everything)
        finally:
            other.close()
    finally:
        store.close()

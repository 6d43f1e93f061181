"""Member/cluster IDs and the request checks etcd makes before proposing."""

from __future__ import annotations

import pytest
from petcd.api import errors
from petcd.api.validate import check_put, check_range, check_txn
from petcd.proto import rpc_pb2 as pb
from petcd.server.ids import RequestIdGenerator, cluster_id, format_id, member_id


def test_etcd_default_single_node_ids() -> None:
    mid = member_id(["http://localhost:2380"], "etcd-cluster")
    assert format_id(mid) == "8e9e05c52164694d"
    assert format_id(cluster_id([mid])) == "cdf818194e3a8c32"


def test_member_id_sorts_peer_urls() -> None:
    a = member_id(["http://b:2380", "http://a:2380"], "t")
    assert a == member_id(["http://a:2380", "http://b:2380"], "t")
    assert a != member_id(["http://a:2380", "http://b:2380"], "u")


def test_request_ids_are_distinct_and_carry_the_member() -> None:
    gen = RequestIdGenerator(0x8E9E05C52164694D, now_ms=1_700_000_000_000)
    ids = [gen.next() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(i >> 48 == 0x694D for i in ids)
    assert 0 < gen.next_lease_id() < 1 << 63


def put(key: bytes, **kw: object) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, **kw))  # type: ignore[arg-type]


def delete(key: bytes, end: bytes = b"") -> pb.RequestOp:
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key, range_end=end))


def txn(*success: pb.RequestOp, failure: tuple[pb.RequestOp, ...] = ()) -> pb.TxnRequest:
    return pb.TxnRequest(success=list(success), failure=list(failure))


def check_error(fn: object, *args: object) -> errors.EtcdError | None:
    try:
        fn(*args)  # type: ignore[operator]
    except errors.EtcdError as exc:
        return exc
    return None


def test_simple_request_checks() -> None:
    assert check_error(check_range, pb.RangeRequest()) == errors.EMPTY_KEY
    ignored_value = pb.PutRequest(key=b"k", value=b"v", ignore_value=True)
    assert check_error(check_put, ignored_value) == errors.VALUE_PROVIDED
    ignored_lease = pb.PutRequest(key=b"k", lease=5, ignore_lease=True)
    assert check_error(check_put, ignored_lease) == errors.LEASE_PROVIDED
    assert check_error(check_put, pb.PutRequest(key=b"k", value=b"v")) is None


NESTED_THEN_ELSE_A = pb.RequestOp(request_txn=txn(put(b"a"), failure=(put(b"a"),)))


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (txn(put(b"a"), put(b"b")), None),
        (txn(put(b"a"), put(b"a")), errors.DUPLICATE_KEY),
        (txn(delete(b"a", b"c"), put(b"b")), errors.DUPLICATE_KEY),
        (txn(delete(b"a", b"c"), put(b"c")), None),
        (txn(put(b"a"), failure=(put(b"a"),)), None),
        (txn(NESTED_THEN_ELSE_A, put(b"a")), errors.DUPLICATE_KEY),
        (txn(NESTED_THEN_ELSE_A), None),
        (txn(pb.RequestOp()), errors.KEY_NOT_FOUND),
        (txn(put(b"")), errors.EMPTY_KEY),
        (txn(*[put(bytes([i])) for i in range(1, 130)]), errors.TOO_MANY_OPS),
    ],
)
def test_txn_checks(request_: pb.TxnRequest, expected: errors.EtcdError | None) -> None:
    assert check_error(check_txn, request_) == expected


def test_nested_txn_budget_is_what_the_outer_txn_leaves() -> None:
    inner = txn(*[put(b"i" + bytes([i])) for i in range(100)])
    outer = pb.TxnRequest(
        compare=[pb.Compare(key=b"x")] * 30, success=[pb.RequestOp(request_txn=inner)]
    )
    assert check_error(check_txn, outer) == errors.TOO_MANY_OPS
    outer_small = pb.TxnRequest(
        compare=[pb.Compare(key=b"x")] * 20, success=[pb.RequestOp(request_txn=inner)]
    )
    assert check_error(check_txn, outer_small) is None

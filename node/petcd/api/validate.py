"""Request checks etcd makes before proposing (etcdserver/api/v3rpc/key.go), as pure functions.

Each returns nothing or raises the `EtcdError` etcd would return.
"""

from __future__ import annotations

from collections.abc import Sequence

from petcd.api import errors
from petcd.proto import rpc_pb2 as pb

DEFAULT_MAX_TXN_OPS = 128


def check_range(r: pb.RangeRequest) -> None:
    if not r.key:
        raise errors.EMPTY_KEY


def check_put(r: pb.PutRequest) -> None:
    if not r.key:
        raise errors.EMPTY_KEY
    if r.ignore_value and r.value:
        raise errors.VALUE_PROVIDED
    if r.ignore_lease and r.lease != 0:
        raise errors.LEASE_PROVIDED


def check_delete(r: pb.DeleteRangeRequest) -> None:
    if not r.key:
        raise errors.EMPTY_KEY


def check_txn(r: pb.TxnRequest, max_txn_ops: int = DEFAULT_MAX_TXN_OPS) -> None:
    """Sizes, empty keys and the shape of every op, then duplicate writes within each branch."""
    _check_txn_shape(r, max_txn_ops)
    _check_intervals(r.success)
    _check_intervals(r.failure)


def _check_txn_shape(r: pb.TxnRequest, max_txn_ops: int) -> None:
    opc = max(len(r.compare), len(r.success), len(r.failure))
    if opc > max_txn_ops:
        raise errors.TOO_MANY_OPS
    for c in r.compare:
        if not c.key:
            raise errors.EMPTY_KEY
    for op in (*r.success, *r.failure):
        _check_op(op, max_txn_ops - opc)


def _check_op(op: pb.RequestOp, max_txn_ops: int) -> None:
    kind = op.WhichOneof("request")
    if kind == "request_range":
        check_range(op.request_range)
    elif kind == "request_put":
        check_put(op.request_put)
    elif kind == "request_delete_range":
        check_delete(op.request_delete_range)
    elif kind == "request_txn":
        _check_txn_shape(op.request_txn, max_txn_ops)
    else:
        raise errors.KEY_NOT_FOUND


class _Deletes:
    """Half-open byte intervals [start, end); an empty end means unbounded, as etcd's affine ones."""

    def __init__(self) -> None:
        self.intervals: list[tuple[bytes, bytes]] = []

    def add(self, key: bytes, range_end: bytes) -> None:
        self.intervals.append((key, range_end) if range_end else (key, key + b"\x00"))

    def covers(self, key: bytes) -> bool:
        return any(start <= key and (not end or key < end) for start, end in self.intervals)


def _check_intervals(ops: Sequence[pb.RequestOp]) -> tuple[set[bytes], _Deletes]:
    """etcd's checkIntervals: no key put twice, and no put of a deleted key, within one branch."""
    dels = _Deletes()
    for op in ops:
        if op.WhichOneof("request") == "request_delete_range":
            dels.add(op.request_delete_range.key, op.request_delete_range.range_end)
    puts: set[bytes] = set()
    for op in ops:
        if op.WhichOneof("request") != "request_txn":
            continue
        puts_then, dels_then = _check_intervals(op.request_txn.success)
        puts_else, dels_else = _check_intervals(op.request_txn.failure)
        for k in puts_then:
            if k in puts or dels.covers(k):
                raise errors.DUPLICATE_KEY
            puts.add(k)
        for k in puts_else:
            # then/else are exclusive, so the same key put in both is fine.
            if (k in puts and k not in puts_then) or dels.covers(k):
                raise errors.DUPLICATE_KEY
            puts.add(k)
        dels.intervals.extend(dels_then.intervals)
        dels.intervals.extend(dels_else.intervals)
    for op in ops:
        if op.WhichOneof("request") != "request_put":
            continue
        k = op.request_put.key
        if k in puts or dels.covers(k):
            raise errors.DUPLICATE_KEY
        puts.add(k)
    return puts, dels

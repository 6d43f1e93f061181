"""The fill before the memory reading: every key of the key space written once with a 256-byte value.

etcd's tool writes one key per request, which at a few hundred puts per second would not fit the run's
time bound; here each Txn carries many puts, so both implementations get the same 100k keys in
seconds. (Fewer revisions than with single puts, the same for both: the key index and values are
what fill the memory.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future

import grpc
from petcd.proto import rpc_pb2, rpc_pb2_grpc

PUTS_PER_TXN = 100  # under etcd's default --max-txn-ops (128)
IN_FLIGHT = 8


def key(i: int) -> bytes:
    return b"fill/" + i.to_bytes(8, "big")


def txns(keys: int, value_size: int, per_txn: int = PUTS_PER_TXN) -> Iterator[rpc_pb2.TxnRequest]:
    """Txns that put keys 0..keys-1, `per_txn` at a time."""
    value = b"v" * value_size
    for start in range(0, keys, per_txn):
        puts = [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key(i), value=value))
                for i in range(start, min(start + per_txn, keys))]
        yield rpc_pb2.TxnRequest(success=puts)


def fill(endpoint: str, keys: int, value_size: int, timeout: float) -> float:
    """Write the keys through `endpoint` (host:port, the leader); the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    with grpc.insecure_channel(endpoint) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        pending: list[Future[rpc_pb2.TxnResponse]] = []
        for request in txns(keys, value_size):
            if len(pending) >= IN_FLIGHT:
                pending.pop(0).result(timeout=max(deadline - time.monotonic(), 0.1))
            pending.append(stub.Txn.future(request, timeout=max(deadline - time.monotonic(), 0.1)))
        for done in pending:
            done.result(timeout=max(deadline - time.monotonic(), 0.1))
    return time.monotonic() - started

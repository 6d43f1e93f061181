"""etcd's client-facing errors (rpctypes) and their mapping to gRPC status.

Clients (clientv3, etcdctl) turn a status back into an error type by its exact message, so the
messages here are etcd's, letter for letter. Code raises `EtcdError`; the gRPC layer aborts with
`code`/`message` once, in `abort_with`.
"""

from __future__ import annotations

from typing import NoReturn

import grpc
import grpc.aio

C = grpc.StatusCode


class EtcdError(Exception):
    """An error with etcd's gRPC code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EtcdError) and (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))

    def __repr__(self) -> str:
        return f"EtcdError({self.code.name}, {self.message!r})"


def _e(code: grpc.StatusCode, message: str) -> EtcdError:
    return EtcdError(code, message)


EMPTY_KEY = _e(C.INVALID_ARGUMENT, "etcdserver: key is not provided")
KEY_NOT_FOUND = _e(C.INVALID_ARGUMENT, "etcdserver: key not found")
VALUE_PROVIDED = _e(C.INVALID_ARGUMENT, "etcdserver: value is provided")
LEASE_PROVIDED = _e(C.INVALID_ARGUMENT, "etcdserver: lease is provided")
TOO_MANY_OPS = _e(C.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")
DUPLICATE_KEY = _e(C.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")
COMPACTED = _e(C.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
FUTURE_REV = _e(C.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
NO_SPACE = _e(C.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")
LEASE_NOT_FOUND = _e(C.NOT_FOUND, "etcdserver: requested lease not found")
LEASE_EXIST = _e(C.FAILED_PRECONDITION, "etcdserver: lease already exists")
LEASE_TTL_TOO_LARGE = _e(C.OUT_OF_RANGE, "etcdserver: too large lease TTL")
WATCH_CANCELED = _e(C.CANCELLED, "etcdserver: watch canceled")
MEMBER_EXIST = _e(C.FAILED_PRECONDITION, "etcdserver: member ID already exist")
PEER_URL_EXIST = _e(C.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")
MEMBER_NOT_ENOUGH_STARTED = _e(
    C.FAILED_PRECONDITION, "etcdserver: re-configuration failed due to not enough started members"
)
MEMBER_BAD_URLS = _e(C.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid")
MEMBER_NOT_FOUND = _e(C.NOT_FOUND, "etcdserver: member not found")
MEMBER_NOT_LEARNER = _e(C.FAILED_PRECONDITION, "etcdserver: can only promote a learner member")
LEARNER_NOT_READY = _e(
    C.FAILED_PRECONDITION, "etcdserver: can only promote a learner member which is in sync with leader"
)
TOO_MANY_LEARNERS = _e(C.FAILED_PRECONDITION, "etcdserver: too many learner members in cluster")
CLUSTER_ID_MISMATCH = _e(C.FAILED_PRECONDITION, "etcdserver: cluster ID mismatch")
REQUEST_TOO_LARGE = _e(C.INVALID_ARGUMENT, "etcdserver: request is too large")
TOO_MANY_REQUESTS = _e(C.RESOURCE_EXHAUSTED, "etcdserver: too many requests")
NO_LEADER = _e(C.UNAVAILABLE, "etcdserver: no leader")
NOT_LEADER = _e(C.FAILED_PRECONDITION, "etcdserver: not leader")
LEADER_CHANGED = _e(C.UNAVAILABLE, "etcdserver: leader changed")
NOT_CAPABLE = _e(C.UNAVAILABLE, "etcdserver: not capable")
STOPPED = _e(C.UNAVAILABLE, "etcdserver: server stopped")
TIMEOUT = _e(C.UNAVAILABLE, "etcdserver: request timed out")
TIMEOUT_DUE_TO_LEADER_FAIL = _e(
    C.UNAVAILABLE, "etcdserver: request timed out, possibly due to previous leader failure"
)
TIMEOUT_DUE_TO_CONNECTION_LOST = _e(
    C.UNAVAILABLE, "etcdserver: request timed out, possibly due to connection lost"
)
TIMEOUT_WAIT_APPLIED_INDEX = _e(
    C.UNAVAILABLE, "etcdserver: request timed out, waiting for the applied index took too long"
)
UNHEALTHY = _e(C.UNAVAILABLE, "etcdserver: unhealthy cluster")
CORRUPT = _e(C.DATA_LOSS, "etcdserver: corrupt cluster")
NOT_SUPPORTED_FOR_LEARNER = _e(C.UNAVAILABLE, "etcdserver: rpc not supported for learner")
BAD_LEADER_TRANSFEREE = _e(C.FAILED_PRECONDITION, "etcdserver: bad leader transferee")
CANCELED = _e(C.CANCELLED, "etcdserver: request canceled")
DEADLINE_EXCEEDED = _e(C.DEADLINE_EXCEEDED, "etcdserver: context deadline exceeded")


BY_MESSAGE = {e.message: e for e in list(globals().values()) if isinstance(e, EtcdError)}


def by_message(message: str, code: grpc.StatusCode = grpc.StatusCode.UNKNOWN) -> EtcdError:
    """etcd's error with this text (as clientv3 maps them back), else one with `code`."""
    return BY_MESSAGE.get(message) or EtcdError(code, message)


async def abort_with(context: grpc.aio.ServicerContext[object, object], err: EtcdError) -> NoReturn:
    """End the RPC with etcd's status for `err`."""
    await context.abort(err.code, err.message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def from_storage(err: Exception) -> EtcdError:
    """petcd.storage's errors carry etcd's message and the name of their gRPC code (`grpc_code`)."""
    return EtcdError(grpc.StatusCode[getattr(err, "grpc_code", "UNKNOWN")], str(err))

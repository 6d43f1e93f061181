"""What every unary handler shares: etcd's `hasleader` check and the mapping of errors to status."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeAlias, TypeVar

import grpc
import grpc.aio

from petcd.api import errors
from petcd.proto import rpc_pb2 as pb
from petcd.storage.errors import StorageError

Req = TypeVar("Req")
Resp = TypeVar("Resp")
# grpc.aio.ServicerContext (grpcio ships no type information, so it is Any to mypy anyway).
Context: TypeAlias = Any


class LeaderAware(Protocol):
    @property
    def leader_id(self) -> int: ...

    @property
    def is_learner(self) -> bool: ...


def served_by_learner(request: object) -> bool:
    """etcd's isRPCSupportedForLearner: Status, and Range when serializable."""
    if isinstance(request, pb.StatusRequest):
        return True
    return isinstance(request, pb.RangeRequest) and request.serializable


def requires_leader(context: Context) -> bool:
    """clientv3's WithRequireLeader sets metadata `hasleader: true`."""
    return any(k == "hasleader" and v == "true" for k, v in context.invocation_metadata() or ())


def to_etcd_error(exc: Exception) -> errors.EtcdError:
    if isinstance(exc, errors.EtcdError):
        return exc
    if isinstance(exc, StorageError):
        return errors.from_storage(exc)
    return errors.EtcdError(grpc.StatusCode.UNKNOWN, str(exc))


def unary(
    fn: Callable[[Any, Req, Context], Awaitable[Resp]],
) -> Callable[[Any, Req, Context], Awaitable[Resp]]:
    """Wraps a servicer method: leader check first, EtcdError/storage errors become etcd's status."""

    @functools.wraps(fn)
    async def handler(self: Any, request: Req, context: Context) -> Resp:
        server: LeaderAware = self.server
        try:
            if requires_leader(context) and server.leader_id == 0:
                raise errors.NO_LEADER
            if server.is_learner and not served_by_learner(request):
                raise errors.NOT_SUPPORTED_FOR_LEARNER
            return await fn(self, request, context)
        except (errors.EtcdError, StorageError) as exc:
            await errors.abort_with(context, to_etcd_error(exc))

    return handler


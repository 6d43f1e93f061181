"""Lease requests only the leader can answer, forwarded from a follower (etcd does this over the peer
port's /leases; petcd calls the leader's own Lease service on its advertised client URL).

The calls use grpcio's synchronous client in a worker thread: its asyncio client does not run on
uvloop, which the server's event loop is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import urlsplit

import grpc

from petcd.api import errors
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

T = TypeVar("T")


class LeaderForwarder:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def _stub(self, client_urls: tuple[str, ...]) -> rpc_pb2_grpc.LeaseStub:
        if not client_urls:
            raise errors.NO_LEADER  # the leader has not published its client URLs yet
        url = client_urls[0]
        with self._lock:
            channel = self._channels.get(url)
            if channel is None:
                parts = urlsplit(url)
                channel = grpc.insecure_channel(f"{parts.hostname}:{parts.port or 2379}")
                self._channels[url] = channel
        return rpc_pb2_grpc.LeaseStub(channel)  # type: ignore[no-untyped-call]

    async def keep_alive(self, client_urls: tuple[str, ...], lease_id: int) -> pb.LeaseKeepAliveResponse:
        stub = self._stub(client_urls)

        def call() -> pb.LeaseKeepAliveResponse:
            def one() -> Iterator[pb.LeaseKeepAliveRequest]:
                yield pb.LeaseKeepAliveRequest(ID=lease_id)

            responses = stub.LeaseKeepAlive(one(), timeout=self._timeout)
            try:
                for resp in responses:
                    result: pb.LeaseKeepAliveResponse = resp
                    return result
            finally:
                responses.cancel()
            raise errors.TIMEOUT

        return await self._run(call)

    async def time_to_live(
        self, client_urls: tuple[str, ...], req: pb.LeaseTimeToLiveRequest
    ) -> pb.LeaseTimeToLiveResponse:
        stub = self._stub(client_urls)

        def call() -> pb.LeaseTimeToLiveResponse:
            resp: pb.LeaseTimeToLiveResponse = stub.LeaseTimeToLive(req, timeout=self._timeout)
            return resp

        return await self._run(call)

    async def _run(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except grpc.RpcError as exc:
            raise _as_etcd_error(exc) from None

    async def close(self) -> None:
        with self._lock:
            channels, self._channels = self._channels, {}
        for channel in channels.values():
            channel.close()


def _as_etcd_error(exc: grpc.RpcError) -> errors.EtcdError:
    code = exc.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.TIMEOUT
    return errors.EtcdError(code, exc.details() or "")

"""Lease requests only the leader can answer, forwarded from a follower (etcd does this over the peer
port's /leases; petcd calls the leader's own Lease service on its advertised client URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import grpc
import grpc.aio

from petcd.api import errors
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc


class LeaderForwarder:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, client_urls: tuple[str, ...]) -> rpc_pb2_grpc.LeaseStub:
        if not client_urls:
            raise errors.NO_LEADER  # the leader has not published its client URLs yet
        url = client_urls[0]
        channel = self._channels.get(url)
        if channel is None:
            parts = urlsplit(url)
            channel = grpc.aio.insecure_channel(f"{parts.hostname}:{parts.port or 2379}")
            self._channels[url] = channel
        return rpc_pb2_grpc.LeaseStub(channel)  # type: ignore[no-untyped-call]

    async def keep_alive(self, client_urls: tuple[str, ...], lease_id: int) -> pb.LeaseKeepAliveResponse:
        async def one() -> AsyncIterator[pb.LeaseKeepAliveRequest]:
            yield pb.LeaseKeepAliveRequest(ID=lease_id)

        call = self._stub(client_urls).LeaseKeepAlive(one(), timeout=self._timeout)
        try:
            async for resp in call:
                result: pb.LeaseKeepAliveResponse = resp
                return result
        except grpc.aio.AioRpcError as exc:
            raise _as_etcd_error(exc) from None
        finally:
            call.cancel()
        raise errors.TIMEOUT

    async def time_to_live(
        self, client_urls: tuple[str, ...], req: pb.LeaseTimeToLiveRequest
    ) -> pb.LeaseTimeToLiveResponse:
        try:
            resp: pb.LeaseTimeToLiveResponse = await self._stub(client_urls).LeaseTimeToLive(
                req, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _as_etcd_error(exc) from None
        return resp

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()


def _as_etcd_error(exc: grpc.aio.AioRpcError) -> errors.EtcdError:
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.TIMEOUT
    return errors.EtcdError(exc.code(), exc.details() or "")

"""etcdserverpb.Lease: grant/revoke through Raft, keep-alive on the leader, TTL queries local."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from petcd.api import errors
from petcd.api.rpc import Context, requires_leader, to_etcd_error, unary
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc
from petcd.storage.errors import StorageError

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer


class LeaseService(rpc_pb2_grpc.LeaseServicer):
    def __init__(self, server: EtcdServer) -> None:
        self.server = server

    @unary
    async def LeaseGrant(self, request: pb.LeaseGrantRequest, context: Context) -> pb.LeaseGrantResponse:
        return await self.server.lease_grant(request)

    @unary
    async def LeaseRevoke(self, request: pb.LeaseRevokeRequest, context: Context) -> pb.LeaseRevokeResponse:
        return await self.server.lease_revoke(request)

    @unary
    async def LeaseTimeToLive(
        self, request: pb.LeaseTimeToLiveRequest, context: Context
    ) -> pb.LeaseTimeToLiveResponse:
        return await self.server.lease_time_to_live(request)

    @unary
    async def LeaseLeases(self, request: pb.LeaseLeasesRequest, context: Context) -> pb.LeaseLeasesResponse:
        return await self.server.lease_leases()

    async def LeaseKeepAlive(
        self, request_iterator: AsyncIterator[pb.LeaseKeepAliveRequest], context: Context
    ) -> AsyncIterator[pb.LeaseKeepAliveResponse]:
        # Each request gets one answer; an unknown or expired lease answers TTL 0, not an error.
        leader_required = requires_leader(context)
        if self.server.is_learner:
            await errors.abort_with(context, errors.NOT_SUPPORTED_FOR_LEARNER)
        try:
            async for req in request_iterator:
                if leader_required and self.server.leader_id == 0:
                    raise errors.NO_LEADER
                yield await self.server.lease_keep_alive(req.ID)
        except (errors.EtcdError, StorageError) as exc:
            await errors.abort_with(context, to_etcd_error(exc))

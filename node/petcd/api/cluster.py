"""etcdserverpb.Cluster: membership changes through Raft conf changes, checked first as etcd does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from petcd.api.rpc import Context, unary
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer


class ClusterService(rpc_pb2_grpc.ClusterServicer):
    def __init__(self, server: EtcdServer) -> None:
        self.server = server

    @unary
    async def MemberAdd(self, request: pb.MemberAddRequest, context: Context) -> pb.MemberAddResponse:
        return await self.server.member_add(request)

    @unary
    async def MemberRemove(
        self, request: pb.MemberRemoveRequest, context: Context
    ) -> pb.MemberRemoveResponse:
        return await self.server.member_remove(request)

    @unary
    async def MemberUpdate(
        self, request: pb.MemberUpdateRequest, context: Context
    ) -> pb.MemberUpdateResponse:
        return await self.server.member_update(request)

    @unary
    async def MemberPromote(
        self, request: pb.MemberPromoteRequest, context: Context
    ) -> pb.MemberPromoteResponse:
        return await self.server.member_promote(request)

    @unary
    async def MemberList(self, request: pb.MemberListRequest, context: Context) -> pb.MemberListResponse:
        return await self.server.member_list(request.linearizable)

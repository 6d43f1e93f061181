"""etcdserverpb.Cluster. MemberAdd/Remove/Update/Promote come with runtime reconfiguration; until
then the generated base class answers them with gRPC's UNIMPLEMENTED."""

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
    async def MemberList(self, request: pb.MemberListRequest, context: Context) -> pb.MemberListResponse:
        return await self.server.member_list(request.linearizable)

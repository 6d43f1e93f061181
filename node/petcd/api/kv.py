"""etcdserverpb.KV: checks the request, then hands it to the server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from petcd.api import validate
from petcd.api.rpc import Context, unary
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer


class KVService(rpc_pb2_grpc.KVServicer):
    def __init__(self, server: EtcdServer) -> None:
        self.server = server

    @unary
    async def Range(self, request: pb.RangeRequest, context: Context) -> pb.RangeResponse:
        validate.check_range(request)
        return await self.server.range(request)

    @unary
    async def Put(self, request: pb.PutRequest, context: Context) -> pb.PutResponse:
        validate.check_put(request)
        return await self.server.put(request)

    @unary
    async def DeleteRange(self, request: pb.DeleteRangeRequest, context: Context) -> pb.DeleteRangeResponse:
        validate.check_delete(request)
        return await self.server.delete_range(request)

    @unary
    async def Txn(self, request: pb.TxnRequest, context: Context) -> pb.TxnResponse:
        validate.check_txn(request, self.server.max_txn_ops)
        return await self.server.txn(request)

    @unary
    async def Compact(self, request: pb.CompactionRequest, context: Context) -> pb.CompactionResponse:
        return await self.server.compact(request)

"""etcdserverpb.Maintenance: status, alarms, hashes, defragmentation, snapshots, leader transfer."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from petcd.api.rpc import Context, unary
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

SNAPSHOT_CHUNK = 32 * 1024  # etcd's snapshot blob size


class MaintenanceService(rpc_pb2_grpc.MaintenanceServicer):
    def __init__(self, server: EtcdServer) -> None:
        self.server = server

    @unary
    async def Status(self, request: pb.StatusRequest, context: Context) -> pb.StatusResponse:
        return self.server.status()

    @unary
    async def Alarm(self, request: pb.AlarmRequest, context: Context) -> pb.AlarmResponse:
        return await self.server.alarm(request)

    @unary
    async def Hash(self, request: pb.HashRequest, context: Context) -> pb.HashResponse:
        return await self.server.hash()

    @unary
    async def HashKV(self, request: pb.HashKVRequest, context: Context) -> pb.HashKVResponse:
        return await self.server.hash_kv(request.revision)

    @unary
    async def Defragment(self, request: pb.DefragmentRequest, context: Context) -> pb.DefragmentResponse:
        await self.server.defragment()
        return pb.DefragmentResponse()  # etcd 3.5 sends no header here

    @unary
    async def MoveLeader(self, request: pb.MoveLeaderRequest, context: Context) -> pb.MoveLeaderResponse:
        await self.server.move_leader(request.targetID)
        return pb.MoveLeaderResponse()

    async def Snapshot(
        self, request: pb.SnapshotRequest, context: Context
    ) -> AsyncIterator[pb.SnapshotResponse]:
        # Blobs of 32 KiB, then a last message whose blob is the SHA-256 of everything sent before.
        data = await self.server.backend_snapshot()
        digest = hashlib.sha256()
        total = len(data)
        for offset in range(0, total, SNAPSHOT_CHUNK):
            blob = data[offset : offset + SNAPSHOT_CHUNK]
            digest.update(blob)
            yield pb.SnapshotResponse(remaining_bytes=total - offset - len(blob), blob=blob)
        yield pb.SnapshotResponse(remaining_bytes=0, blob=digest.digest())

"""gRPC stubs of etcd's v3 API (petcd's generated modules) for each member of a cluster."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from petcd.proto import rpc_pb2_grpc

# etcd's clients ask for this so that a member cut off from the leader refuses watches instead of
# leaving them silent (etcd's WithRequireLeader); a server that does not know it ignores it.
REQUIRE_LEADER = (("hasleader", "true"),)


@dataclass(frozen=True)
class Stubs:
    """The services of one member."""

    target: str
    kv: rpc_pb2_grpc.KVStub
    watch: rpc_pb2_grpc.WatchStub
    lease: rpc_pb2_grpc.LeaseStub
    maintenance: rpc_pb2_grpc.MaintenanceStub


class Connections:
    """One channel per member, shared by every thread; `close` closes them all."""

    def __init__(self, client_urls: Sequence[str]):
        self._channels: list[grpc.Channel] = []
        self.members: list[Stubs] = []
        for url in client_urls:
            target = url.removeprefix("http://")
            # Test traffic is local: never through a proxy from the environment.
            channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])
            self._channels.append(channel)
            self.members.append(
                Stubs(
                    target,
                    rpc_pb2_grpc.KVStub(channel),  # type: ignore[no-untyped-call]
                    rpc_pb2_grpc.WatchStub(channel),  # type: ignore[no-untyped-call]
                    rpc_pb2_grpc.LeaseStub(channel),  # type: ignore[no-untyped-call]
                    rpc_pb2_grpc.MaintenanceStub(channel),  # type: ignore[no-untyped-call]
                )
            )

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

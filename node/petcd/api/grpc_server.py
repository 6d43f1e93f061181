"""The gRPC server of the client port: etcd's services plus grpc.health.v1, on a private unix socket
that the client-port multiplexer splices HTTP/2 connections into."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from petcd.api.auth import AuthInterceptor, AuthService
from petcd.api.cluster import ClusterService
from petcd.api.kv import KVService
from petcd.api.lease import LeaseService
from petcd.api.maintenance import MaintenanceService
from petcd.api.watch import WatchService
from petcd.proto import health_pb2, health_pb2_grpc, rpc_pb2_grpc
from petcd.security.identity import ClientIdentities

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer
    from petcd.server.watch_stream import WatchDispatcher

GRPC_OVERHEAD_BYTES = 512 * 1024  # etcd: max receive = --max-request-bytes + 512 KiB
MAX_SEND_BYTES = 2**31 - 1


class HealthService(health_pb2_grpc.HealthServicer):
    """Overall service "" is SERVING while the server runs (etcd's grpc health server)."""

    def __init__(self) -> None:
        self.serving = True

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in ("", "etcdserverpb.KV"):
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        answer = health_pb2.HealthCheckResponse
        return answer(status=answer.SERVING if self.serving else answer.NOT_SERVING)


def build_grpc_server(
    server: EtcdServer,
    hub: WatchDispatcher,
    max_request_bytes: int,
    identities: ClientIdentities | None = None,
    client_cert_auth: bool = False,
) -> grpc.aio.Server:
    """`identities`/`client_cert_auth`: the client port's TLS clients, whose certificate CN is their
    auth user with --client-cert-auth."""
    auth = server.state.auth
    gate = AuthInterceptor(auth, server.state.lease_keys, server.header, client_cert_auth, identities)
    g = grpc.aio.server(
        interceptors=[gate],
        options=[
            ("grpc.max_receive_message_length", max_request_bytes + GRPC_OVERHEAD_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ("grpc.max_concurrent_streams", 2**31 - 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
    )
    add = rpc_pb2_grpc
    add.add_KVServicer_to_server(KVService(server), g)  # type: ignore[no-untyped-call]
    add.add_WatchServicer_to_server(WatchService(server, hub), g)  # type: ignore[no-untyped-call]
    add.add_LeaseServicer_to_server(LeaseService(server), g)  # type: ignore[no-untyped-call]
    add.add_ClusterServicer_to_server(ClusterService(server), g)  # type: ignore[no-untyped-call]
    add.add_MaintenanceServicer_to_server(MaintenanceService(server), g)  # type: ignore[no-untyped-call]
    add.add_AuthServicer_to_server(AuthService(server, auth), g)  # type: ignore[no-untyped-call]
    health_pb2_grpc.add_HealthServicer_to_server(HealthService(), g)  # type: ignore[no-untyped-call]
    return g

"""The client port serves gRPC and HTTP/1.1 on one TCP listener."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest
import uvloop
from aiohttp import web
from petcd.api.mux import ClientListener
from petcd.proto import health_pb2, health_pb2_grpc


class _Health(health_pb2_grpc.HealthServicer):
    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _hello(request: web.BaseRequest) -> web.StreamResponse:
    body = await request.read()
    return web.Response(text=f"{request.method} {request.path} {len(body)}")


async def _exercise(tmp: Path) -> None:
    sock = str(tmp / "grpc.sock")
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(_Health(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"unix:{sock}")
    await server.start()
    http = web.Server(_hello)
    listener = ClientListener("127.0.0.1", 0, sock, http)
    await listener.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{listener.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
            answers = await asyncio.gather(*(stub.Check(health_pb2.HealthCheckRequest()) for _ in range(50)))
            assert {a.status for a in answers} == {health_pb2.HealthCheckResponse.SERVING}
        # grpcio's blocking client: its first frames race the splice being set up (a regression).
        def blocking_check() -> int:
            with grpc.insecure_channel(f"127.0.0.1:{listener.port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
                return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status)

        statuses = await asyncio.gather(*(asyncio.to_thread(blocking_check) for _ in range(4)))
        assert statuses == [health_pb2.HealthCheckResponse.SERVING] * 4
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{listener.port}/health") as resp:
                assert resp.status == 200
                assert await resp.text() == "GET /health 0"
            big = b"x" * 300_000  # larger than any socket buffer: exercises the hand-over with data
            async with session.post(f"http://127.0.0.1:{listener.port}/v2/keys/a", data=big) as resp:
                assert await resp.text() == f"POST /v2/keys/a {len(big)}"
    finally:
        await listener.stop()
        await server.stop(None)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_grpc_and_http_share_the_client_port(loop: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if loop == "uvloop":
            uvloop.run(_exercise(Path(tmp)))
        else:
            asyncio.run(_exercise(Path(tmp)))

"""The client port serves gRPC and HTTP/1.1 on one TCP listener."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest
import uvloop
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
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


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "petcd-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def _exercise(tmp: Path, tls: bool = False) -> None:
    sock = str(tmp / "grpc.sock")
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(_Health(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"unix:{sock}")
    await server.start()
    http = web.Server(_hello)
    server_ctx: ssl.SSLContext | None = None
    client_ctx: ssl.SSLContext | None = None
    credentials = None
    if tls:
        cert, key = _self_signed(tmp)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        server_ctx.set_alpn_protocols(["h2", "http/1.1"])
        client_ctx = ssl.create_default_context(cafile=str(cert))
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    listener = ClientListener("127.0.0.1", 0, sock, http, server_ctx)
    await listener.start()
    target = f"127.0.0.1:{listener.port}"
    scheme = "https" if tls else "http"

    def channel() -> grpc.aio.Channel:
        if credentials is not None:
            return grpc.aio.secure_channel(target, credentials)
        return grpc.aio.insecure_channel(target)

    try:
        async with channel() as channel_:
            stub = health_pb2_grpc.HealthStub(channel_)  # type: ignore[no-untyped-call]
            answers = await asyncio.gather(*(stub.Check(health_pb2.HealthCheckRequest()) for _ in range(50)))
            assert {a.status for a in answers} == {health_pb2.HealthCheckResponse.SERVING}
        # grpcio's blocking client: its first frames race the splice being set up (a regression).
        def blocking_check() -> int:
            if credentials is not None:
                opened = grpc.secure_channel(target, credentials)
            else:
                opened = grpc.insecure_channel(target)
            with opened as blocking:
                stub = health_pb2_grpc.HealthStub(blocking)  # type: ignore[no-untyped-call]
                return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status)

        statuses = await asyncio.gather(*(asyncio.to_thread(blocking_check) for _ in range(4)))
        assert statuses == [health_pb2.HealthCheckResponse.SERVING] * 4
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{scheme}://{target}/health", ssl=client_ctx or False) as resp:
                assert resp.status == 200
                assert await resp.text() == "GET /health 0"
            big = b"x" * 300_000  # larger than any socket buffer: exercises the hand-over with data
            url = f"{scheme}://{target}/v2/keys/a"
            async with session.post(url, data=big, ssl=client_ctx or False) as resp:
                assert await resp.text() == f"POST /v2/keys/a {len(big)}"
    finally:
        await listener.stop()
        await server.stop(None)


@pytest.mark.parametrize(("loop", "tls"), [("asyncio", False), ("uvloop", False), ("uvloop", True)])
def test_grpc_and_http_share_the_client_port(loop: str, tls: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if loop == "uvloop":
            uvloop.run(_exercise(Path(tmp), tls))
        else:
            asyncio.run(_exercise(Path(tmp), tls))

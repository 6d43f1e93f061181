"""The client port: one TCP listener serving gRPC (HTTP/2) and HTTP/1.1, as etcd's cmux does.

Each accepted connection is sniffed: if its first bytes are the HTTP/2 client preface it is spliced
to the gRPC server (which listens on a private unix socket, since grpcio cannot adopt a socket);
anything else is handed, with the bytes already read, to an HTTP/1.1 protocol (aiohttp's low-level
server) on the same transport — no copy for HTTP/1.1. The splice is two asyncio Protocols writing
straight into each other's transports with flow control, the cheapest pump asyncio offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import cast

from petcd.security.identity import ClientIdentities, common_name
from petcd.server.background import Background

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

ProtocolFactory = Callable[[], asyncio.Protocol]


class _Splice(asyncio.Protocol):
    """Copies what arrives on one transport into `peer`; stops reading while `peer` is congested."""

    def __init__(
        self, peer: asyncio.Transport | None = None, on_lost: Callable[[], None] | None = None
    ) -> None:
        self.peer = peer
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            self.peer.write(data)

    def eof_received(self) -> bool | None:
        if self.peer is not None and self.peer.can_write_eof():
            self.peer.write_eof()
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._on_lost is not None:
            self._on_lost()
        if self.peer is not None:
            self.peer.close()

    # Our transport's write buffer is full: stop reading from the side that fills it.
    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_reading()


class _Sniffer(asyncio.Protocol):
    """Reads until it can tell HTTP/2 from HTTP/1.1, then hands the connection over."""

    def __init__(
        self,
        grpc_unix_path: str,
        http_factory: ProtocolFactory,
        splices: Background,
        identities: ClientIdentities | None = None,
    ) -> None:
        self._grpc_unix_path = grpc_unix_path
        self._identities = identities
        self._splices = splices
        self._http_factory = http_factory
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        head = self._buffer[: len(HTTP2_PREFACE)]
        if not HTTP2_PREFACE.startswith(head):
            self._to_http()
        elif len(head) == len(HTTP2_PREFACE):
            self._to_grpc()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def _to_http(self) -> None:
        transport = self._transport
        assert transport is not None
        protocol = self._http_factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(self._buffer)
        self._buffer = b""

    def _to_grpc(self) -> None:
        transport = self._transport
        assert transport is not None
        transport.pause_reading()
        self._splices.spawn(self._splice_to_grpc(transport, self._buffer))
        self._buffer = b""

    async def _splice_to_grpc(self, client: asyncio.Transport, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            # The peer is known before the connection exists: gRPC's first frames may arrive
            # before this coroutine resumes, and must not be dropped.
            cn = common_name(client.get_extra_info("peercert")) if self._identities is not None else ""
            if self._identities is not None and cn:
                # A verified client certificate: gRPC learns its CN from the address we connect from.
                identities = self._identities
                sock, address = await identities.connect(self._grpc_unix_path, cn)
                upstream, _ = await loop.create_unix_connection(
                    lambda: _Splice(client, lambda: identities.forget(address)), sock=sock
                )
            else:
                upstream, _ = await loop.create_unix_connection(lambda: _Splice(client), self._grpc_unix_path)
        except OSError:
            client.close()
            return
        to_upstream = _Splice(upstream)
        to_upstream.transport = client
        client.set_protocol(to_upstream)
        upstream.write(first)
        if client.is_closing():
            upstream.close()
            return
        client.resume_reading()


class ClientListener:
    """One --listen-client-urls entry. With `ssl_context` (https) TLS ends here and the sniffing and
    splicing see plaintext; the context must offer ALPN "h2" (gRPC clients insist) and "http/1.1"."""

    def __init__(
        self,
        host: str,
        port: int,
        grpc_unix_path: str,
        http_factory: ProtocolFactory,
        ssl_context: ssl.SSLContext | None = None,
        identities: ClientIdentities | None = None,
    ) -> None:
        self.host = host
        self._ssl = ssl_context
        self._identities = identities if ssl_context is not None else None
        self.port = port
        self._grpc_unix_path = grpc_unix_path
        self._http_factory = http_factory
        self._server: asyncio.Server | None = None
        self._splices = Background()  # connections being wired to gRPC

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Sniffer(self._grpc_unix_path, self._http_factory, self._splices, self._identities),
            self.host,
            self.port,
            reuse_address=True,
            ssl=self._ssl,
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self._splices.stop()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

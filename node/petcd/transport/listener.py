"""The peer port: one listener serving petcd's Raft streams and etcd's HTTP/1.1 peer endpoints.

Each accepted connection is sniffed by its first byte: a Raft stream starts with PREFACE, whose first
byte is NUL and so never starts an HTTP request; anything else is handed, with the byte already read,
to the HTTP protocol (aiohttp's low-level server: `/members`, `/version`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import cast

from petcd.transport.frames import PREFACE
from petcd.transport.transport import Transport

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class _Sniffer(asyncio.Protocol):
    def __init__(self, transport: Transport, http_factory: ProtocolFactory | None) -> None:
        self._peer_transport = transport
        self._http_factory = http_factory
        self._connection: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but behave as one.
        self._connection = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        connection = self._connection
        if connection is None or not data:
            return
        self._connection = None
        if data[:1] == PREFACE[:1]:
            reader = asyncio.StreamReader(limit=2**16)
            protocol: asyncio.BaseProtocol = asyncio.StreamReaderProtocol(
                reader, self._peer_transport.serve_connection)
        elif self._http_factory is not None:
            protocol = self._http_factory()
        else:
            connection.close()
            return
        connection.set_protocol(protocol)
        protocol.connection_made(connection)
        cast(asyncio.Protocol, protocol).data_received(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection = None


class PeerListener:
    """One --listen-peer-urls entry (plain TCP; TLS comes later)."""

    def __init__(self, transport: Transport, host: str, port: int,
                 http_factory: ProtocolFactory | None = None) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self._http_factory = http_factory
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Sniffer(self.transport, self._http_factory),
                                                self.host, self.port, reuse_address=True)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

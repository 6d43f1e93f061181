"""The peer transport: this member's outbound peers and the inbound side of the peer port.

    transport = Transport(member_id, cluster_id, handler, metrics=metrics)
    transport.add_peer(peer_id, ["http://10.0.0.2:2380"])
    transport.send(ready.messages)               # never blocks; drops and reports when a queue is full
    await transport.serve_connection(reader, writer)   # for each raft connection the listener accepts

Inbound connections are checked before any message is read: the dialler must name this member and
this cluster (etcd refuses a cluster ID mismatch the same way), and must not be a removed member.
Garbage, truncated or oversized frames end that one connection with a log line; nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Iterable, Sequence

from petcd.log import get_logger
from petcd.metrics import Metrics
from petcd.raft.types import Message, MessageType
from petcd.transport import codec
from petcd.transport.frames import (
    PREFACE,
    Frame,
    FrameError,
    Hello,
    Kind,
    Stream,
    decode_snapshot_begin,
    encode_frame,
    encode_reject,
    read_frame,
)
from petcd.transport.peer import CLUSTER_ID_MISMATCH, REMOVED_REASON, Handler, Local, Peer, Settings

log = get_logger("transport")

TO_FIELD_MISMATCH = "to field mismatch"
SENDER_NOT_FOUND = "error sender not found"
HANDSHAKE_TIMEOUT = 5.0
# A sender pings every few seconds (Settings.ping_interval); a stream silent for this long is dead.
INBOUND_IDLE_TIMEOUT = 60.0


class Transport:
    """Sends Raft messages to peers and receives theirs."""

    def __init__(self, member_id: int, cluster_id: int, handler: Handler, *, metrics: Metrics | None = None,
                 settings: Settings | None = None) -> None:
        self.member_id = member_id
        self.cluster_id = cluster_id
        self.handler = handler
        self.metrics = metrics
        self.settings = settings or Settings()
        self.peers: dict[int, Peer] = {}
        self._local = Local(member_id, lambda: self.cluster_id)
        self._inbound: set[asyncio.StreamWriter] = set()
        self._stopping: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ peers

    def add_peer(self, peer_id: int, urls: Sequence[str]) -> None:
        """Start sending to a member (at bootstrap, and when a conf change adds one). Idempotent."""
        if peer_id == self.member_id:
            return
        if peer_id in self.peers:
            self.peers[peer_id].update_urls(urls)
            return
        peer = Peer(self._local, peer_id, urls, self.handler, self.metrics, self.settings)
        self.peers[peer_id] = peer
        peer.start()

    def update_peer(self, peer_id: int, urls: Sequence[str]) -> None:
        if peer_id in self.peers:
            self.peers[peer_id].update_urls(urls)

    def remove_peer(self, peer_id: int) -> None:
        peer = self.peers.pop(peer_id, None)
        if peer is not None:
            task = asyncio.get_running_loop().create_task(peer.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    def send(self, messages: Iterable[Message]) -> None:
        """Queue each message for its peer; a message that cannot be queued is dropped and reported."""
        for message in messages:
            peer = self.peers.get(message.to)
            if peer is not None and peer.send(message):
                continue
            to = f"{message.to:x}"
            if self.metrics is not None:
                self.metrics.peer_sent_failures.labels(To=to).inc()
                if message.type == MessageType.MsgHeartbeat:
                    self.metrics.heartbeat_send_failures.inc()
            log.debug("dropped internal Raft message", type=message.type.name, **{"remote-peer-id": to})
            if message.type == MessageType.MsgSnap:
                self.handler.report_snapshot(message.to, False)
            self.handler.report_unreachable(message.to)

    def is_active(self, peer_id: int) -> bool:
        peer = self.peers.get(peer_id)
        return peer is not None and peer.connected

    async def stop(self) -> None:
        peers, self.peers = list(self.peers.values()), {}
        await asyncio.gather(*(peer.stop() for peer in peers), *self._stopping, return_exceptions=True)
        for writer in list(self._inbound):
            writer.close()

    # ------------------------------------------------------------ inbound

    def _verdict(self, hello: Hello) -> str:
        """'' to accept, else etcd's reason for refusing."""
        if hello.cluster_id != self.cluster_id:
            log.error("request cluster ID mismatch", **{
                "local-member-id": f"{self.member_id:x}", "local-member-cluster-id": f"{self.cluster_id:x}",
                "remote-peer-id": f"{hello.sender_id:x}", "remote-peer-cluster-id": f"{hello.cluster_id:x}"})
            return CLUSTER_ID_MISMATCH
        if self.handler.is_removed(hello.sender_id):
            log.warn("rejected stream from remote peer because it was removed",
                     **{"local-member-id": f"{self.member_id:x}", "remote-peer-id": f"{hello.sender_id:x}"})
            return REMOVED_REASON
        if hello.receiver_id != self.member_id:
            log.warn("ignored streaming request; ID mismatch", **{
                "local-member-id": f"{self.member_id:x}", "remote-peer-id-header": f"{hello.receiver_id:x}"})
            return TO_FIELD_MISMATCH
        if hello.sender_id not in self.peers:
            log.warn("failed to find remote peer in cluster", **{
                "local-member-id": f"{self.member_id:x}", "remote-peer-id": f"{hello.sender_id:x}"})
            return SENDER_NOT_FOUND
        return ""

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One inbound peer connection, from its preface to its end."""
        self._inbound.add(writer)
        sender = "unknown"
        try:
            preface = await asyncio.wait_for(reader.readexactly(len(PREFACE)), HANDSHAKE_TIMEOUT)
            if preface != PREFACE:
                raise FrameError("not a petcd peer connection")
            frame = await asyncio.wait_for(read_frame(reader), HANDSHAKE_TIMEOUT)
            if frame.kind is not Kind.HELLO:
                raise FrameError(f"expected HELLO, got {frame.kind.name}")
            hello = Hello.decode(frame.payload)
            sender = f"{hello.sender_id:x}"
            reason = self._verdict(hello)
            if reason:
                writer.write(encode_frame(Kind.REJECT, encode_reject(reason, self.cluster_id)))
                await writer.drain()
                return
            writer.write(encode_frame(Kind.ACCEPT))
            await writer.drain()
            if hello.stream is Stream.SNAPSHOT:
                await self._receive_snapshot(reader, writer, sender)
            else:
                await self._receive_messages(reader, writer, sender)
        except asyncio.IncompleteReadError:
            log.debug("peer connection closed", **{"remote-peer-id": sender})
        except (FrameError, codec.CodecError, TimeoutError, OSError) as exc:
            self._receive_failed(sender, exc)
        except Exception as exc:  # a bug must cost one connection, never the listener
            self._receive_failed(sender, exc)
            log.exception("unexpected error on a peer connection", **{"remote-peer-id": sender})
        finally:
            self._inbound.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _receive_failed(self, sender: str, exc: BaseException) -> None:
        log.warn("dropped a peer connection", **{"remote-peer-id": sender},
                 error=f"{type(exc).__name__}: {exc}")
        if self.metrics is not None:
            self.metrics.peer_received_failures.labels(From=sender).inc()

    async def _deliver(self, message: Message) -> None:
        result = self.handler.process(message)
        if inspect.isawaitable(result):
            await result

    def _count_received(self, sender: str, frame: Frame) -> None:
        if self.metrics is not None:
            self.metrics.peer_received_bytes.labels(From=sender).inc(len(frame.payload) + 5)

    async def _receive_messages(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                sender: str) -> None:
        while True:
            frame = await asyncio.wait_for(read_frame(reader), INBOUND_IDLE_TIMEOUT)
            self._count_received(sender, frame)
            if frame.kind is Kind.MESSAGE:
                message = codec.decode(frame.payload)
                if message.to != self.member_id:
                    raise FrameError(f"message for {message.to:x} on a stream to {self.member_id:x}")
                await self._deliver(message)
            elif frame.kind is Kind.PING:
                writer.write(encode_frame(Kind.PONG, frame.payload))
            else:
                raise FrameError(f"unexpected {frame.kind.name} frame on the message stream")

    async def _receive_snapshot(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                sender: str) -> None:
        begin = await read_frame(reader)
        if begin.kind is not Kind.SNAPSHOT_BEGIN:
            raise FrameError(f"expected SNAPSHOT_BEGIN, got {begin.kind.name}")
        size, header = decode_snapshot_begin(begin.payload)
        data = bytearray()
        while True:
            frame = await read_frame(reader)
            self._count_received(sender, frame)
            if frame.kind is Kind.SNAPSHOT_END:
                break
            if frame.kind is not Kind.SNAPSHOT_CHUNK or len(data) + len(frame.payload) > size:
                raise FrameError(f"unexpected {frame.kind.name} frame in a snapshot of {size} bytes")
            data += frame.payload
        if len(data) != size:
            raise FrameError(f"snapshot truncated: {len(data)} of {size} bytes")
        message = codec.decode(header, snapshot_data=bytes(data))
        if message.type != MessageType.MsgSnap or message.snapshot is None:
            raise FrameError(f"{message.type.name} on a snapshot stream")
        log.info("received database snapshot", **{"remote-peer-id": sender}, bytes=size,
                 index=message.snapshot.metadata.index)
        await self._deliver(message)
        writer.write(encode_frame(Kind.SNAPSHOT_DONE))
        await writer.drain()

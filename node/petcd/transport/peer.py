"""One remote member, as this member sends to it: a dialled connection, a bounded queue, a snapshot path.

The message stream is one TCP connection per direction (the remote member dials us for its own
messages). The connection is (re)dialled with exponential backoff; messages that cannot be queued
(the queue is full) or that were queued when the connection broke are dropped and the Raft core is
told the peer is unreachable, so it probes instead of streaming. A MsgSnap travels on a connection of
its own, in chunks, and its outcome is reported with report_snapshot, as etcd does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from petcd.cancellation import cancel_and_wait
from petcd.log import get_logger
from petcd.metrics import Metrics
from petcd.raft.types import Message, MessageType
from petcd.transport import codec
from petcd.transport.frames import (
    PREFACE,
    SNAPSHOT_CHUNK_BYTES,
    FrameError,
    Hello,
    Kind,
    Stream,
    decode_reject,
    encode_frame,
    encode_snapshot_begin,
    read_frame,
)

log = get_logger("transport")


class Handler(Protocol):
    """What the transport calls on the member that owns it (the server's Raft loop)."""

    def process(self, message: Message) -> Awaitable[None] | None:
        """A message from a peer, for RawNode.step; may be a coroutine (it is awaited before the next)."""
        ...

    def report_unreachable(self, peer_id: int) -> None: ...

    def report_snapshot(self, peer_id: int, ok: bool) -> None: ...

    def is_removed(self, peer_id: int) -> bool:
        """Whether `peer_id` was removed from the cluster (its connections are refused)."""
        ...

    def removed_from_cluster(self) -> None:
        """A peer refused this member because the cluster removed it (etcd then stops the member)."""
        ...


@dataclass(frozen=True)
class Settings:
    queue_size: int = 4096            # messages waiting per peer; etcd's streams buffer 4096 too
    dial_timeout: float = 1.0
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    snapshot_timeout: float = 300.0   # from the last chunk sent to the receiver's acknowledgement
    ping_interval: float = 5.0        # round-trip-time probes on an idle or busy stream
    max_batch: int = 512              # messages written with one drain


REMOVED_REASON = "the member has been permanently removed from the cluster"
CLUSTER_ID_MISMATCH = "cluster ID mismatch"


class PeerRejected(Exception):
    """The remote member refused the connection; the text is its reason."""

    def __init__(self, reason: str, remote_cluster_id: str = "") -> None:
        super().__init__(reason)
        self.remote_cluster_id = remote_cluster_id


@dataclass(frozen=True)
class Local:
    """This member, as it presents itself to peers."""

    member_id: int
    cluster_id: Callable[[], int]


def _tcp_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 2380


async def dial(url: str, local: Local, peer_id: int, stream: Stream, timeout: float
               ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to `url`, introduce ourselves, and wait for the peer's verdict."""
    host, port = _tcp_address(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(PREFACE + Hello(local.cluster_id(), local.member_id, peer_id, stream).encode())
        await writer.drain()
        frame = await asyncio.wait_for(read_frame(reader), timeout)
        if frame.kind is Kind.REJECT:
            raise PeerRejected(*decode_reject(frame.payload))
        if frame.kind is not Kind.ACCEPT:
            raise FrameError(f"expected ACCEPT, got {frame.kind.name}")
    except BaseException:
        writer.close()
        raise
    return reader, writer


DIAL_ERRORS = (OSError, TimeoutError, PeerRejected, FrameError, asyncio.IncompleteReadError)


class Peer:
    """Sends this member's messages to one remote member."""

    def __init__(self, local: Local, peer_id: int, urls: Sequence[str], handler: Handler,
                 metrics: Metrics | None, settings: Settings) -> None:
        self.local = local
        self.peer_id = peer_id
        self.urls = tuple(urls)
        self.handler = handler
        self.metrics = metrics
        self.settings = settings
        self.connected = False
        self._queue: asyncio.Queue[Message] = asyncio.Queue(settings.queue_size)
        self._task: asyncio.Task[None] | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self._next_url = 0
        self._rejection_logged = ""

    @property
    def _hex(self) -> str:
        return f"{self.peer_id:x}"

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"peer-{self._hex}")

    def update_urls(self, urls: Sequence[str]) -> None:
        self.urls = tuple(urls)
        self._next_url = 0

    def send(self, message: Message) -> bool:
        """Queue a message; False when it was dropped (queue full, or a snapshot already in flight)."""
        if message.type == MessageType.MsgSnap:
            if self._snapshot_task is not None and not self._snapshot_task.done():
                return False
            self._snapshot_task = asyncio.get_running_loop().create_task(self._send_snapshot(message))
            return True
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    async def stop(self) -> None:
        await cancel_and_wait(t for t in (self._task, self._snapshot_task) if t is not None)
        self._set_connected(False)

    # ------------------------------------------------------------ the message stream

    async def _dial_any(self, stream: Stream) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Try each advertised URL, starting with the last one that worked."""
        error: BaseException = OSError(f"no peer URLs for {self._hex}")
        for attempt in range(len(self.urls)):
            url = self.urls[(self._next_url + attempt) % len(self.urls)]
            try:
                connection = await dial(url, self.local, self.peer_id, stream, self.settings.dial_timeout)
            except PeerRejected:
                raise
            except DIAL_ERRORS as exc:
                error = exc
                continue
            self._next_url = (self._next_url + attempt) % len(self.urls)
            return connection
        raise error

    async def _run(self) -> None:
        backoff = self.settings.backoff_initial
        while True:
            try:
                reader, writer = await self._dial_any(Stream.MESSAGES)
            except DIAL_ERRORS as exc:
                self._connection_failed(exc)
                await asyncio.sleep(self.settings.backoff_max if isinstance(exc, PeerRejected) else backoff)
                backoff = min(backoff * 2, self.settings.backoff_max)
                continue
            backoff = self.settings.backoff_initial
            self._rejection_logged = ""
            self._set_connected(True)
            log.info("established a TCP streaming connection with remote peer",
                     **{"remote-peer-id": self._hex})
            try:
                await self._pump(reader, writer)
            except (OSError, FrameError, asyncio.IncompleteReadError) as exc:
                log.warn("lost TCP streaming connection with remote peer", **{"remote-peer-id": self._hex},
                         error=str(exc) or type(exc).__name__)
            finally:
                writer.close()
                self._set_connected(False)
                self._drop_queued()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks = [asyncio.create_task(self._write_loop(writer)), asyncio.create_task(self._read_loop(reader)),
                 asyncio.create_task(self._ping_loop(writer))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise the failure that ended the stream
            raise asyncio.IncompleteReadError(b"", None)  # the peer closed the stream
        finally:
            await cancel_and_wait(tasks)

    async def _write_loop(self, writer: asyncio.StreamWriter) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.settings.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            data = b"".join(encode_frame(Kind.MESSAGE, codec.encode(message)) for message in batch)
            writer.write(data)
            await writer.drain()
            if self.metrics is not None:
                self.metrics.peer_sent_bytes.labels(To=self._hex).inc(len(data))

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        """The listener only answers pings on this stream; EOF, silence or anything else ends it.

        Silence: a peer that stopped answering pings (frozen, or cut off without a reset) is given up
        after a few ping intervals, so the stream is redialled instead of waiting on TCP."""
        silence = self.settings.ping_interval * 4 + self.settings.dial_timeout
        while True:
            try:
                frame = await asyncio.wait_for(read_frame(reader), silence)
            except TimeoutError:
                raise OSError(f"no answer to pings for {silence:.1f} s") from None
            if frame.kind is not Kind.PONG or len(frame.payload) != 8:
                raise FrameError(f"unexpected {frame.kind.name} frame on the message stream")
            sent_ns = int.from_bytes(frame.payload, "big")
            if self.metrics is not None:
                rtt = (time.monotonic_ns() - sent_ns) / 1e9
                self.metrics.peer_round_trip_time.labels(To=self._hex).observe(rtt)

    async def _ping_loop(self, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(encode_frame(Kind.PING, time.monotonic_ns().to_bytes(8, "big")))
            await writer.drain()
            await asyncio.sleep(self.settings.ping_interval)

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        if self.metrics is not None:
            self.metrics.active_peers.labels(Local=f"{self.local.member_id:x}", Remote=self._hex).set(
                1 if connected else 0)

    def _connection_failed(self, exc: BaseException) -> None:
        if isinstance(exc, PeerRejected):
            reason = str(exc)
            if reason != self._rejection_logged:  # once per reason, not once per retry
                self._rejection_logged = reason
                self._log_rejection(exc)
            if reason == REMOVED_REASON:
                self.handler.removed_from_cluster()
        else:
            log.debug("failed to dial remote peer", **{"remote-peer-id": self._hex}, error=str(exc))
        self._drop_queued()

    def _log_rejection(self, exc: PeerRejected) -> None:
        ids = {"remote-peer-id": self._hex, "remote-peer-cluster-id": exc.remote_cluster_id,
               "local-member-id": f"{self.local.member_id:x}",
               "local-member-cluster-id": f"{self.local.cluster_id():x}"}
        if str(exc) == CLUSTER_ID_MISMATCH:
            # etcd's line; the two cluster IDs tell which side holds another cluster's data
            log.warn("request sent was ignored by remote peer due to cluster ID mismatch", **ids,
                     error=CLUSTER_ID_MISMATCH)
        else:
            log.error("remote peer refused the connection", **ids, reason=str(exc))

    def _drop_queued(self) -> None:
        """Messages queued for a broken stream are stale: drop them and let Raft probe again."""
        dropped = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            dropped += 1
        if dropped and self.metrics is not None:
            self.metrics.peer_sent_failures.labels(To=self._hex).inc(dropped)
        self.handler.report_unreachable(self.peer_id)

    # ------------------------------------------------------------ snapshots

    async def _send_snapshot(self, message: Message) -> None:
        assert message.snapshot is not None
        data = message.snapshot.data
        ok = False
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await self._dial_any(Stream.SNAPSHOT)
            writer.write(encode_snapshot_begin(len(data), codec.encode(message, with_snapshot_data=False)))
            for offset in range(0, len(data), SNAPSHOT_CHUNK_BYTES):
                writer.write(encode_frame(Kind.SNAPSHOT_CHUNK, data[offset:offset + SNAPSHOT_CHUNK_BYTES]))
                await writer.drain()
            writer.write(encode_frame(Kind.SNAPSHOT_END))
            await writer.drain()
            frame = await asyncio.wait_for(read_frame(reader), self.settings.snapshot_timeout)
            ok = frame.kind is Kind.SNAPSHOT_DONE
            if self.metrics is not None:
                self.metrics.peer_sent_bytes.labels(To=self._hex).inc(len(data))
            log.info("sent database snapshot to remote peer", **{"remote-peer-id": self._hex},
                     bytes=len(data), index=message.snapshot.metadata.index, ok=ok)
        except (*DIAL_ERRORS, asyncio.IncompleteReadError) as exc:
            log.warn("failed to send database snapshot", **{"remote-peer-id": self._hex}, error=str(exc))
        finally:
            if writer is not None:
                writer.close()
            if not ok:
                if self.metrics is not None:
                    self.metrics.peer_sent_failures.labels(To=self._hex).inc()
                self.handler.report_unreachable(self.peer_id)
            self.handler.report_snapshot(self.peer_id, ok)

"""The peer wire format: length-prefixed frames after a fixed connection preface.

A peer connection starts with PREFACE (its first byte is NUL, so it can never be an HTTP/1.1 request:
the peer port serves both). Then frames, each

    +-----------------+--------+-------------------+
    | length (uint32) | kind   | payload (length)  |
    +-----------------+--------+-------------------+

big-endian, `length` counting the payload only. Each kind has its own size limit, so a corrupt or
hostile length is refused before anything is allocated. Payloads are raftpb protobuf or fixed
structs — never pickle. Everything here is pure except `read_frame`, which reads one frame from an
asyncio stream.
"""

from __future__ import annotations

import asyncio
import enum
import struct
from dataclasses import dataclass

PREFACE = b"\x00PETCD/1"
PROTOCOL_VERSION = 1
HEADER = struct.Struct("!IB")

MIB = 1024 * 1024
# A MsgApp carries at most max-size-per-msg of entries plus one entry of up to max-request-bytes; this
# is far above both, and far below what would hurt a member to allocate.
MAX_MESSAGE_BYTES = 64 * MIB
SNAPSHOT_CHUNK_BYTES = 1 * MIB
MAX_SNAPSHOT_BYTES = 16 * 1024 * MIB


class FrameError(Exception):
    """The bytes on a peer connection are not a valid frame (garbage, an oversized or unknown frame)."""


class Kind(enum.IntEnum):
    HELLO = 1           # dialer -> listener: HELLO struct
    ACCEPT = 2          # listener -> dialer: empty
    REJECT = 3          # listener -> dialer: utf-8 reason, "\n", listener's cluster ID in hex; then closes
    MESSAGE = 4         # raftpb.Message
    SNAPSHOT_BEGIN = 5  # uint64 data length + raftpb.Message without the snapshot's data
    SNAPSHOT_CHUNK = 6  # part of the snapshot's data
    SNAPSHOT_END = 7    # empty: the data is complete
    SNAPSHOT_DONE = 8   # listener -> dialer: empty; the member took the snapshot
    PING = 9            # 8-byte token, answered by PONG with the same token (round-trip time)
    PONG = 10


LIMITS = {
    Kind.HELLO: 64,
    Kind.ACCEPT: 0,
    Kind.REJECT: 4096,
    Kind.MESSAGE: MAX_MESSAGE_BYTES,
    Kind.SNAPSHOT_BEGIN: MAX_MESSAGE_BYTES,
    Kind.SNAPSHOT_CHUNK: SNAPSHOT_CHUNK_BYTES,
    Kind.SNAPSHOT_END: 0,
    Kind.SNAPSHOT_DONE: 0,
    Kind.PING: 8,
    Kind.PONG: 8,
}


class Stream(enum.IntEnum):
    """What a connection carries: the message stream, or one snapshot."""

    MESSAGES = 0
    SNAPSHOT = 1


@dataclass(frozen=True)
class Frame:
    kind: Kind
    payload: bytes = b""


def encode_frame(kind: Kind, payload: bytes = b"") -> bytes:
    if len(payload) > LIMITS[kind]:
        raise FrameError(f"{kind.name} frame of {len(payload)} bytes exceeds its limit of {LIMITS[kind]}")
    return HEADER.pack(len(payload), kind) + payload


def parse_header(header: bytes) -> tuple[Kind, int]:
    """(kind, payload length) of a frame header; FrameError when the kind or the length is invalid."""
    length, raw_kind = HEADER.unpack(header)
    try:
        kind = Kind(raw_kind)
    except ValueError:
        raise FrameError(f"unknown frame kind {raw_kind}") from None
    if length > LIMITS[kind]:
        raise FrameError(f"{kind.name} frame of {length} bytes exceeds its limit of {LIMITS[kind]}")
    return kind, length


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """The next frame; FrameError on garbage, asyncio.IncompleteReadError when the peer closed mid-frame."""
    kind, length = parse_header(await reader.readexactly(HEADER.size))
    payload = await reader.readexactly(length) if length else b""
    return Frame(kind, payload)


# ---------------------------------------------------------------- handshake

_HELLO = struct.Struct("!HBQQQ")


@dataclass(frozen=True)
class Hello:
    """Who dials whom, in which cluster, for what: checked by the listener before any message."""

    cluster_id: int
    sender_id: int
    receiver_id: int
    stream: Stream = Stream.MESSAGES
    version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        fields = _HELLO.pack(self.version, self.stream, self.cluster_id, self.sender_id, self.receiver_id)
        return encode_frame(Kind.HELLO, fields)

    @staticmethod
    def decode(payload: bytes) -> Hello:
        if len(payload) != _HELLO.size:
            raise FrameError(f"HELLO of {len(payload)} bytes, expected {_HELLO.size}")
        version, stream, cluster_id, sender_id, receiver_id = _HELLO.unpack(payload)
        if version != PROTOCOL_VERSION:
            raise FrameError(f"unsupported peer protocol version {version}")
        try:
            kind = Stream(stream)
        except ValueError:
            raise FrameError(f"unknown stream type {stream}") from None
        return Hello(cluster_id, sender_id, receiver_id, kind, version)


_SNAPSHOT_SIZE = struct.Struct("!Q")


def encode_reject(reason: str, cluster_id: int) -> bytes:
    """A refusal names the refusing member's cluster ID, as etcd's X-Etcd-Cluster-ID header does."""
    return f"{reason}\n{cluster_id:x}".encode()


def decode_reject(payload: bytes) -> tuple[str, str]:
    """(reason, the refusing member's cluster ID in hex, "" if it sent none)."""
    reason, _, cluster_id = payload.decode("utf-8", "replace").partition("\n")
    return reason, cluster_id


def encode_snapshot_begin(data_length: int, message_without_data: bytes) -> bytes:
    return encode_frame(Kind.SNAPSHOT_BEGIN, _SNAPSHOT_SIZE.pack(data_length) + message_without_data)


def decode_snapshot_begin(payload: bytes) -> tuple[int, bytes]:
    if len(payload) < _SNAPSHOT_SIZE.size:
        raise FrameError("SNAPSHOT_BEGIN too short")
    (length,) = _SNAPSHOT_SIZE.unpack_from(payload)
    if length > MAX_SNAPSHOT_BYTES:
        raise FrameError(f"snapshot of {length} bytes exceeds the limit of {MAX_SNAPSHOT_BYTES}")
    return length, payload[_SNAPSHOT_SIZE.size:]

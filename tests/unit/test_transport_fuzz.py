"""Whatever bytes a peer sends, the wire decoders answer with a value or their own error class."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st
from petcd.raft.types import Entry, Message, MessageType
from petcd.transport import codec
from petcd.transport.frames import (
    HEADER,
    FrameError,
    Hello,
    decode_snapshot_begin,
    parse_header,
    read_frame,
)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_codec_decode_never_raises_anything_else(data: bytes) -> None:
    try:
        message = codec.decode(data)
    except codec.CodecError:
        return
    assert codec.decode(codec.encode(message)) == message


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=HEADER.size, max_size=HEADER.size), st.binary(max_size=64))
def test_frame_decoders_never_raise_anything_else(header: bytes, payload: bytes) -> None:
    for decode, data in ((parse_header, header), (Hello.decode, payload), (decode_snapshot_begin, payload)):
        with contextlib.suppress(FrameError):
            decode(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_read_frame_on_any_stream(data: bytes) -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        for _ in range(50):
            try:
                await read_frame(reader)
            except (FrameError, asyncio.IncompleteReadError):
                return

    asyncio.run(scenario())


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(MessageType)), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
       st.lists(st.binary(max_size=20), max_size=4), st.binary(max_size=10))
def test_codec_round_trips_any_message(kind: MessageType, term: int, index: int, datas: list[bytes],
                                       context: bytes) -> None:
    message = Message(type=kind, to=2, frm=1, term=term, index=index, context=context,
                      entries=tuple(Entry(term=term, index=index, data=d) for d in datas))
    assert codec.decode(codec.encode(message)) == message

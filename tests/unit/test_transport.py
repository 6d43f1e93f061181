"""petcd.transport: members exchanging Raft messages over real loopback sockets."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import uvloop
from aiohttp import web
from petcd.metrics import Metrics
from petcd.raft.types import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from petcd.transport import codec
from petcd.transport.frames import (
    PREFACE,
    FrameError,
    Hello,
    Kind,
    Stream,
    encode_frame,
    parse_header,
    read_frame,
)
from petcd.transport.listener import PeerListener
from petcd.transport.peer import Settings
from petcd.transport.peer_http import (
    ClusterInfoError,
    MemberInfo,
    PromoteError,
    build_peer_app,
    fetch_cluster_info,
    promote_on_peer,
)
from petcd.transport.transport import Transport

CLUSTER = 0xCDF818194E3A8C32
FAST = Settings(dial_timeout=1.0, backoff_initial=0.02, backoff_max=0.2, ping_interval=0.05)


@dataclass
class Recorder:
    """The member side of a transport: records what the transport hands it."""

    messages: list[Message] = field(default_factory=list)
    unreachable: list[int] = field(default_factory=list)
    snapshots: list[tuple[int, bool]] = field(default_factory=list)
    removed_ids: set[int] = field(default_factory=set)
    removed_calls: int = 0

    def process(self, message: Message) -> None:
        self.messages.append(message)

    def report_unreachable(self, peer_id: int) -> None:
        self.unreachable.append(peer_id)

    def report_snapshot(self, peer_id: int, ok: bool) -> None:
        self.snapshots.append((peer_id, ok))

    def is_removed(self, peer_id: int) -> bool:
        return peer_id in self.removed_ids

    def removed_from_cluster(self) -> None:
        self.removed_calls += 1


@dataclass
class Member:
    member_id: int
    recorder: Recorder
    transport: Transport
    listener: PeerListener
    metrics: Metrics

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.port}"


async def start_member(member_id: int, cluster_id: int = CLUSTER, port: int = 0,
                       http_factory: Any = None, settings: Settings = FAST) -> Member:
    recorder, metrics = Recorder(), Metrics("3.5.17")
    transport = Transport(member_id, cluster_id, recorder, metrics=metrics, settings=settings)
    listener = PeerListener(transport, "127.0.0.1", port, http_factory)
    await listener.start()
    return Member(member_id, recorder, transport, listener, metrics)


async def stop_members(*members: Member) -> None:
    for member in members:
        await member.listener.stop()
        await member.transport.stop()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait, bounded, for a condition another task makes true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def run(scenario: Callable[[], Coroutine[Any, Any, None]], loop: str = "asyncio") -> None:
    """Run a scenario, bounded, on asyncio's loop or on uvloop's (which the server runs on)."""
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), 60)

    if loop == "uvloop":
        uvloop.run(bounded())
    else:
        asyncio.run(bounded())


LOOPS = pytest.mark.parametrize("loop", ["asyncio", "uvloop"])


def app(frm: int, to: int, index: int, data: bytes = b"x") -> Message:
    return Message(type=MessageType.MsgApp, to=to, frm=frm, term=2, log_term=2, index=index,
                   entries=(Entry(term=2, index=index + 1, data=data),), commit=index)


# ---------------------------------------------------------------- codec and frames

SAMPLES = [
    Message(type=MessageType.MsgHeartbeat, to=2, frm=1, term=5, commit=9, context=b"ctx"),
    Message(type=MessageType.MsgAppResp, to=1, frm=3, term=5, index=7, reject=True, reject_hint=4),
    Message(type=MessageType.MsgApp, to=2, frm=1, term=5, log_term=4, index=10, commit=8,
            entries=(Entry(4, 11, EntryType.NORMAL, b"put"),
                     Entry(5, 12, EntryType.CONF_CHANGE, b"\x08\x01"))),
    Message(type=MessageType.MsgSnap, to=2, frm=1, term=6,
            snapshot=Snapshot(SnapshotMetadata(100, 5, ConfState(voters=(1, 2, 3), learners=(4,))), b"db")),
    Message(type=MessageType.MsgReadIndex, to=1, frm=2, entries=(Entry(data=b"\x00\x01request"),)),
    Message(type=MessageType.MsgPreVote, to=2, frm=1, term=7, log_term=6, index=40),
]


@pytest.mark.parametrize("message", SAMPLES, ids=[m.type.name for m in SAMPLES])
def test_codec_round_trip(message: Message) -> None:
    assert codec.decode(codec.encode(message)) == message


def test_codec_uses_raftpb_field_numbers() -> None:
    # type=MsgHeartbeat(8) field 1, to=2 field 2, from=1 field 3, term=5 field 4, commit=9 field 8
    wire = codec.encode(Message(type=MessageType.MsgHeartbeat, to=2, frm=1, term=5, commit=9))
    assert wire == bytes([0x08, 8, 0x10, 2, 0x18, 1, 0x20, 5, 0x40, 9])


def test_snapshot_data_can_travel_apart() -> None:
    message = SAMPLES[3]
    header = codec.encode(message, with_snapshot_data=False)
    assert b"db" not in header
    assert codec.decode(header, snapshot_data=b"db") == message


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff", b"\x08\x63", b"\x3a\x02\x08\x07", b"\x0a"])
def test_codec_refuses_garbage(garbage: bytes) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(garbage)


def test_frame_headers_are_checked_before_reading_the_payload() -> None:
    assert parse_header(encode_frame(Kind.MESSAGE, b"abc")[:5]) == (Kind.MESSAGE, 3)
    with pytest.raises(FrameError, match="unknown frame kind 99"):
        parse_header(b"\x00\x00\x00\x01\x63")
    with pytest.raises(FrameError, match="exceeds its limit"):
        parse_header(b"\xff\xff\xff\xff\x04")
    with pytest.raises(FrameError, match="exceeds its limit"):
        parse_header(b"\x00\x00\x00\x09\x09")  # a 9-byte PING


def test_truncated_frame() -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(encode_frame(Kind.MESSAGE, b"abcdef")[:8])
        reader.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError):
            await read_frame(reader)

    run(scenario)


def test_hello_round_trip_and_refusals() -> None:
    hello = Hello(CLUSTER, 1, 2, Stream.SNAPSHOT)
    frame = hello.encode()
    assert Hello.decode(frame[5:]) == hello
    with pytest.raises(FrameError, match="version"):
        Hello.decode(b"\x00\x09" + frame[7:])
    with pytest.raises(FrameError, match="stream type"):
        Hello.decode(frame[5:7] + b"\x07" + frame[8:])


# ---------------------------------------------------------------- two members on loopback


@LOOPS
def test_two_members_exchange_messages_in_order(loop: str) -> None:
    async def scenario() -> None:
        a, b = await start_member(1), await start_member(2)
        try:
            a.transport.add_peer(2, [b.url])
            b.transport.add_peer(1, [a.url])
            a.transport.send([app(1, 2, i) for i in range(200)])
            b.transport.send([Message(type=MessageType.MsgAppResp, to=1, frm=2, term=2, index=i)
                              for i in range(50)])
            await until(lambda: len(b.recorder.messages) == 200 and len(a.recorder.messages) == 50)
            assert [m.index for m in b.recorder.messages] == list(range(200))
            assert b.recorder.messages[7] == app(1, 2, 7)
            assert [m.index for m in a.recorder.messages] == list(range(50))
            assert a.transport.is_active(2) and b.transport.is_active(1)
            assert a.metrics.peer_sent_bytes.labels(To="2")._value.get() > 0
            assert b.metrics.peer_received_bytes.labels(From="1")._value.get() > 0
            assert a.metrics.active_peers.labels(Local="1", Remote="2")._value.get() == 1
            await until(lambda: (a.metrics.registry.get_sample_value(
                "etcd_network_peer_round_trip_time_seconds_count", {"To": "2"}) or 0) > 0)
        finally:
            await stop_members(a, b)

    run(scenario, loop)


def test_wrong_cluster_id_is_refused_with_a_clear_log_line(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        a, b = await start_member(1, cluster_id=0x1111), await start_member(2, cluster_id=0x2222)
        try:
            a.transport.add_peer(2, [b.url])
            a.transport.send([app(1, 2, 1)])
            await until(lambda: 2 in a.recorder.unreachable)
            await asyncio.sleep(0.1)
            assert b.recorder.messages == []
            assert not a.transport.is_active(2)
        finally:
            await stop_members(a, b)

    with caplog.at_level("INFO", logger="petcd"):
        run(scenario)
    records = {record.getMessage(): getattr(record, "fields", {}) for record in caplog.records}
    assert records["request cluster ID mismatch"] == {
        "local-member-id": "2", "local-member-cluster-id": "2222", "remote-peer-id": "1",
        "remote-peer-cluster-id": "1111"}
    # the dialer's side (etcd's words) names both members and both cluster IDs, once per reason
    ignored = "request sent was ignored by remote peer due to cluster ID mismatch"
    assert records[ignored] == {
        "remote-peer-id": "2", "remote-peer-cluster-id": "2222", "local-member-id": "1",
        "local-member-cluster-id": "1111", "error": "cluster ID mismatch"}
    assert sum(record.getMessage() == ignored for record in caplog.records) == 1


def test_unknown_sender_and_removed_member_are_refused() -> None:
    async def scenario() -> None:
        a, b, c = await start_member(1), await start_member(2), await start_member(3)
        try:
            b.transport.add_peer(1, [a.url])  # b knows a only
            b.recorder.removed_ids.add(1)
            a.transport.add_peer(2, [b.url])
            c.transport.add_peer(2, [b.url])
            a.transport.send([app(1, 2, 1)])
            c.transport.send([app(3, 2, 1)])
            await until(lambda: a.recorder.removed_calls >= 1 and 2 in c.recorder.unreachable)
            assert b.recorder.messages == []
        finally:
            await stop_members(a, b, c)

    run(scenario)


@LOOPS
def test_reconnects_after_the_peer_restarts(loop: str) -> None:
    async def scenario() -> None:
        a, b = await start_member(1), await start_member(2)
        port = b.listener.port
        try:
            a.transport.add_peer(2, [b.url])
            b.transport.add_peer(1, [a.url])
            a.transport.send([app(1, 2, 1)])
            await until(lambda: len(b.recorder.messages) == 1)
            await stop_members(b)
            await until(lambda: not a.transport.is_active(2))
            await until(lambda: 2 in a.recorder.unreachable)
            a.transport.send([app(1, 2, 2)])  # nobody listens: dropped, or delivered once it is back
            b = await start_member(2, port=port)
            b.transport.add_peer(1, [a.url])
            await until(lambda: a.transport.is_active(2))
            a.transport.send([app(1, 2, 3)])
            await until(lambda: any(m.index == 3 for m in b.recorder.messages))
            assert [m.index for m in b.recorder.messages] in ([3], [2, 3])
        finally:
            await stop_members(a, b)

    run(scenario, loop)


def test_a_full_queue_drops_and_reports_unreachable() -> None:
    async def scenario() -> None:
        # A peer that accepts TCP but never answers the handshake: the dial waits, messages queue.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        a = await start_member(1, settings=Settings(queue_size=4, dial_timeout=5.0))
        try:
            a.transport.add_peer(2, [f"http://127.0.0.1:{silent.getsockname()[1]}"])
            a.transport.send([app(1, 2, i) for i in range(10)])
            heartbeat = Message(type=MessageType.MsgHeartbeat, to=2, frm=1, term=2)
            a.transport.send([heartbeat])
            assert a.recorder.unreachable == [2] * 7
            assert a.metrics.peer_sent_failures.labels(To="2")._value.get() == 7
            assert a.metrics.heartbeat_send_failures._value.get() == 1
            a.transport.send([app(1, 9, 1)])  # no such peer
            assert a.recorder.unreachable[-1] == 9
        finally:
            await stop_members(a)
            silent.close()

    run(scenario)


@LOOPS
def test_snapshot_travels_in_chunks_and_is_acknowledged(loop: str) -> None:
    async def scenario() -> None:
        a, b = await start_member(1), await start_member(2)
        data = bytes(range(256)) * (14 * 1024)  # 3.5 MiB: four chunks
        snapshot = Snapshot(SnapshotMetadata(500, 7, ConfState(voters=(1, 2))), data)
        try:
            a.transport.add_peer(2, [b.url])
            b.transport.add_peer(1, [a.url])
            a.transport.send([Message(type=MessageType.MsgSnap, to=2, frm=1, term=7, snapshot=snapshot)])
            await until(lambda: a.recorder.snapshots == [(2, True)])
            [received] = b.recorder.messages
            assert received.snapshot == snapshot
        finally:
            await stop_members(a, b)

    run(scenario, loop)


def test_snapshot_to_an_unreachable_peer_fails() -> None:
    async def scenario() -> None:
        a = await start_member(1)
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        try:
            a.transport.add_peer(2, [f"http://127.0.0.1:{port}"])
            snapshot = Snapshot(SnapshotMetadata(5, 1, ConfState(voters=(1, 2))), b"db")
            a.transport.send([Message(type=MessageType.MsgSnap, to=2, frm=1, term=1, snapshot=snapshot)])
            await until(lambda: (2, False) in a.recorder.snapshots)
        finally:
            await stop_members(a)

    run(scenario)


# ---------------------------------------------------------------- garbage on the peer port


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send bytes to the peer port; return whatever comes back before the connection closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


GOOD_HELLO = PREFACE + Hello(CLUSTER, 1, 2).encode()
ACCEPT = encode_frame(Kind.ACCEPT)


@pytest.mark.parametrize(("name", "data", "answer"), [
    ("random bytes after NUL", b"\x00\x13\x37garbage" * 10, b""),
    ("bad preface", b"\x00PETCD/9" + Hello(CLUSTER, 1, 2).encode(), b""),
    ("no hello", PREFACE + encode_frame(Kind.MESSAGE, b"x"), b""),
    ("short hello", PREFACE + encode_frame(Kind.HELLO, b"\x00\x01"), b""),
    ("oversized frame", GOOD_HELLO + b"\xff\xff\xff\xf0\x04", ACCEPT),
    ("unknown kind", GOOD_HELLO + b"\x00\x00\x00\x00\x63", ACCEPT),
    ("bad protobuf", GOOD_HELLO + encode_frame(Kind.MESSAGE, b"\xff\xff"), ACCEPT),
    ("message for someone else", GOOD_HELLO + encode_frame(Kind.MESSAGE, codec.encode(app(1, 5, 1))), ACCEPT),
    ("truncated frame", GOOD_HELLO + encode_frame(Kind.MESSAGE, codec.encode(app(1, 2, 1)))[:9], ACCEPT),
    ("snapshot longer than declared", PREFACE + Hello(CLUSTER, 1, 2, Stream.SNAPSHOT).encode()
     + encode_frame(Kind.SNAPSHOT_BEGIN,
                    (1).to_bytes(8, "big") + codec.encode(SAMPLES[3], with_snapshot_data=False))
     + encode_frame(Kind.SNAPSHOT_CHUNK, b"abc"), ACCEPT),
])
@LOOPS
def test_garbage_costs_one_connection_only(name: str, data: bytes, answer: bytes, loop: str) -> None:
    async def scenario() -> None:
        a, b = await start_member(1), await start_member(2)
        try:
            b.transport.add_peer(1, [a.url])
            assert await raw_exchange(b.listener.port, data) == answer
            assert b.recorder.messages == []
            # the listener still serves a well-behaved peer
            a.transport.add_peer(2, [b.url])
            a.transport.send([app(1, 2, 1)])
            await until(lambda: len(b.recorder.messages) == 1)
        finally:
            await stop_members(a, b)

    run(scenario, loop)


def test_garbage_is_counted_as_a_receive_failure() -> None:
    async def scenario() -> None:
        b = await start_member(2)
        try:
            b.transport.add_peer(1, ["http://127.0.0.1:1"])
            await raw_exchange(b.listener.port, GOOD_HELLO + encode_frame(Kind.MESSAGE, b"\xff\xff"))
            assert b.metrics.peer_received_failures.labels(From="1")._value.get() == 1
        finally:
            await stop_members(b)

    run(scenario)


# ---------------------------------------------------------------- HTTP on the peer port


@dataclass
class ClusterView:
    members_list: Sequence[MemberInfo]

    def cluster_id(self) -> int:
        return CLUSTER

    def members(self) -> Sequence[MemberInfo]:
        return self.members_list

    def versions(self) -> tuple[str, str]:
        return "3.5.17", "3.5.0"


MEMBERS = [MemberInfo(0x8E9E05C52164694D, ("http://localhost:2380",), "default", ("http://localhost:2379",)),
           MemberInfo(0x1234, ("http://127.0.0.2:2380",), is_learner=True)]


async def with_peer_http(body: Callable[[Member], Awaitable[None]]) -> None:
    runner = web.AppRunner(build_peer_app(ClusterView(MEMBERS)), access_log=None)
    await runner.setup()
    member = await start_member(2, http_factory=runner.server)
    try:
        await body(member)
    finally:
        await stop_members(member)
        await runner.cleanup()


@LOOPS
def test_peer_port_serves_members_and_version_over_http(loop: str) -> None:
    async def body(member: Member) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(member.url + "/members") as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "application/json"
                assert response.headers["X-Etcd-Cluster-ID"] == "cdf818194e3a8c32"
                body = await response.read()
                assert body.endswith(b"}]\n")
                assert json.loads(body) == [
                    {"id": 10276657743932975437, "peerURLs": ["http://localhost:2380"], "name": "default",
                     "clientURLs": ["http://localhost:2379"]},
                    {"id": 4660, "peerURLs": ["http://127.0.0.2:2380"], "isLearner": True}]
            async with session.get(member.url + "/version") as response:
                assert await response.text() == '{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}'
            async with session.post(member.url + "/members") as response:
                assert (response.status, response.headers["Allow"]) == (405, "GET")

    run(lambda: with_peer_http(body), loop)


def test_fetch_cluster_info_skips_dead_urls() -> None:
    async def body(member: Member) -> None:
        cluster_id, members = await fetch_cluster_info(["http://127.0.0.1:1", member.url])
        assert cluster_id == CLUSTER
        assert list(members) == MEMBERS
        with pytest.raises(ClusterInfoError, match="could not retrieve cluster information"):
            await fetch_cluster_info(["http://127.0.0.1:1"], timeout=2)

    run(lambda: with_peer_http(body))


@LOOPS
def test_raft_and_http_share_the_peer_port(loop: str) -> None:
    async def body(member: Member) -> None:
        a = await start_member(1)
        try:
            member.transport.add_peer(1, [a.url])
            a.transport.add_peer(2, [member.url])
            a.transport.send([app(1, 2, 1)])
            async with aiohttp.ClientSession() as session, session.get(member.url + "/members") as response:
                assert response.status == 200
            await until(lambda: len(member.recorder.messages) == 1)
        finally:
            await stop_members(a)

    run(lambda: with_peer_http(body), loop)


@LOOPS
def test_a_peer_that_stops_answering_pings_is_redialled(loop: str) -> None:
    async def scenario() -> None:
        accepted = []

        async def mute_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            """Accepts the handshake, then reads and never answers."""
            accepted.append(writer)
            await reader.readexactly(len(PREFACE))
            await read_frame(reader)
            writer.write(encode_frame(Kind.ACCEPT))
            while await reader.read(4096):
                pass

        server = await asyncio.start_server(mute_peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        quick = Settings(dial_timeout=0.2, backoff_initial=0.02, ping_interval=0.05)
        a = await start_member(1, settings=quick)
        try:
            a.transport.add_peer(2, [f"http://127.0.0.1:{port}"])
            await until(lambda: a.transport.is_active(2))
            await until(lambda: len(accepted) >= 2)
            assert 2 in a.recorder.unreachable
        finally:
            await stop_members(a)
            for writer in accepted:
                writer.close()
            server.close()

    run(scenario, loop)


class Leader:
    """The promotions a leader would grant: learners in sync are promoted, others refused as etcd does."""

    def __init__(self) -> None:
        self.members = list(MEMBERS)

    async def promote(self, member_id: int) -> Sequence[MemberInfo]:
        match = [m for m in self.members if m.id == member_id]
        if not match:
            raise PromoteError(404, "membership: ID not found")
        if not match[0].is_learner:
            raise PromoteError(412, "membership: can only promote a learner member")
        self.members = [MemberInfo(m.id, m.peer_urls, m.name, m.client_urls) if m.id == member_id else m
                        for m in self.members]
        return self.members


def test_promotion_is_forwarded_over_the_peer_port() -> None:
    async def scenario() -> None:
        leader = Leader()
        runner = web.AppRunner(build_peer_app(ClusterView(MEMBERS), leader.promote), access_log=None)
        await runner.setup()
        member = await start_member(2, http_factory=runner.server)
        try:
            after = await promote_on_peer(["http://127.0.0.1:1", member.url], 0x1234)
            assert [m.is_learner for m in after] == [False, False]
            with pytest.raises(PromoteError) as info:
                await promote_on_peer([member.url], 0x1234)
            refusal = (412, "membership: can only promote a learner member")
            assert (info.value.status, info.value.message) == refusal
            with pytest.raises(PromoteError) as info:
                await promote_on_peer([member.url], 99)
            assert (info.value.status, info.value.message) == (404, "membership: ID not found")
            async with aiohttp.ClientSession() as session:
                async with session.post(member.url + "/members/promote/12ab") as response:
                    answer = (response.status, await response.text())
                    assert answer == (404, "member 12ab not found in cluster\n")
                    assert response.headers["X-Etcd-Cluster-ID"] == "cdf818194e3a8c32"
                async with session.get(member.url + "/members/promote/1") as response:
                    assert (response.status, response.headers["Allow"]) == (405, "POST")
                async with session.get(member.url + "/bogus") as response:
                    assert (response.status, await response.text()) == (404, "404 page not found\n")
        finally:
            await stop_members(member)
            await runner.cleanup()

    run(scenario)

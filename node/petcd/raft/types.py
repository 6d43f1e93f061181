"""The values the Raft core consumes and produces, named and numbered as in etcd's raftpb.

Everything here is an immutable value (or treated as one: a `Message` is never changed after it is
built), so the simulator may duplicate and reorder messages freely.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NONE = 0  # "no node": no leader known, no vote cast


class EntryType(enum.IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1


class ConfChangeType(enum.IntEnum):
    ADD_NODE = 0
    REMOVE_NODE = 1
    UPDATE_NODE = 2
    ADD_LEARNER_NODE = 3


class MessageType(enum.IntEnum):
    MsgHup = 0
    MsgBeat = 1
    MsgProp = 2
    MsgApp = 3
    MsgAppResp = 4
    MsgVote = 5
    MsgVoteResp = 6
    MsgSnap = 7
    MsgHeartbeat = 8
    MsgHeartbeatResp = 9
    MsgUnreachable = 10
    MsgSnapStatus = 11
    MsgCheckQuorum = 12
    MsgTransferLeader = 13
    MsgTimeoutNow = 14
    MsgReadIndex = 15
    MsgReadIndexResp = 16
    MsgPreVote = 17
    MsgPreVoteResp = 18


# Messages a node generates for itself; they never travel between nodes.
LOCAL_MESSAGES = frozenset(
    {MessageType.MsgHup, MessageType.MsgBeat, MessageType.MsgUnreachable, MessageType.MsgSnapStatus,
     MessageType.MsgCheckQuorum}
)
RESPONSE_MESSAGES = frozenset(
    {MessageType.MsgAppResp, MessageType.MsgVoteResp, MessageType.MsgHeartbeatResp,
     MessageType.MsgUnreachable, MessageType.MsgPreVoteResp}
)


class Role(enum.IntEnum):
    """etcd's StateType, same numbers."""

    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    PRE_CANDIDATE = 3


@dataclass(frozen=True, slots=True)
class Entry:
    term: int = 0
    index: int = 0
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ConfChange:
    type: ConfChangeType
    node_id: int
    context: bytes = b""


@dataclass(frozen=True, slots=True)
class ConfState:
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class HardState:
    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotMetadata:
    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)
    data: bytes = b""

    @property
    def is_empty(self) -> bool:
        return self.metadata.index == 0


@dataclass(slots=True)
class Message:
    """One raftpb.Message. Read-index requests carry their context in `entries[0].data`, as in etcd."""

    type: MessageType
    to: int = NONE
    frm: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


@dataclass(frozen=True, slots=True)
class ReadState:
    """The read with context `request_ctx` may be served once the state machine has applied `index`."""

    index: int
    request_ctx: bytes


@dataclass(frozen=True, slots=True)
class SoftState:
    leader_id: int
    role: Role


@dataclass(frozen=True, slots=True)
class Ready:
    """What the shell must do, in this order: persist `hard_state` + `entries` (+ `snapshot`), fsyncing when
    `must_sync`; send `messages`; apply `snapshot` and `committed_entries`; resolve `read_states`; then
    `RawNode.advance(ready)`. `soft_state`, `hard_state` and `snapshot` are None when unchanged/absent."""

    soft_state: SoftState | None
    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    committed_entries: tuple[Entry, ...]
    messages: tuple[Message, ...]
    read_states: tuple[ReadState, ...]
    must_sync: bool


# --- ConfChange encoding: protobuf wire format with raftpb.ConfChange's field numbers
# (1 id, 2 type, 3 node_id, 4 context), so the bytes are what etcd would write for the same change.


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint in ConfChange")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long in ConfChange")


def encode_conf_change(cc: ConfChange) -> bytes:
    out = bytearray()
    for field_number, value in ((1, 0), (2, int(cc.type)), (3, cc.node_id)):
        _put_varint(out, field_number << 3)
        _put_varint(out, value)
    if cc.context:
        _put_varint(out, (4 << 3) | 2)
        _put_varint(out, len(cc.context))
        out += cc.context
    return bytes(out)


def decode_conf_change(data: bytes) -> ConfChange:
    values = {2: 0, 3: 0}
    context = b""
    pos = 0
    while pos < len(data):
        key, pos = _get_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            values[number], pos = _get_varint(data, pos)
        elif wire_type == 2:
            length, pos = _get_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated bytes field in ConfChange")
            if number == 4:
                context = data[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire_type} in ConfChange")
    return ConfChange(ConfChangeType(values[2]), values[3], context)

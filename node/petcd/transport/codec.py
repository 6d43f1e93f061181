"""petcd.raft.types.Message <-> raftpb.Message bytes (etcd's raft.proto field numbers).

Decoding is strict: bytes that do not parse, or name a message or entry type petcd's Raft does not
know, raise CodecError, so garbage from a peer is refused instead of reaching the Raft core.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from petcd.proto import raft_pb2
from petcd.raft.types import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)


class CodecError(Exception):
    """Bytes that are not a raftpb.Message petcd can step."""


def _snapshot_to_pb(snapshot: Snapshot, out: raft_pb2.Snapshot, with_data: bool) -> None:
    meta = snapshot.metadata
    out.metadata.index = meta.index
    out.metadata.term = meta.term
    out.metadata.conf_state.voters.extend(meta.conf_state.voters)
    out.metadata.conf_state.learners.extend(meta.conf_state.learners)
    if with_data:
        out.data = snapshot.data


def to_pb(message: Message, *, with_snapshot_data: bool = True) -> raft_pb2.Message:
    pb = raft_pb2.Message(
        type=int(message.type),  # type: ignore[arg-type]
        to=message.to,
        term=message.term,
        logTerm=message.log_term,
        index=message.index,
        commit=message.commit,
        reject=message.reject,
        rejectHint=message.reject_hint,
        context=message.context,
    )
    setattr(pb, "from", message.frm)  # `from` is a Python keyword
    for entry in message.entries:
        pb.entries.add(Term=entry.term, Index=entry.index, Type=int(entry.type), Data=entry.data)
    if message.snapshot is not None:
        _snapshot_to_pb(message.snapshot, pb.snapshot, with_snapshot_data)
    return pb


def encode(message: Message, *, with_snapshot_data: bool = True) -> bytes:
    """raftpb.Message bytes; `with_snapshot_data=False` leaves a MsgSnap's data out (sent in chunks)."""
    return to_pb(message, with_snapshot_data=with_snapshot_data).SerializeToString()


def decode(data: bytes, snapshot_data: bytes | None = None) -> Message:
    """The Message in `data`; `snapshot_data`, when given, replaces the snapshot's (chunked) data."""
    pb = raft_pb2.Message()
    try:
        pb.ParseFromString(data)
    except DecodeError as exc:
        raise CodecError(f"malformed raftpb.Message: {exc}") from None
    try:
        message_type = MessageType(pb.type)
        entries = tuple(Entry(term=e.Term, index=e.Index, type=EntryType(e.Type), data=e.Data)
                        for e in pb.entries)
    except ValueError as exc:
        raise CodecError(f"raftpb.Message with {exc}") from None
    snapshot = None
    if pb.HasField("snapshot"):
        meta = pb.snapshot.metadata
        snapshot = Snapshot(
            metadata=SnapshotMetadata(
                index=meta.index,
                term=meta.term,
                conf_state=ConfState(voters=tuple(meta.conf_state.voters),
                                     learners=tuple(meta.conf_state.learners)),
            ),
            data=pb.snapshot.data if snapshot_data is None else snapshot_data,
        )
    return Message(
        type=message_type,
        to=pb.to,
        frm=getattr(pb, "from"),
        term=pb.term,
        log_term=pb.logTerm,
        index=pb.index,
        entries=entries,
        commit=pb.commit,
        snapshot=snapshot,
        reject=pb.reject,
        reject_hint=pb.rejectHint,
        context=pb.context,
    )

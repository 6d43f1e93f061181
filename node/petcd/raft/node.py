"""`RawNode`: the shell's handle on the Raft state machine (etcd's rawnode.go).

The shell feeds it time (`tick`), messages (`step`) and requests (`propose`, `read_index`, ...), then
drains `ready()` and acknowledges each batch with `advance(ready)` once it has persisted, sent and applied
it. Calling `ready()` again before `advance()` returns only what is new, so an asynchronous shell may keep
stepping while it persists; it must still handle the batches in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from petcd.raft.progress import ProgressState
from petcd.raft.raft import Config, ProposalDropped, Raft
from petcd.raft.types import (
    LOCAL_MESSAGES,
    NONE,
    RESPONSE_MESSAGES,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    SoftState,
    encode_conf_change,
)

__all__ = ["Config", "ProgressStatus", "ProposalDropped", "RawNode", "Status"]


@dataclass(frozen=True, slots=True)
class ProgressStatus:
    match: int
    next: int
    state: ProgressState
    is_learner: bool
    recent_active: bool


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    lead_transferee: int
    progress: dict[int, ProgressStatus]  # only on the leader; empty elsewhere
    conf_state: ConfState


class RawNode:
    raft_class: type[Raft] = Raft  # tests substitute deliberately broken variants here

    def __init__(self, config: Config) -> None:
        self.raft = self.raft_class(config)
        self._prev_soft_state = self.raft.soft_state()
        self._prev_hard_state = self.raft.hard_state()

    def bootstrap(self, voters: Sequence[int], contexts: Mapping[int, bytes] | None = None) -> None:
        """Found a new cluster (etcd's RawNode.Bootstrap): on empty storage, write one committed ADD_NODE
        conf-change entry per voter at indexes 1..n, term 1. Every founding member does the same, so the
        logs agree, and a member added later learns the configuration by replaying the log. The first
        Ready carries these entries (persist them) and, as committed entries, applies them (idempotent)."""
        if not voters:
            raise ValueError("must provide at least one peer to Bootstrap")
        raft = self.raft
        if raft.raft_log.storage.last_index() != 0 or raft.raft_log.last_index() != 0:
            raise ValueError("can't bootstrap a nonempty Storage")
        contexts = contexts or {}
        raft.become_follower(1, NONE)
        changes = [ConfChange(ConfChangeType.ADD_NODE, voter, contexts.get(voter, b"")) for voter in voters]
        raft.raft_log.append([Entry(1, index, EntryType.CONF_CHANGE, encode_conf_change(change))
                              for index, change in enumerate(changes, start=1)])
        raft.raft_log.committed = len(changes)
        for change in changes:
            raft.apply_conf_change(change)
        self._prev_hard_state = HardState()  # nothing is persisted yet: the first Ready carries it all

    # --- inputs

    def tick(self) -> None:
        self.raft.tick()

    def campaign(self) -> None:
        self.raft.step(Message(MessageType.MsgHup, frm=self.raft.id))

    def propose(self, data: bytes) -> None:
        """Propose `data` as a normal entry; raises ProposalDropped (see the package docstring)."""
        self.raft.step(Message(MessageType.MsgProp, frm=self.raft.id, entries=(Entry(data=data),)))

    def propose_conf_change(self, change: ConfChange) -> None:
        entry = Entry(type=EntryType.CONF_CHANGE, data=encode_conf_change(change))
        self.raft.step(Message(MessageType.MsgProp, frm=self.raft.id, entries=(entry,)))

    def step(self, message: Message) -> None:
        """Deliver a message from a peer. Local message types are refused; responses from nodes outside the
        configuration are ignored; a proposal forwarded by a peer that cannot be accepted is dropped
        silently (the peer's client times out and retries)."""
        if message.type in LOCAL_MESSAGES:
            raise ValueError(f"cannot step raft local message {message.type.name}")
        if message.type in RESPONSE_MESSAGES and message.frm not in self.raft.tracker.progress:
            return
        try:
            self.raft.step(message)
        except ProposalDropped:
            if message.type != MessageType.MsgProp:
                raise

    def read_index(self, ctx: bytes) -> None:
        """Request a linearizable read; a ReadState with `ctx` appears in a later Ready. Dropped silently
        when no leader is known (as etcd does): the caller retries after a timeout."""
        self.raft.step(Message(MessageType.MsgReadIndex, frm=self.raft.id, entries=(Entry(data=ctx),)))

    def transfer_leader(self, to: int) -> None:
        self.raft.step(Message(MessageType.MsgTransferLeader, frm=to))

    def apply_conf_change(self, change: ConfChange) -> ConfState:
        """Apply a committed conf change (the shell calls this when it applies the entry)."""
        return self.raft.apply_conf_change(change)

    def report_unreachable(self, node: int) -> None:
        self.raft.step(Message(MessageType.MsgUnreachable, frm=node))

    def report_snapshot(self, node: int, ok: bool) -> None:
        self.raft.step(Message(MessageType.MsgSnapStatus, frm=node, reject=not ok))

    # --- outputs

    def has_ready(self) -> bool:
        raft = self.raft
        log = raft.raft_log
        if raft.msgs or raft.read_states:
            return True
        if log.unstable.next_entries() or log.unstable.next_snapshot() is not None:
            return True
        if log.has_next_committed_entries():
            return True
        if raft.soft_state() != self._prev_soft_state:
            return True
        hard_state = raft.hard_state()
        return hard_state != self._prev_hard_state and hard_state != HardState()

    def ready(self) -> Ready:
        raft = self.raft
        log = raft.raft_log
        soft_state = raft.soft_state()
        hard_state = raft.hard_state()
        entries = tuple(log.unstable.next_entries())
        snapshot = log.unstable.next_snapshot()
        committed = tuple(log.next_committed_entries())
        must_sync = bool(entries) or (
            hard_state.term != self._prev_hard_state.term or hard_state.vote != self._prev_hard_state.vote
        )
        ready = Ready(
            soft_state=soft_state if soft_state != self._prev_soft_state else None,
            hard_state=hard_state if hard_state != self._prev_hard_state else None,
            entries=entries,
            snapshot=snapshot,
            committed_entries=committed,
            messages=tuple(raft.msgs),
            read_states=tuple(raft.read_states),
            must_sync=must_sync,
        )
        # Hand each item out once, even if ready() is called again before advance().
        self._prev_soft_state = soft_state
        self._prev_hard_state = hard_state
        raft.msgs = []
        raft.read_states = []
        log.unstable.accept_in_progress()
        if committed:
            log.accept_applying(committed[-1].index)
        return ready

    def advance(self, ready: Ready) -> None:
        """The shell has persisted, sent and applied `ready`."""
        log = self.raft.raft_log
        if ready.entries:
            last = ready.entries[-1]
            log.stable_to(last.index, last.term)
        if ready.snapshot is not None:
            log.stable_snap_to(ready.snapshot.metadata.index)
            if ready.snapshot.metadata.index > log.applied:
                log.applied_to(ready.snapshot.metadata.index)
        if ready.committed_entries:
            index = ready.committed_entries[-1].index
            if index > log.applied:
                log.applied_to(index)

    def status(self) -> Status:
        raft = self.raft
        progress: dict[int, ProgressStatus] = {}
        if raft.role == raft.role.LEADER:
            progress = {
                node: ProgressStatus(p.match, p.next, p.state, p.is_learner, p.recent_active)
                for node, p in raft.tracker.progress.items()
            }
        return Status(
            id=raft.id,
            hard_state=raft.hard_state(),
            soft_state=raft.soft_state(),
            applied=raft.raft_log.applied,
            lead_transferee=raft.lead_transferee,
            progress=progress,
            conf_state=raft.tracker.conf_state(),
        )

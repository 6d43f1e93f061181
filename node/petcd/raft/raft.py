"""The Raft state machine (etcd's raft.go): roles, elections, replication, reads, transfers, membership.

Pure: inputs are `tick()` and `step(message)`, outputs accumulate in `msgs`, `read_states` and the log;
`RawNode` (node.py) packages them into `Ready` batches. The subclass hooks marked "hook" exist so tests can
build deliberately broken variants; nothing overrides them in production.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from petcd.raft import confchange
from petcd.raft.log import RaftLog
from petcd.raft.progress import ProgressState
from petcd.raft.quorum import VoteResult
from petcd.raft.read_only import ReadOnly
from petcd.raft.storage import CompactedError, MemoryStorage, StorageError
from petcd.raft.tracker import ProgressTracker
from petcd.raft.types import (
    NONE,
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Role,
    Snapshot,
    SoftState,
)

M = MessageType
CAMPAIGN_TRANSFER = b"CampaignTransfer"  # etcd's context marking a vote forced by a leader transfer


class ProposalDropped(Exception):
    """The proposal was not accepted: no leader is known, a conf change is pending, or a leader transfer
    is in progress (etcd's ErrProposalDropped). The caller may retry later."""

    def __init__(self, reason: str = "raft proposal dropped") -> None:
        super().__init__(reason)


@dataclass(kw_only=True)
class Config:
    id: int
    storage: MemoryStorage
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0  # the last index the shell applied before a restart
    max_size_per_msg: int | None = 1024 * 1024
    max_inflight_msgs: int = 256
    max_committed_size_per_ready: int | None = None  # defaults to max_size_per_msg
    check_quorum: bool = True
    pre_vote: bool = True
    disable_proposal_forwarding: bool = False
    rng: random.Random = field(default_factory=random.Random)

    def validate(self) -> None:
        if self.id == NONE:
            raise ValueError("cannot use none as id")
        if self.heartbeat_tick <= 0:
            raise ValueError("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election tick must be greater than heartbeat tick")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max inflight messages must be greater than 0")


class Raft:
    def __init__(self, config: Config) -> None:
        config.validate()
        self.id = config.id
        self.rng = config.rng
        ready_limit = config.max_committed_size_per_ready or config.max_size_per_msg
        self.raft_log = RaftLog(config.storage, ready_limit)
        self.max_msg_size = config.max_size_per_msg
        self.tracker = ProgressTracker(config.max_inflight_msgs)
        self.check_quorum = config.check_quorum
        self.pre_vote = config.pre_vote
        self.disable_proposal_forwarding = config.disable_proposal_forwarding
        self.election_timeout = config.election_tick
        self.heartbeat_timeout = config.heartbeat_tick
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.role = Role.FOLLOWER
        self.is_learner = False
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.read_only = ReadOnly()
        self.pending_read_index_messages: list[Message] = []
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = 0

        hard_state, conf_state = config.storage.initial_state()
        self._switch_to_config(conf_state)
        if hard_state != HardState():
            self._load_hard_state(hard_state)
        if config.applied > 0:
            self.raft_log.applied_to(config.applied)
        self.become_follower(self.term, NONE)

    # --- state

    def hard_state(self) -> HardState:  # hook: "vote not persisted" overrides this
        return HardState(self.term, self.vote, self.raft_log.committed)

    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.role)

    def _load_hard_state(self, state: HardState) -> None:
        if state.commit < self.raft_log.committed or state.commit > self.raft_log.last_index():
            raise AssertionError(f"{self.id} state.commit {state.commit} is out of range "
                                 f"[{self.raft_log.committed}, {self.raft_log.last_index()}]")
        self.raft_log.committed = state.commit
        self.term = state.term
        self.vote = state.vote

    def promotable(self) -> bool:
        """May this node campaign? Only a voter of its own configuration with no snapshot pending."""
        progress = self.tracker.progress.get(self.id)
        return progress is not None and not progress.is_learner and self.raft_log.unstable.snapshot is None

    # --- sending

    def _send(self, message: Message) -> None:
        self.msgs.append(message)

    def _send_append(self, to: int) -> None:
        self._maybe_send_append(to, send_if_empty=True)

    def _maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send `to` the entries it lacks (or a snapshot if they are compacted); False if nothing sent."""
        progress = self.tracker.progress[to]
        if progress.is_paused():
            return False
        prev_index = progress.next - 1
        entries: list[Entry] = []
        try:
            prev_term = self.raft_log.term(prev_index)
            if progress.state != ProgressState.REPLICATE or not progress.inflights.full():
                entries = self.raft_log.entries(progress.next, self.max_msg_size)
        except CompactedError:
            return self._send_snapshot(to)
        if not entries and not send_if_empty:
            return False
        self._send(Message(M.MsgApp, to=to, frm=self.id, term=self.term, log_term=prev_term, index=prev_index,
                           entries=tuple(entries), commit=self.raft_log.committed))
        if entries:
            if progress.state == ProgressState.REPLICATE:
                last = entries[-1].index
                progress.next = last + 1  # optimistic: pipeline the next batch without waiting
                progress.inflights.add(last)
            elif progress.state == ProgressState.PROBE:
                progress.probe_sent = True
        return True

    def _send_snapshot(self, to: int) -> bool:
        progress = self.tracker.progress[to]
        if not progress.recent_active:
            return False  # do not ship a snapshot to a member that may be down
        snapshot = self.raft_log.snapshot()
        if snapshot.is_empty:
            raise AssertionError("need non-empty snapshot")
        progress.become_snapshot(snapshot.metadata.index)
        self._send(Message(M.MsgSnap, to=to, frm=self.id, term=self.term, snapshot=snapshot))
        return True

    def _send_heartbeat(self, to: int, ctx: bytes) -> None:
        # Never tell a follower to commit beyond what it is known to have: its log may not match ours yet.
        commit = min(self.tracker.progress[to].match, self.raft_log.committed)
        self._send(Message(M.MsgHeartbeat, to=to, frm=self.id, term=self.term, commit=commit, context=ctx))

    def _bcast_append(self) -> None:
        for node in self.tracker.progress:
            if node != self.id:
                self._send_append(node)

    def _bcast_heartbeat(self, ctx: bytes | None = None) -> None:
        if ctx is None:
            ctx = self.read_only.last_pending_request_ctx()
        for node in self.tracker.progress:
            if node != self.id:
                self._send_heartbeat(node, ctx)

    def _send_timeout_now(self, to: int) -> None:
        self._send(Message(M.MsgTimeoutNow, to=to, frm=self.id, term=self.term))

    # --- role changes

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = self.election_timeout + self.rng.randrange(self.election_timeout)
        self.lead_transferee = NONE
        self.tracker.reset_votes()
        last_index = self.raft_log.last_index()
        for node, progress in self.tracker.progress.items():
            progress.match = last_index if node == self.id else 0
            progress.next = last_index + 1
            progress.state = ProgressState.PROBE
            progress.probe_sent = False
            progress.pending_snapshot = 0
            progress.recent_active = False  # CheckQuorum counts only members heard from in this term
            progress.inflights.reset()
        self.pending_conf_index = 0
        self.read_only = ReadOnly()
        self.pending_read_index_messages = []

    def become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.lead = lead
        self.role = Role.FOLLOWER

    def become_candidate(self) -> None:
        if self.role == Role.LEADER:
            raise AssertionError("invalid transition [leader -> candidate]")
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def become_pre_candidate(self) -> None:
        if self.role == Role.LEADER:
            raise AssertionError("invalid transition [leader -> pre-candidate]")
        # A pre-candidate changes neither its term nor its vote: a failed pre-election disturbs no one.
        self.tracker.reset_votes()
        self.lead = NONE
        self.role = Role.PRE_CANDIDATE

    def become_leader(self) -> None:
        if self.role == Role.FOLLOWER:
            raise AssertionError("invalid transition [follower -> leader]")
        self._reset(self.term)
        self.lead = self.id
        self.role = Role.LEADER
        self.tracker.progress[self.id].become_replicate()
        # Conservatively assume our uncommitted tail may hold a conf change: refuse new ones until it applies.
        self.pending_conf_index = self.raft_log.last_index()
        # An entry of our own term: committing it commits everything before it (Raft §5.4.2), and
        # ReadIndex waits for it.
        self._append_entries([Entry()])

    # --- elections

    def _hup(self, transfer: bool) -> None:
        if self.role == Role.LEADER or not self.promotable():
            return
        if self._has_unapplied_conf_change():
            return  # the configuration we would campaign in may be about to change
        if transfer:
            self._campaign(pre=False, transfer=True)
        else:
            self._campaign(pre=self.pre_vote, transfer=False)

    def _has_unapplied_conf_change(self) -> bool:
        log = self.raft_log
        if log.committed <= log.applied:
            return False
        try:
            pending = log.slice(max(log.applied + 1, log.first_index()), log.committed + 1, None)
        except StorageError:
            return False
        return any(entry.type == EntryType.CONF_CHANGE for entry in pending)

    def _campaign(self, pre: bool, transfer: bool) -> None:
        if pre:
            self.become_pre_candidate()
            vote_type, term = M.MsgPreVote, self.term + 1
        else:
            self.become_candidate()
            vote_type, term = M.MsgVote, self.term
        if self._poll(self.id, True) == VoteResult.WON:
            # A single-voter configuration: we won already.
            if pre:
                self._campaign(pre=False, transfer=False)
            else:
                self.become_leader()
            return
        last_index, last_term = self.raft_log.last_index(), self.raft_log.last_term()
        ctx = CAMPAIGN_TRANSFER if transfer else b""
        for node in sorted(self.tracker.voters):
            if node != self.id:
                self._send(Message(vote_type, to=node, frm=self.id, term=term, log_term=last_term,
                                   index=last_index, context=ctx))

    def _poll(self, node: int, granted: bool) -> VoteResult:
        self.tracker.record_vote(node, granted)
        return self.tracker.tally_votes()[2]

    # --- ticking

    def tick(self) -> None:
        if self.role == Role.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self.step(Message(M.MsgHup, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(M.MsgCheckQuorum, frm=self.id))
            if self.role == Role.LEADER and self.lead_transferee != NONE:
                self.lead_transferee = NONE  # the transfer took longer than an election timeout: give up
        if self.role != Role.LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(M.MsgBeat, frm=self.id))

    # --- stepping

    def step(self, m: Message) -> None:
        if m.term == 0:
            pass  # local message (or a forwarded proposal / read index)
        elif m.term > self.term:
            if m.type in (M.MsgVote, M.MsgPreVote):
                forced = m.context == CAMPAIGN_TRANSFER
                in_lease = (self.check_quorum and self.lead != NONE
                            and self.election_elapsed < self.election_timeout)
                if not forced and in_lease:
                    # We heard from a live leader within the minimum election timeout: ignore the vote so a
                    # partitioned node cannot depose a healthy leader (CheckQuorum's leader lease).
                    return
            if m.type == M.MsgPreVote:
                pass  # never change our term because of a pre-vote
            elif m.type == M.MsgPreVoteResp and not m.reject:
                pass  # the term changes when the pre-candidate wins and campaigns for real
            elif m.type in (M.MsgApp, M.MsgHeartbeat, M.MsgSnap):
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and m.type in (M.MsgHeartbeat, M.MsgApp):
                # A stale leader (e.g. after a partition) learns our term and steps down; without this it
                # could never be told, since our pre-votes do not raise its term.
                self._send(Message(M.MsgAppResp, to=m.frm, frm=self.id, term=self.term))
            elif m.type == M.MsgPreVote:
                self._send(Message(M.MsgPreVoteResp, to=m.frm, frm=self.id, term=self.term, reject=True))
            return

        if m.type == M.MsgHup:
            self._hup(transfer=False)
        elif m.type in (M.MsgVote, M.MsgPreVote):
            self._handle_vote_request(m)
        elif self.role == Role.LEADER:
            self._step_leader(m)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(m)
        else:
            self._step_follower(m)

    def _handle_vote_request(self, m: Message) -> None:
        response_type = M.MsgPreVoteResp if m.type == M.MsgPreVote else M.MsgVoteResp
        can_vote = (
            self.vote == m.frm
            or (self.vote == NONE and self.lead == NONE)
            or (m.type == M.MsgPreVote and m.term > self.term)
        )
        if can_vote and self.raft_log.is_up_to_date(m.index, m.log_term):
            # Answer with the term of the request: a pre-candidate counts only answers for its future term.
            self._send(Message(response_type, to=m.frm, frm=self.id, term=m.term))
            if m.type == M.MsgVote:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self._send(Message(response_type, to=m.frm, frm=self.id, term=self.term, reject=True))

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t == M.MsgBeat:
            self._bcast_heartbeat()
            return
        if t == M.MsgCheckQuorum:
            if not self.tracker.quorum_active(self.id):
                self.become_follower(self.term, NONE)  # we cannot reach a quorum: stop claiming leadership
                return
            for node, follower in self.tracker.progress.items():
                if node != self.id:
                    follower.recent_active = False
            return
        if t == M.MsgProp:
            self._leader_propose(m)
            return
        if t == M.MsgReadIndex:
            self._leader_read_index(m)
            return

        progress = self.tracker.progress.get(m.frm)
        if progress is None:
            return
        if t == M.MsgAppResp:
            self._handle_append_response(m)
        elif t == M.MsgHeartbeatResp:
            progress.recent_active = True
            progress.probe_sent = False
            if progress.state == ProgressState.REPLICATE and progress.inflights.full():
                progress.inflights.free_first_one()
            if progress.match < self.raft_log.last_index():
                self._send_append(m.frm)
            if m.context:
                self._handle_read_ack(m)
        elif t == M.MsgSnapStatus:
            if progress.state != ProgressState.SNAPSHOT:
                return
            if m.reject:
                progress.pending_snapshot = 0
            progress.become_probe()
            progress.probe_sent = True  # wait for a heartbeat response before probing again
        elif t == M.MsgUnreachable:
            if progress.state == ProgressState.REPLICATE:
                progress.become_probe()
        elif t == M.MsgTransferLeader:
            self._handle_transfer_leader(m)

    def _leader_propose(self, m: Message) -> None:
        if not m.entries:
            raise AssertionError("stepped empty MsgProp")
        if self.id not in self.tracker.progress:
            raise ProposalDropped("raft proposal dropped: this leader was removed from the configuration")
        if self.lead_transferee != NONE:
            raise ProposalDropped("raft proposal dropped: leadership transfer in progress")
        entries = list(m.entries)
        for position, entry in enumerate(entries):
            if entry.type == EntryType.CONF_CHANGE:
                if self.pending_conf_index > self.raft_log.applied:
                    raise ProposalDropped("raft proposal dropped: a configuration change is already pending")
                self.pending_conf_index = self.raft_log.last_index() + position + 1
        self._append_entries(entries)
        self._bcast_append()

    def _append_entries(self, entries: list[Entry]) -> None:
        last_index = self.raft_log.last_index()
        stamped = [Entry(self.term, last_index + 1 + i, e.type, e.data) for i, e in enumerate(entries)]
        last_index = self.raft_log.append(stamped)
        self.tracker.progress[self.id].maybe_update(last_index)
        self.maybe_commit()

    def committed_by_quorum(self) -> int:  # hook: "commit counting learners" overrides this
        return self.tracker.committed()

    def maybe_commit(self) -> bool:  # hook: "commit old-term entries" overrides this
        return self.raft_log.maybe_commit(self.committed_by_quorum(), self.term)

    def _handle_append_response(self, m: Message) -> None:
        progress = self.tracker.progress[m.frm]
        progress.recent_active = True
        if m.reject:
            # Fast back-off: jump to the follower's hint instead of decrementing one entry per round trip.
            next_probe = m.reject_hint
            if m.log_term > 0:
                next_probe = self.raft_log.find_conflict_by_term(m.reject_hint, m.log_term)[0]
            if progress.maybe_decr_to(m.index, next_probe):
                if progress.state == ProgressState.REPLICATE:
                    progress.become_probe()
                self._send_append(m.frm)
            return
        was_paused = progress.is_paused()
        if not progress.maybe_update(m.index):
            return
        if progress.state == ProgressState.PROBE:
            progress.become_replicate()
        elif progress.state == ProgressState.SNAPSHOT and progress.match + 1 >= self.raft_log.first_index():
            # The follower caught up past our compaction point: resume normal replication.
            progress.become_probe()
            progress.become_replicate()
        elif progress.state == ProgressState.REPLICATE:
            progress.inflights.free_le(m.index)
        if self.maybe_commit():
            self._release_pending_read_index_messages()
            self._bcast_append()
        elif was_paused:
            self._send_append(m.frm)
        while self._maybe_send_append(m.frm, send_if_empty=False):
            pass
        if m.frm == self.lead_transferee and progress.match == self.raft_log.last_index():
            self._send_timeout_now(m.frm)

    def _handle_transfer_leader(self, m: Message) -> None:
        transferee = m.frm
        progress = self.tracker.progress[transferee]
        if progress.is_learner:
            return
        if self.lead_transferee != NONE:
            if self.lead_transferee == transferee:
                return
            self.lead_transferee = NONE
        if transferee == self.id:
            return
        # The transfer must finish within one election timeout, else it is aborted by the tick.
        self.election_elapsed = 0
        self.lead_transferee = transferee
        if progress.match == self.raft_log.last_index():
            self._send_timeout_now(transferee)
        else:
            self._send_append(transferee)  # catch it up first; the append response sends TimeoutNow

    # --- reads

    def committed_entry_in_current_term(self) -> bool:
        return self.raft_log.zero_term_on_compacted(self.raft_log.committed) == self.term

    def _leader_read_index(self, m: Message) -> None:
        if self.tracker.is_singleton():
            self._respond_read_index(m, self.raft_log.committed)
            return
        if not self.committed_entry_in_current_term():
            # Our commit index may lag the previous leader's until an entry of our term commits: wait.
            self.pending_read_index_messages.append(m)
            return
        self._start_read_index_round(m)

    def _start_read_index_round(self, m: Message) -> None:  # hook: "read without quorum" overrides this
        ctx = m.entries[0].data
        self.read_only.add_request(self.raft_log.committed, m)
        self.read_only.recv_ack(self.id, ctx)
        self._bcast_heartbeat(ctx)

    def _handle_read_ack(self, m: Message) -> None:
        acks = self.read_only.recv_ack(m.frm, m.context)
        if acks is None:
            return
        votes = {node: True for node in acks}
        if self.tracker.vote_result(votes) != VoteResult.WON:
            return
        for status in self.read_only.advance(m.context):
            self._respond_read_index(status.request, status.index)

    def _respond_read_index(self, request: Message, index: int) -> None:
        if request.frm in (NONE, self.id):
            self.read_states.append(ReadState(index, request.entries[0].data))
        else:
            self._send(Message(M.MsgReadIndexResp, to=request.frm, frm=self.id, term=self.term, index=index,
                               entries=request.entries))

    def _release_pending_read_index_messages(self) -> None:
        if not self.pending_read_index_messages or not self.committed_entry_in_current_term():
            return
        pending, self.pending_read_index_messages = self.pending_read_index_messages, []
        for m in pending:
            self._start_read_index_round(m)

    # --- candidates and followers

    def _step_candidate(self, m: Message) -> None:
        t = m.type
        my_response = M.MsgPreVoteResp if self.role == Role.PRE_CANDIDATE else M.MsgVoteResp
        if t == M.MsgProp:
            raise ProposalDropped("raft proposal dropped: no leader (election in progress)")
        if t == M.MsgApp:
            self.become_follower(m.term, m.frm)
            self._handle_append_entries(m)
        elif t == M.MsgHeartbeat:
            self.become_follower(m.term, m.frm)
            self._handle_heartbeat(m)
        elif t == M.MsgSnap:
            self.become_follower(m.term, m.frm)
            self._handle_snapshot(m)
        elif t == my_response:
            result = self._poll(m.frm, not m.reject)
            if result == VoteResult.WON:
                if self.role == Role.PRE_CANDIDATE:
                    self._campaign(pre=False, transfer=False)
                else:
                    self.become_leader()
                    self._bcast_append()
            elif result == VoteResult.LOST:
                self.become_follower(self.term, NONE)

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t == M.MsgProp:
            if self.lead == NONE:
                raise ProposalDropped("raft proposal dropped: no leader")
            if self.disable_proposal_forwarding:
                raise ProposalDropped("raft proposal dropped: not leader and forwarding is disabled")
            self._send(Message(M.MsgProp, to=self.lead, frm=m.frm, entries=m.entries))
        elif t == M.MsgApp:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_append_entries(m)
        elif t == M.MsgHeartbeat:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_heartbeat(m)
        elif t == M.MsgSnap:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_snapshot(m)
        elif t == M.MsgTransferLeader:
            if self.lead != NONE:
                self._send(Message(M.MsgTransferLeader, to=self.lead, frm=m.frm))
        elif t == M.MsgTimeoutNow:
            self._hup(transfer=True)  # our leader hands over: campaign now, skipping PreVote
        elif t == M.MsgReadIndex:
            if self.lead != NONE:  # with no leader the read is dropped; the caller times out and retries
                self._send(Message(M.MsgReadIndex, to=self.lead, frm=m.frm, entries=m.entries))
        elif t == M.MsgReadIndexResp and len(m.entries) == 1:
            self.read_states.append(ReadState(m.index, m.entries[0].data))

    def _handle_append_entries(self, m: Message) -> None:  # hook: "no log matching check" overrides this
        if m.index < self.raft_log.committed:
            committed = self.raft_log.committed
            self._send(Message(M.MsgAppResp, to=m.frm, frm=self.id, term=self.term, index=committed))
            return
        last_new = self.raft_log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(Message(M.MsgAppResp, to=m.frm, frm=self.id, term=self.term, index=last_new))
            return
        # Reject with a hint: the last index at or below the leader's probe whose term is <= the probe's
        # term, so the leader can skip a whole term of mismatching entries in one round trip.
        hint_index = min(m.index, self.raft_log.last_index())
        hint_index, hint_term = self.raft_log.find_conflict_by_term(hint_index, m.log_term)
        self._send(Message(M.MsgAppResp, to=m.frm, frm=self.id, term=self.term, index=m.index, reject=True,
                           reject_hint=hint_index, log_term=hint_term))

    def _handle_heartbeat(self, m: Message) -> None:
        self.raft_log.commit_to(m.commit)
        self._send(Message(M.MsgHeartbeatResp, to=m.frm, frm=self.id, term=self.term, context=m.context))

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        index = self.raft_log.last_index() if self._restore(m.snapshot) else self.raft_log.committed
        self._send(Message(M.MsgAppResp, to=m.frm, frm=self.id, term=self.term, index=index))

    def _restore(self, snapshot: Snapshot) -> bool:
        meta = snapshot.metadata
        if meta.index <= self.raft_log.committed:
            return False
        if self.role != Role.FOLLOWER:
            raise AssertionError("non-follower attempted to restore snapshot")
        conf = meta.conf_state
        if self.id not in conf.voters and self.id not in conf.learners:
            return False  # a snapshot from before we were added: wait for a newer one
        if self.raft_log.match_term(meta.index, meta.term):
            # We already have the snapshot's last entry: just fast-forward the commit index.
            self.raft_log.commit_to(meta.index)
            return False
        self.raft_log.restore(snapshot)
        self.tracker.progress.clear()
        self._switch_to_config(conf)
        return True

    # --- membership

    def apply_conf_change(self, change: ConfChange) -> ConfState:
        try:
            conf = confchange.apply_change(self.tracker.conf_state(), change)
        except confchange.ConfChangeError:
            return self.tracker.conf_state()  # refused identically on every member
        return self._switch_to_config(conf)

    def _switch_to_config(self, conf: ConfState) -> ConfState:
        self.tracker.set_config(conf, max(self.raft_log.last_index(), 1))
        progress = self.tracker.progress.get(self.id)
        self.is_learner = progress is not None and progress.is_learner
        if self.role != Role.LEADER:
            return conf
        if progress is None or self.is_learner:
            self._step_down_after_removal()
            return conf
        if self.maybe_commit():
            self._bcast_append()  # a smaller quorum may commit more now
        else:
            for node in self.tracker.progress:
                if node != self.id:
                    self._maybe_send_append(node, send_if_empty=False)
        if self.lead_transferee != NONE and self.lead_transferee not in self.tracker.voters:
            self.lead_transferee = NONE
        return conf

    def _step_down_after_removal(self) -> None:
        """This leader was removed: hand over to the most up-to-date voter (if it is caught up) so the
        cluster does not wait out an election timeout, and stop leading."""
        last_index = self.raft_log.last_index()
        caught_up = [(p.match, node) for node, p in self.tracker.progress.items()
                     if node in self.tracker.voters and p.match == last_index]
        self._bcast_heartbeat()  # tell the others the commit index, which includes our removal
        if caught_up:
            self._send_timeout_now(max(caught_up)[1])
        self.become_follower(self.term, NONE)

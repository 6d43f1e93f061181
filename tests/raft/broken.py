"""Deliberately broken Raft variants. The simulator must report a violation for each: a checker that cannot
fail proves nothing. Only tests use these; each overrides one hook of `Raft`."""

from __future__ import annotations

from petcd.raft import quorum
from petcd.raft.raft import Raft
from petcd.raft.types import NONE, HardState, Message


class VoteNotPersisted(Raft):
    """The vote is never written to the hard state, so a restarted member may vote twice in a term."""

    def hard_state(self) -> HardState:
        return HardState(self.term, NONE, self.raft_log.committed)


class CommitCountsLearners(Raft):
    """Learners' acknowledgements count towards the commit quorum."""

    def committed_by_quorum(self) -> int:
        members = self.tracker.voters | self.tracker.learners
        return quorum.committed_index(members, {n: self.tracker.progress[n].match for n in members})


class CommitsOldTermEntries(Raft):
    """The leader commits whatever a majority holds, even entries of earlier terms (Raft §5.4.2, figure 8)."""

    def maybe_commit(self) -> bool:
        index = self.committed_by_quorum()
        if index > self.raft_log.committed and index <= self.raft_log.last_index():
            self.raft_log.commit_to(index)
            return True
        return False


class NoLogMatchingCheck(Raft):
    """A follower appends after any index it has, without checking that the preceding terms match."""

    def _handle_append_entries(self, m: Message) -> None:
        log = self.raft_log
        if log.committed <= m.index <= log.last_index() and not log.match_term(m.index, m.log_term):
            prev_term = log.term(m.index)
            m = Message(m.type, to=m.to, frm=m.frm, term=m.term, log_term=prev_term, index=m.index,
                        entries=m.entries, commit=m.commit)
        super()._handle_append_entries(m)


class ReadsWithoutQuorum(Raft):
    """The leader answers a read index at once, without confirming it is still the leader."""

    def _start_read_index_round(self, m: Message) -> None:
        self._respond_read_index(m, self.raft_log.committed)


SAFETY = frozenset({"election safety", "log matching", "leader completeness", "state machine safety",
                    "commit quorum", "leader commit rule", "core assertion"})

BROKEN_VARIANTS: dict[str, tuple[type[Raft], frozenset[str]]] = {
    # name: (variant, the invariants that may report it)
    "vote not persisted": (VoteNotPersisted, SAFETY),
    "commit counts learners": (CommitCountsLearners, SAFETY),
    "commit old-term entries": (CommitsOldTermEntries, SAFETY),
    "no log matching check": (NoLogMatchingCheck, SAFETY),
    "reads without quorum": (ReadsWithoutQuorum, frozenset({"linearizable read"})),
}

"""The leader's bookkeeping: the configuration, each member's `Progress`, and the votes of an election."""

from __future__ import annotations

from petcd.raft import quorum
from petcd.raft.progress import Progress
from petcd.raft.types import ConfState


class ProgressTracker:
    def __init__(self, max_inflight: int) -> None:
        self.voters: frozenset[int] = frozenset()
        self.learners: frozenset[int] = frozenset()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.max_inflight = max_inflight

    def conf_state(self) -> ConfState:
        return ConfState(voters=tuple(sorted(self.voters)), learners=tuple(sorted(self.learners)))

    def set_config(self, conf: ConfState, next_index: int) -> None:
        """Adopt `conf`, keeping the progress of members that stay and probing the new ones."""
        self.voters = frozenset(conf.voters)
        self.learners = frozenset(conf.learners)
        members = self.voters | self.learners
        for gone in [node for node in self.progress if node not in members]:
            del self.progress[gone]
        for node in members:
            progress = self.progress.get(node)
            if progress is None:
                self.progress[node] = Progress(next_index, self.max_inflight, node in self.learners)
            else:
                progress.is_learner = node in self.learners

    def is_singleton(self) -> bool:
        """One voter (the leader): it confirms reads alone. Learners do not count (etcd's IsSingleton),
        else a one-member cluster that adds a learner not yet running could not serve a linearizable
        read until the learner answered."""
        return len(self.voters) == 1

    def committed(self) -> int:
        """The highest index replicated on a quorum of voters (learners never count)."""
        return quorum.committed_index(self.voters, {node: self.progress[node].match for node in self.voters})

    def quorum_active(self, self_id: int) -> bool:
        """Has a quorum of voters (counting ourselves) been heard from recently? (CheckQuorum)"""
        active = {node: node == self_id or self.progress[node].recent_active for node in self.voters}
        return quorum.vote_result(self.voters, active) == quorum.VoteResult.WON

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, node: int, granted: bool) -> None:
        self.votes.setdefault(node, granted)

    def vote_result(self, votes: dict[int, bool]) -> quorum.VoteResult:
        return quorum.vote_result(self.voters, votes)

    def tally_votes(self) -> tuple[int, int, quorum.VoteResult]:
        granted = sum(1 for node, vote in self.votes.items() if vote and node in self.voters)
        rejected = sum(1 for node, vote in self.votes.items() if not vote and node in self.voters)
        return granted, rejected, quorum.vote_result(self.voters, self.votes)

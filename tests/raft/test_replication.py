"""Election, replication and commit in a healthy cluster, through the public RawNode API."""

from __future__ import annotations

import pytest
from petcd.raft import ProposalDropped
from petcd.raft.types import EntryType, Role

from tests.raft.cluster import Cluster


def elect(cluster: Cluster, node: int) -> None:
    cluster.members[node].node.campaign()
    cluster.stabilize()
    assert cluster.leader() == node


def test_campaign_elects_a_leader_that_all_follow() -> None:
    cluster = Cluster((1, 2, 3))
    elect(cluster, 1)
    for member in cluster.members.values():
        assert member.raft.lead == 1
        assert member.raft.term == 2  # bootstrap is term 1; PreVote leaves it; the real election makes it 2


def test_ticks_alone_elect_exactly_one_leader() -> None:
    cluster = Cluster((1, 2, 3), seed=7)
    cluster.tick_all(30)
    leaders = [n for n, m in cluster.members.items() if m.raft.role == Role.LEADER]
    assert len(leaders) == 1


def test_proposals_commit_and_apply_everywhere_in_order() -> None:
    cluster = Cluster((1, 2, 3))
    elect(cluster, 1)
    for i in range(5):
        cluster.members[1].node.propose(f"k{i}=v{i}".encode())
    cluster.stabilize()
    for member in cluster.members.values():
        assert member.kv == {f"k{i}": f"v{i}" for i in range(5)}
        data = [e.data for e in member.storage.entries(4, member.storage.last_index() + 1)]
        assert data == [b"", *(f"k{i}=v{i}".encode() for i in range(5))]  # after 3 bootstrap entries


def test_follower_proposal_is_forwarded_to_the_leader() -> None:
    cluster = Cluster((1, 2, 3))
    elect(cluster, 1)
    cluster.members[3].node.propose(b"from=follower")
    cluster.stabilize()
    assert all(m.kv == {"from": "follower"} for m in cluster.members.values())


def test_proposal_without_a_known_leader_is_dropped() -> None:
    cluster = Cluster((1, 2, 3))
    with pytest.raises(ProposalDropped):
        cluster.members[2].node.propose(b"nobody=listens")


def test_ready_hands_out_entries_once_even_before_advance() -> None:
    cluster = Cluster((1,))
    node = cluster.members[1].node
    node.campaign()
    first = node.ready()
    assert [e.type for e in first.entries] == [EntryType.NORMAL]  # the new leader's empty entry
    node.propose(b"a=1")
    second = node.ready()
    assert [e.data for e in second.entries] == [b"a=1"]
    assert first.committed_entries and second.committed_entries[0].index == 3

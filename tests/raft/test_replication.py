"""Election, replication and commit in a healthy cluster, through the public RawNode API."""

from __future__ import annotations

import pytest
from petcd.raft import ProposalDropped
from petcd.raft.types import EntryType, Message, MessageType, Role

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


def appends_to(cluster: Cluster, node: int) -> list[Message]:
    return [m for m in cluster.network.queue if m.to == node and m.type == MessageType.MsgApp]


def test_appends_are_split_by_max_message_size() -> None:
    cluster = Cluster((1, 2, 3), max_size_per_msg=1)
    elect(cluster, 1)
    for i in range(3):
        cluster.members[1].node.propose(f"k{i}=v".encode())
    cluster.network.cut.update({(1, 3), (3, 1)})
    cluster.stabilize()
    cluster.network.heal()
    cluster.members[1].node.tick()  # heartbeat: 3 answers, 1 sends what 3 lacks
    cluster.process_ready()
    while not appends_to(cluster, 3):
        queue, cluster.network.queue = cluster.network.queue, []
        for message in queue:
            cluster.deliver(message)
        cluster.process_ready()
    assert all(len(m.entries) <= 1 for m in appends_to(cluster, 3))
    cluster.stabilize()
    assert cluster.members[3].kv == {"k0": "v", "k1": "v", "k2": "v"}


def test_pipelining_stops_at_max_inflight_messages() -> None:
    cluster = Cluster((1, 2), max_inflight=2, max_size_per_msg=1)
    elect(cluster, 1)
    for i in range(5):
        cluster.members[1].node.propose(f"k{i}=v".encode())
    cluster.process_ready()
    # Follower 2 is in REPLICATE state: two appends are in flight, the rest wait for acknowledgements.
    assert len(appends_to(cluster, 2)) == 2
    cluster.stabilize()
    assert cluster.members[2].kv == {f"k{i}": "v" for i in range(5)}


def test_a_long_divergent_follower_log_is_repaired_in_few_round_trips() -> None:
    cluster = Cluster((1, 2, 3), check_quorum=False)  # no leader lease: a new election may start at once
    elect(cluster, 1)
    cluster.network.isolate(1, [2, 3])
    for i in range(50):  # 1 appends entries of term 2 that nobody else gets: never committed
        cluster.members[1].node.propose(f"stale{i}=x".encode())
    cluster.stabilize()
    cluster.crash(1)
    cluster.network.heal()
    elect(cluster, 3)
    for i in range(30):  # meanwhile 2 and 3 commit 30 entries of term 3 at the same indexes
        cluster.members[3].node.propose(f"fresh{i}=y".encode())
    cluster.stabilize()
    cluster.crash(3)
    cluster.restart(1)
    rejections = 0
    cluster.members[2].node.campaign()  # 1 votes for 2 (a longer term-3 log), then 2 probes 1 at its end
    for _ in range(100):
        cluster.process_ready()
        if not cluster.network.queue:
            break
        queue, cluster.network.queue = cluster.network.queue, []
        rejections += sum(1 for m in queue if m.type == MessageType.MsgAppResp and m.reject and m.frm == 1)
        for message in queue:
            cluster.deliver(message)
    assert cluster.leader() == 2
    assert cluster.members[1].kv == {f"fresh{i}": "y" for i in range(30)}
    # The reject hint skips the whole stale term at once instead of one entry per round trip (30).
    assert 1 <= rejections <= 2

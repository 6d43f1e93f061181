"""RawNode's contract with the shell: what a Ready carries, must_sync, local messages, restarts."""

from __future__ import annotations

import random

import pytest
from petcd.raft import Config, MemoryStorage, RawNode
from petcd.raft.types import HardState, Message, MessageType

from tests.raft.cluster import Cluster


def test_local_message_types_cannot_be_stepped_from_the_network() -> None:
    node = RawNode(Config(id=1, storage=MemoryStorage(), rng=random.Random(1)))
    with pytest.raises(ValueError, match="local message"):
        node.step(Message(MessageType.MsgHup, frm=2, to=1))


def test_bootstrap_refuses_a_storage_that_has_a_log() -> None:
    storage = MemoryStorage()
    node = RawNode(Config(id=1, storage=storage, rng=random.Random(1)))
    node.bootstrap([1, 2, 3])
    ready = node.ready()
    assert [e.index for e in ready.entries] == [1, 2, 3]
    assert ready.hard_state == HardState(term=1, vote=0, commit=3) and ready.must_sync
    storage.append(ready.entries)
    node.advance(ready)
    with pytest.raises(ValueError, match="nonempty"):
        RawNode(Config(id=1, storage=storage, rng=random.Random(1))).bootstrap([1, 2, 3])


def deliver_to(cluster: Cluster, node: int) -> None:
    messages = [m for m in cluster.network.queue if m.to == node]
    cluster.network.queue = [m for m in cluster.network.queue if m.to != node]
    for message in messages:
        cluster.deliver(message)


def test_must_sync_only_for_entries_term_or_vote() -> None:
    cluster = Cluster((1, 2, 3))
    leader, follower = cluster.members[1].node, cluster.members[2].node
    leader.campaign()
    ready = leader.ready()  # pre-candidate: nothing to persist, only pre-votes to send
    assert not ready.must_sync and ready.messages
    cluster.network.send(ready.messages)
    leader.advance(ready)
    cluster.stabilize()
    leader.propose(b"a=1")
    cluster.process_ready()  # the leader persists and sends the entry
    deliver_to(cluster, 2)
    with_entry = follower.ready()
    assert with_entry.entries and with_entry.must_sync
    cluster.members[2].storage.append(with_entry.entries)
    cluster.network.send(with_entry.messages)
    follower.advance(with_entry)
    deliver_to(cluster, 1)  # the acknowledgement commits the entry; the leader tells 2
    leader_ready = cluster.members[1].handle_ready()
    assert leader_ready is not None
    cluster.network.send(leader_ready.messages)
    deliver_to(cluster, 2)
    commit_only = follower.ready()
    assert commit_only.hard_state is not None
    assert commit_only.hard_state.commit == with_entry.entries[-1].index
    assert not commit_only.entries and not commit_only.must_sync


def test_a_restarted_member_applies_only_what_its_snapshot_does_not_hold() -> None:
    cluster = Cluster((1, 2, 3))
    cluster.members[1].node.campaign()
    cluster.stabilize()
    for i in range(3):
        cluster.members[1].node.propose(f"k{i}=v".encode())
    cluster.stabilize()
    member = cluster.members[2]
    assert member.take_snapshot()  # the state machine is durable up to here
    snapshot_index = member.storage.snapshot().metadata.index
    cluster.members[1].node.propose(b"after=snapshot")
    cluster.stabilize()
    last = member.storage.last_index()
    cluster.crash(2)
    cluster.restart(2)  # rebuilt from the disk, with Config.applied = the snapshot's index
    reapplied: list[int] = []
    while member.handle_ready(lambda _member, entry: reapplied.append(entry.index)) is not None:
        pass
    assert reapplied == list(range(snapshot_index + 1, last + 1))
    assert member.kv == {"k0": "v", "k1": "v", "k2": "v", "after": "snapshot"}

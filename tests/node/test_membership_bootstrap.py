"""The bootstrap decisions (petcd.server.bootstrap) in-process: founding, joining, refusals with
etcd's messages, and --force-new-cluster's rewrite of a recovered log. The peers' `/members`
answers are given as data; what they would be is what the node tests get from real members."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from petcd.config import Config, ConfigError
from petcd.proto import raft_internal_pb2 as ipb
from petcd.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    decode_conf_change,
    encode_conf_change,
)
from petcd.server import bootstrap
from petcd.server.ids import cluster_id, member_id
from petcd.transport.peer_http import ClusterInfoError, MemberInfo

pytestmark = pytest.mark.unit

A, B, C = "http://127.0.0.1:2380", "http://127.0.0.2:2380", "http://127.0.0.3:2380"
CLUSTER = f"a={A},b={B},c={C}"
TOKEN = "etcd-cluster-1"


def config(name: str, url: str, state: str = "new", cluster: str = CLUSTER) -> Config:
    return Config(
        name=name,
        initial_cluster=cluster,
        initial_cluster_token=TOKEN,
        initial_advertise_peer_urls=(url,),
        initial_cluster_state=state,
    )


def answering(cid: int, members: Sequence[MemberInfo]) -> bootstrap.FetchMembers:
    async def fetch(urls: Sequence[str], timeout: float) -> tuple[int, tuple[MemberInfo, ...]]:
        return cid, tuple(members)

    return fetch


async def nobody(urls: Sequence[str], timeout: float) -> tuple[int, tuple[MemberInfo, ...]]:
    raise ClusterInfoError("could not retrieve cluster information from the given URLs")


def test_new_cluster_founders_are_the_initial_members() -> None:
    plan = asyncio.run(bootstrap.plan(config("b", B), nobody))
    ids = {n: member_id([u], TOKEN) for n, u in (("a", A), ("b", B), ("c", C))}
    assert plan.member_id == ids["b"]
    assert plan.founders == tuple(sorted(ids.values()))
    assert plan.membership.cluster_id == cluster_id(ids.values())
    assert {m.name for m in plan.membership.members.values()} == {"a", "b", "c"}


def test_new_refused_when_a_peer_lists_this_member_as_started() -> None:
    me = member_id([C], TOKEN)
    started = MemberInfo(me, (C,), "c", ("http://127.0.0.3:2379",))
    with pytest.raises(ConfigError, match=f"^member {me:x} has already been bootstrapped$"):
        asyncio.run(bootstrap.plan(config("c", C), answering(1, [started])))


def test_new_goes_ahead_when_peers_list_this_member_unstarted() -> None:
    """Peers that started first know this member only from --initial-cluster (no client URLs)."""
    me = member_id([C], TOKEN)
    plan = asyncio.run(bootstrap.plan(config("c", C), answering(1, [MemberInfo(me, (C,), "c")])))
    assert plan.member_id == me


def test_existing_takes_over_the_added_id_and_the_cluster_id() -> None:
    added = 0x1234
    members = [
        MemberInfo(member_id([A], TOKEN), (A,), "a", ("http://127.0.0.1:2379",)),
        MemberInfo(added, (B,), "", (), is_learner=True),
    ]
    plan = asyncio.run(bootstrap.plan(config("b", B, "existing", f"a={A},b={B}"), answering(77, members)))
    assert (plan.member_id, plan.membership.cluster_id, plan.founders) == (added, 77, ())
    assert plan.membership.members[added].is_learner


def test_existing_refused_when_the_cluster_has_another_member_count() -> None:
    running = MemberInfo(0x63B1F12A25D671B1, (A,), "e1", ("http://127.0.0.1:2379",))
    expected = (
        "error validating peerURLs {ClusterID:fb724fe03be6b51d Members:[&{ID:63b1f12a25d671b1"
        f" RaftAttributes:{{PeerURLs:[{A}] IsLearner:false}} Attributes:{{Name:e1 ClientURLs:"
        "[http://127.0.0.1:2379]}}] RemovedMemberIDs:[]}: member count is unequal"  # etcd's words
        f"; add it first with `etcdctl member add e2 --peer-urls={B}`, or use --initial-cluster-state new"
    )
    cfg = config("e2", B, "existing", f"e1={A},e2={B}")
    with pytest.raises(ConfigError) as refused:
        asyncio.run(bootstrap.plan(cfg, answering(0xFB724FE03BE6B51D, [running])))
    assert str(refused.value) == expected


def test_existing_for_an_added_member_with_too_short_an_initial_cluster_gets_no_add_hint() -> None:
    """The cluster knows b (added, not started): telling the user to add it again would be wrong."""
    members = [MemberInfo(1, (A,), "a"), MemberInfo(2, (B,), ""), MemberInfo(3, (C,), "c")]
    with pytest.raises(ConfigError) as refused:
        asyncio.run(bootstrap.plan(config("b", B, "existing", f"a={A},b={B}"), answering(5, members)))
    assert str(refused.value).endswith(": member count is unequal")


def test_existing_refused_when_peer_urls_do_not_match() -> None:
    members = [MemberInfo(1, (A,), "a"), MemberInfo(2, ("http://127.0.0.9:2380",), "")]
    with pytest.raises(ConfigError, match=r"PeerURLs: no match found for existing member \(2, "):
        asyncio.run(bootstrap.plan(config("b", B, "existing", f"a={A},b={B}"), answering(5, members)))


def test_existing_refused_when_no_peer_answers() -> None:
    with pytest.raises(ConfigError, match=r"^cannot fetch cluster info from peer urls: could not retrieve"):
        asyncio.run(bootstrap.plan(config("b", B, "existing"), nobody))


def conf_entry(index: int, kind: ConfChangeType, node: int) -> Entry:
    return Entry(1, index, EntryType.CONF_CHANGE, encode_conf_change(ConfChange(kind, node)))


def test_force_new_cluster_removes_every_other_member_and_drops_uncommitted_entries() -> None:
    log = [
        conf_entry(1, ConfChangeType.ADD_NODE, 1),
        conf_entry(2, ConfChangeType.ADD_NODE, 2),
        conf_entry(3, ConfChangeType.ADD_NODE, 3),
        conf_entry(4, ConfChangeType.ADD_LEARNER_NODE, 4),
        conf_entry(5, ConfChangeType.REMOVE_NODE, 3),
        Entry(1, 6, EntryType.NORMAL, b"committed"),
        Entry(1, 7, EntryType.NORMAL, b"not committed"),
    ]
    kept, appended, hard = bootstrap.force_new_cluster(ConfState(), log, HardState(1, 1, 6), me=1)
    assert kept == log[:6]
    changes = [decode_conf_change(e.data) for e in appended]
    assert [(c.type, c.node_id) for c in changes] == [
        (ConfChangeType.REMOVE_NODE, 2),
        (ConfChangeType.REMOVE_NODE, 4),
    ]
    assert [e.index for e in appended] == [7, 8] and hard == HardState(1, 1, 8)
    assert ipb.ConfChangeContext.FromString(changes[0].context).member.ID == 2


def test_force_new_cluster_starts_from_the_snapshot_configuration() -> None:
    snapshot_conf = ConfState(voters=(1, 2))
    kept, appended, hard = bootstrap.force_new_cluster(snapshot_conf, [], HardState(3, 2, 10), me=2)
    assert kept == [] and hard.commit == 11
    assert [decode_conf_change(e.data).node_id for e in appended] == [1]
    assert appended[0].term == 3 and appended[0].index == 11


def test_founding_contexts_carry_name_and_peer_urls() -> None:
    plan = asyncio.run(bootstrap.plan(config("a", A), nobody))
    contexts = bootstrap.founding_contexts(plan.membership)
    member = ipb.ConfChangeContext.FromString(contexts[plan.member_id]).member
    assert (member.ID, member.name, list(member.peerURLs)) == (plan.member_id, "a", [A])

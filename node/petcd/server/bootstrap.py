"""Where a member stands when it starts: founding a cluster, joining one, or forcing a new one
(etcd's bootstrap in etcdserver/server.go and restartAsStandaloneNode).

`plan(config)` runs before anything is written to the data dir, so a refused start (wrong flags, a
member that was already bootstrapped, a cluster that does not list this member) leaves no trace.
It asks the peers' `/members` endpoint, as etcd does:

- `new`: the founding members come from --initial-cluster, a discovery URL or DNS SRV records. If
  a peer lists this member with client URLs, it started before and lost its data dir: refused with
  `member <id> has already been bootstrapped` (a fresh start would found a second cluster).
- `existing`: the cluster's member list must match --initial-cluster member for member (by peer
  URLs); this member takes over the ID MemberAdd gave it and the cluster's ID.

A founding member writes its configuration into the log with `RawNode.bootstrap` (one ADD_NODE entry
per founder, carrying the member as a ConfChangeContext), so a member added later learns it by
replaying the log. `force_new_cluster` rewrites a recovered log into a one-member configuration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from petcd.config import Config, ConfigError
from petcd.discovery.bootstrap import initial_members
from petcd.proto import raft_internal_pb2 as ipb
from petcd.proto import rpc_pb2 as pb
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
from petcd.server.ids import member_id
from petcd.server.membership import Member, Membership
from petcd.transport.peer_http import ClusterInfoError, MemberInfo, fetch_cluster_info

# etcd's default --bootstrap-timeout for asking peers whether this member was bootstrapped before.
BOOTSTRAPPED_CHECK_TIMEOUT = 1.0

FetchMembers = Callable[[Sequence[str], float], Awaitable[tuple[int, tuple[MemberInfo, ...]]]]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a member with no data starts from."""

    member_id: int
    membership: Membership
    founders: tuple[int, ...]  # the voters to RawNode.bootstrap; () when joining a running cluster


async def plan(config: Config, fetch: FetchMembers = fetch_cluster_info) -> Plan:
    """Raises ConfigError (or DiscoveryError) with etcd's message when the start must be refused."""
    if config.initial_cluster_state == "existing":
        return await _join(config, fetch)
    return await _found(config, fetch)


async def _found(config: Config, fetch: FetchMembers) -> Plan:
    token = config.bootstrap_token
    if config.discovery_srv:
        members = await initial_members(config, 0)  # the SRV records name every member
    else:
        members = config.bootstrap_members()
    config.verify_bootstrap(members)
    local = Membership.bootstrap({n: list(u) for n, u in members.items()}, token)
    me = member_id(members[config.name], token)
    remote = remote_peer_urls(members, config.name)
    if remote:
        try:
            _, infos = await fetch(remote, BOOTSTRAPPED_CHECK_TIMEOUT)
        except ClusterInfoError:
            infos = ()  # nobody answers yet: the usual first start of a new cluster
        if is_bootstrapped(infos, me):
            raise ConfigError(f"member {me:x} has already been bootstrapped")
    if config.discovery:
        members = await initial_members(config, me)
        local = Membership.bootstrap({n: list(u) for n, u in members.items()}, token)
    return Plan(me, local, local.voters())


async def _join(config: Config, fetch: FetchMembers) -> Plan:
    members = config.initial_cluster_members
    config.verify_bootstrap(members)
    try:
        cluster_id, infos = await fetch(remote_peer_urls(members, config.name), 5.0)
    except ClusterInfoError as exc:
        raise ConfigError(f"cannot fetch cluster info from peer urls: {exc}") from None
    try:
        ids = assign_ids(members, cluster_id, infos)
    except ConfigError as exc:
        mine = members[config.name]
        if any(sorted(i.peer_urls) == sorted(mine) for i in infos):
            raise
        # The cluster does not know this member at all: etcd's words, then the fix (issue 12).
        raise ConfigError(f"{exc}; add it first with `etcdctl member add {config.name} "
                          f"--peer-urls={','.join(mine)}`, or use --initial-cluster-state new") from None
    joined = Membership(
        cluster_id,
        {i.id: Member(i.id, i.name, i.peer_urls, i.client_urls, i.is_learner) for i in infos},
    )
    return Plan(ids[config.name], joined, ())


def remote_peer_urls(members: dict[str, tuple[str, ...]], name: str) -> list[str]:
    """The other members' peer URLs, sorted (etcd's getRemotePeerURLs)."""
    return sorted(url for n, urls in members.items() if n != name for url in urls)


def is_bootstrapped(remote: Iterable[MemberInfo], me: int) -> bool:
    """etcd's isMemberBootstrapped: the cluster lists this member and it has published client URLs."""
    return any(m.id == me and m.client_urls for m in remote)


def assign_ids(
    members: dict[str, tuple[str, ...]], cluster_id: int, remote: Sequence[MemberInfo]
) -> dict[str, int]:
    """etcd's ValidateClusterAndAssignIDs: every member the cluster lists must be one of
    --initial-cluster (same peer URLs); returns the cluster's ID for each name."""
    failure = ""
    if len(remote) != len(members):
        failure = "member count is unequal"
    ids: dict[str, int] = {}
    for existing in sorted(remote, key=lambda m: m.id) if not failure else ():
        wanted = sorted(existing.peer_urls)
        name = next((n for n, urls in members.items() if sorted(urls) == wanted and n not in ids), None)
        if name is None:
            last = sorted(list(members.values())[-1]) if members else []
            failure = (
                f"PeerURLs: no match found for existing member ({existing.id:x}, {_go_list(wanted)}),"
                f" last resolver error ({_urls_differ(wanted, last)})"
            )
            break
        ids[name] = existing.id
    if failure:
        raise ConfigError(f"error validating peerURLs {describe_cluster(cluster_id, remote)}: {failure}")
    return ids


def _urls_differ(a: Sequence[str], b: Sequence[str]) -> str:
    """netutil.URLStringsEqual's error for two URL lists that differ."""
    if len(a) != len(b):
        return f"len({_go_quoted(a)}) != len({_go_quoted(b)})"
    first = next(i for i in range(len(a)) if a[i] != b[i])
    return f'resolved urls: "{a[first]}" != "{b[first]}"'


def _go_list(items: Sequence[str]) -> str:
    return "[" + " ".join(items) + "]"


def _go_quoted(items: Sequence[str]) -> str:
    return "[" + " ".join(f'"{item}"' for item in items) + "]"


def describe_cluster(cluster_id: int, members: Sequence[MemberInfo]) -> str:
    """A RaftCluster as etcd's String() prints it (members as Go's %+v of *Member)."""
    shown = " ".join(
        f"&{{ID:{m.id:x} RaftAttributes:{{PeerURLs:{_go_list(m.peer_urls)}"
        f" IsLearner:{str(m.is_learner).lower()}}}"
        f" Attributes:{{Name:{m.name} ClientURLs:{_go_list(m.client_urls)}}}}}"
        for m in sorted(members, key=lambda m: m.id)
    )
    return f"{{ClusterID:{cluster_id:x} Members:[{shown}] RemovedMemberIDs:[]}}"


def founding_contexts(membership: Membership) -> dict[int, bytes]:
    """Each founder's bootstrap entry carries the member (name, peer URLs), like a MemberAdd's."""
    return {
        m.id: ipb.ConfChangeContext(
            member=pb.Member(ID=m.id, name=m.name, peerURLs=list(m.peer_urls))
        ).SerializeToString()
        for m in membership.members.values()
    }


def force_new_cluster(
    initial: ConfState, entries: Sequence[Entry], hard_state: HardState, me: int
) -> tuple[list[Entry], list[Entry], HardState]:
    """etcd's --force-new-cluster on a recovered log: drop the uncommitted entries, then append (and
    commit) one REMOVE_NODE per other member known to the configuration as of the last committed
    entry, and an ADD_NODE for this member if it is not in it.

    `initial` is the configuration before `entries` (the snapshot's, or the bootstrap one). Returns
    (the kept entries, the appended entries, the new hard state)."""
    kept = [e for e in entries if e.index <= hard_state.commit]
    ids = set(initial.voters) | set(initial.learners)
    for entry in kept:
        if entry.type != EntryType.CONF_CHANGE:
            continue
        change = decode_conf_change(entry.data)
        if change.type in (ConfChangeType.ADD_NODE, ConfChangeType.ADD_LEARNER_NODE):
            ids.add(change.node_id)
        elif change.type == ConfChangeType.REMOVE_NODE:
            ids.discard(change.node_id)
    changes = [ConfChange(ConfChangeType.REMOVE_NODE, i, _context(i)) for i in sorted(ids) if i != me]
    if me not in ids:
        changes.append(ConfChange(ConfChangeType.ADD_NODE, me, _context(me)))
    first = hard_state.commit + 1
    appended = [
        Entry(hard_state.term, index, EntryType.CONF_CHANGE, encode_conf_change(change))
        for index, change in enumerate(changes, start=first)
    ]
    commit = appended[-1].index if appended else hard_state.commit
    return kept, appended, HardState(hard_state.term, hard_state.vote, commit)


def _context(member: int) -> bytes:
    return ipb.ConfChangeContext(member=pb.Member(ID=member)).SerializeToString()

"""EtcdServer: what the gRPC services call. Proposes writes through Raft and waits for their apply,
serves reads after a ReadIndex round (or locally when serializable), and keeps the leader-only
duties (lease expiry, auto-compaction) and the member's own attributes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from petcd.api import convert, errors
from petcd.auth.caller import header_fields
from petcd.log import get_logger
from petcd.proto import raft_internal_pb2 as ipb
from petcd.proto import rpc_pb2 as pb
from petcd.raft.node import ProposalDropped, RawNode
from petcd.raft.storage import MemoryStorage
from petcd.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    HardState,
    ReadState,
    Role,
    Snapshot,
    SoftState,
)
from petcd.server import reconfig
from petcd.server.apply import StateMachine
from petcd.server.background import Background
from petcd.server.ids import RequestIdGenerator, member_id
from petcd.server.leader_forward import LeaderForwarder
from petcd.server.peer_activity import PeerActivity
from petcd.server.read_index import ReadIndexBatcher
from petcd.server.wait import IndexWaiter, Waiters
from petcd.storage.errors import LeaseNotFoundError
from petcd.storage.kv import Event
from petcd.storage.mvcc import MVCCStore

log = get_logger("server")

SERVER_VERSION = "3.5.17"
CLUSTER_VERSION = "3.5.0"
MAX_GAP_BETWEEN_APPLY_AND_COMMIT = 5000  # etcd's maxGapBetweenApplyAndCommitIndex
LEASE_EXPIRY_CHECK_SECONDS = 0.5
MAX_LEASE_REVOKES_PER_ROUND = 500  # etcd rate-limits expiry revokes to 1000/s


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The parts of the configuration the server core uses."""

    name: str
    member_id: int
    client_urls: tuple[str, ...]
    heartbeat_seconds: float
    election_seconds: float
    max_request_bytes: int
    max_txn_ops: int
    quota_backend_bytes: int

    @property
    def request_timeout(self) -> float:
        """etcd: 5 s + 2 × election timeout."""
        return 5.0 + 2 * self.election_seconds


class EtcdServer:
    def __init__(
        self,
        settings: ServerSettings,
        node: RawNode,
        raft_storage: MemoryStorage,
        state: StateMachine,
    ) -> None:
        self.settings = settings
        self.node = node
        self.raft_storage = raft_storage
        self.state = state
        self.store: MVCCStore = state.store
        self.member_id = settings.member_id
        self.max_txn_ops = settings.max_txn_ops
        self.leader_id = 0
        self.role = Role.FOLLOWER
        self.term = 0
        self.committed_index = 0
        self.applied = IndexWaiter(self.store.consistent_index)
        self.waiters = Waiters()
        self.ids = RequestIdGenerator(settings.member_id, int(time.time() * 1000))
        self._leader_known = asyncio.Event()
        self._revoking: set[int] = set()
        self._background = Background()
        self.stopped = False
        self.poke: Callable[[], None] = lambda: None  # set by the Ready loop's owner
        # Set once the cluster knows this member's name and client URLs (etcd's ReadyNotify).
        self.published = asyncio.Event()
        self.on_events: Callable[[Sequence[Event]], None] = lambda events: None  # the watch hub
        self.on_removed: Callable[[], None] = lambda: None
        self.on_membership_changed: Callable[[], None] = lambda: None
        self.on_leader_change: Callable[[int], None] = lambda leader: None
        self.is_peer_active: Callable[[int], bool] = lambda peer: False  # the transport's view
        self.peers = PeerActivity()
        # A follower's MemberPromote goes to the leader over the peer port (set by the member).
        self.forward_promote: Callable[[int], Awaitable[list[pb.Member]]] = self._cannot_forward
        self.forwarder = LeaderForwarder(settings.request_timeout)
        self.read_index = ReadIndexBatcher(
            self._request_read_index, self.applied.wait, settings.request_timeout
        )

    @property
    def cluster_id(self) -> int:
        return self.state.membership.cluster_id

    def header(self, revision: int | None = None) -> pb.ResponseHeader:
        return pb.ResponseHeader(
            cluster_id=self.cluster_id,
            member_id=self.member_id,
            revision=self.store.current_revision if revision is None else revision,
            raft_term=self.term,
        )

    # ---- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.read_index.start()
        self._background.spawn(self._lease_expiry_loop())
        self._background.spawn(self._publish_loop())
        self._background.spawn(self._peer_activity_loop())

    async def stop(self) -> None:
        await self._hand_over_leadership()
        self.stopped = True
        await self._background.stop()
        await self.read_index.stop()
        await self.forwarder.close()
        self.waiters.fail_all(errors.STOPPED)
        self.applied.fail_all(errors.STOPPED)

    async def _hand_over_leadership(self) -> None:
        """etcd's TransferLeadershipOnShutdown: a stopping leader hands over to its most caught-up
        voter first, so clients see a leader change instead of an election timeout."""
        if self.role != Role.LEADER:
            return
        progress = self.node.status().progress
        voters = [v for v in self.conf_state.voters if v != self.member_id and v in progress]
        if not voters:
            return
        target = max(voters, key=lambda v: progress[v].match)
        self.node.transfer_leader(target)
        self.poke()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.election_seconds
        while self.leader_id == self.member_id and loop.time() < deadline:
            await asyncio.sleep(self.settings.heartbeat_seconds)
        log.info("leadership transferred before stopping", transferee=f"{target:x}",
                 done=self.leader_id == target)

    # ---- callbacks from the Ready loop (the Applier protocol) -----------------------------------

    def on_soft_state(self, soft: SoftState) -> None:
        was_leader = self.role == Role.LEADER
        if soft.leader_id != self.leader_id:
            log.info("raft leader changed", leader=f"{soft.leader_id:x}", term=self.term)
            if soft.leader_id:
                self.on_leader_change(soft.leader_id)
        self.leader_id = soft.leader_id
        self.role = soft.role
        if soft.leader_id:
            self._leader_known.set()
        else:
            self._leader_known.clear()
        is_leader = soft.role == Role.LEADER
        if is_leader and not was_leader:
            self.store.lessor.promote(time.monotonic(), self.settings.election_seconds)
        elif was_leader and not is_leader:
            self.store.lessor.demote()

    def on_hard_state(self, hard: HardState) -> None:
        self.term = hard.term
        self.committed_index = hard.commit

    def on_read_states(self, states: Sequence[ReadState]) -> None:
        for rs in states:
            self.read_index.on_read_state(rs.request_ctx, rs.index)

    async def apply_snapshot(self, snapshot: Snapshot) -> None:
        """The backend was replaced when the snapshot was persisted; catch the rest up."""
        self.applied.advance(snapshot.metadata.index)
        self.on_membership_changed()

    async def apply_entries(self, entries: Sequence[Entry]) -> None:
        result = self.state.apply(entries, self.node.apply_conf_change)
        if result.events:
            self.on_events(result.events)
        for outcome in result.outcomes:
            self.waiters.trigger(outcome.request_id, outcome.result)
        self.applied.advance(entries[-1].index)
        if result.conf_state is not None:
            self.on_membership_changed()
        if result.removed_self:
            self.on_removed()

    @property
    def is_learner(self) -> bool:
        return self.member_id in self.state.membership.learners()

    @property
    def conf_state(self) -> ConfState:
        return self.node.status().conf_state

    # ---- proposals ---------------------------------------------------------------------------------

    async def propose(self, req: ipb.InternalRaftRequest) -> Any:
        """Propose `req` and wait for its result on this member (a response message)."""
        if self.stopped:
            raise errors.STOPPED
        if self.committed_index - self.applied.index > MAX_GAP_BETWEEN_APPLY_AND_COMMIT:
            raise errors.TOO_MANY_REQUESTS
        request_id = self.ids.next()
        req.ID = request_id
        req.header.ID = request_id
        req.header.username, req.header.auth_revision = header_fields(self.state.auth)
        data = req.SerializeToString()
        if len(data) > self.settings.max_request_bytes:
            raise errors.REQUEST_TOO_LARGE
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.request_timeout
        fut = self.waiters.register(request_id)
        try:
            await self._propose_bytes(data, deadline)
            result = await asyncio.wait_for(fut, max(deadline - loop.time(), 0.0))
        except TimeoutError:
            raise errors.TIMEOUT from None
        finally:
            self.waiters.forget(request_id)
        if isinstance(result, errors.EtcdError):
            raise result
        return result

    async def _propose_bytes(self, data: bytes, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                self.node.propose(data)
                self.poke()
                return
            except ProposalDropped:
                # No leader known (or a transfer in progress): wait for one, as etcd's Propose blocks.
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError from None
                if self.leader_id:
                    await asyncio.sleep(min(remaining, self.settings.heartbeat_seconds))
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._leader_known.wait(), remaining)

    def _request_read_index(self, ctx: bytes) -> None:
        self.node.read_index(ctx)
        self.poke()

    async def linearizable_read(self) -> None:
        if self.stopped:
            raise errors.STOPPED
        await self.read_index.wait()

    # ---- KV ----------------------------------------------------------------------------------------

    async def range(self, r: pb.RangeRequest) -> pb.RangeResponse:
        if not r.serializable:
            await self.linearizable_read()
        res = self.store.range(convert.range_from_pb(r))
        return convert.range_to_pb(res, self.header(res.revision))

    async def put(self, r: pb.PutRequest) -> pb.PutResponse:
        self._check_quota()
        resp: pb.PutResponse = await self.propose(ipb.InternalRaftRequest(put=r))
        return resp

    async def delete_range(self, r: pb.DeleteRangeRequest) -> pb.DeleteRangeResponse:
        resp: pb.DeleteRangeResponse = await self.propose(ipb.InternalRaftRequest(delete_range=r))
        return resp

    async def txn(self, r: pb.TxnRequest) -> pb.TxnResponse:
        if _txn_is_read_only(r):
            # etcd serves read-only txns after a ReadIndex round, without a Raft entry.
            await self.linearizable_read()
            res = self.store.txn(convert.txn_from_pb(r))
            return convert.txn_to_pb(res, self.header(res.revision))
        self._check_quota()
        resp: pb.TxnResponse = await self.propose(ipb.InternalRaftRequest(txn=r))
        return resp

    async def compact(self, r: pb.CompactionRequest) -> pb.CompactionResponse:
        resp: pb.CompactionResponse = await self.propose(ipb.InternalRaftRequest(compaction=r))
        return resp

    def _check_quota(self) -> None:
        if self.state.has_alarm(pb.NOSPACE):
            raise errors.NO_SPACE
        if self.store.backend.size() >= self.settings.quota_backend_bytes:
            # etcd raises the NOSPACE alarm for the member on the first write over the quota.
            req = ipb.InternalRaftRequest(
                alarm=pb.AlarmRequest(
                    action=pb.AlarmRequest.ACTIVATE, memberID=self.member_id, alarm=pb.NOSPACE
                )
            )
            self._background.spawn(self._propose_quietly(req))
            raise errors.NO_SPACE

    async def _propose_quietly(self, req: ipb.InternalRaftRequest) -> None:
        try:
            await self.propose(req)
        except errors.EtcdError as exc:
            log.warn("background proposal failed", error=exc.message)

    # ---- leases ------------------------------------------------------------------------------------

    async def lease_grant(self, r: pb.LeaseGrantRequest) -> pb.LeaseGrantResponse:
        self._check_quota()
        req = pb.LeaseGrantRequest(TTL=r.TTL, ID=r.ID or self.ids.next_lease_id())
        resp: pb.LeaseGrantResponse = await self.propose(ipb.InternalRaftRequest(lease_grant=req))
        return resp

    async def lease_revoke(self, r: pb.LeaseRevokeRequest) -> pb.LeaseRevokeResponse:
        resp: pb.LeaseRevokeResponse = await self.propose(ipb.InternalRaftRequest(lease_revoke=r))
        return resp

    async def lease_keep_alive(self, lease_id: int) -> pb.LeaseKeepAliveResponse:
        """Renew on the leader (a follower forwards); the header is taken before the renewal."""
        header = self.header()
        if self.role != Role.LEADER:
            leader_urls = await self._leader_client_urls()
            return await self.forwarder.keep_alive(leader_urls, lease_id)
        try:
            ttl = self.store.lessor.renew(lease_id, time.monotonic())
        except LeaseNotFoundError:
            ttl = 0
        return pb.LeaseKeepAliveResponse(header=header, ID=lease_id, TTL=ttl)

    async def lease_time_to_live(self, r: pb.LeaseTimeToLiveRequest) -> pb.LeaseTimeToLiveResponse:
        """Only the leader knows the remaining TTL: a follower asks it."""
        if self.role != Role.LEADER:
            return await self.forwarder.time_to_live(await self._leader_client_urls(), r)
        t = self.store.lessor.time_to_live(r.ID, time.monotonic(), r.keys)
        return pb.LeaseTimeToLiveResponse(
            header=self.header(), ID=t.id, TTL=t.ttl, grantedTTL=t.granted_ttl, keys=t.keys
        )

    async def _leader_client_urls(self) -> tuple[str, ...]:
        """The leader's advertised client URLs, waiting (up to the request timeout) for a leader."""
        if not self.leader_id:
            try:
                await asyncio.wait_for(self._leader_known.wait(), self.settings.request_timeout)
            except TimeoutError:
                raise errors.TIMEOUT from None
        leader = self.state.membership.members.get(self.leader_id)
        if leader is None or not leader.client_urls:
            raise errors.NO_LEADER
        return leader.client_urls

    async def lease_leases(self) -> pb.LeaseLeasesResponse:
        await self.linearizable_read()
        return pb.LeaseLeasesResponse(
            header=self.header(), leases=[pb.LeaseStatus(ID=i) for i in self.store.lessor.leases()]
        )

    async def _lease_expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(LEASE_EXPIRY_CHECK_SECONDS)
            if self.role != Role.LEADER:
                continue
            for lease_id in self.store.lessor.expired(time.monotonic(), MAX_LEASE_REVOKES_PER_ROUND):
                if lease_id in self._revoking:
                    continue
                self._revoking.add(lease_id)
                self._background.spawn(self._revoke_expired(lease_id))

    async def _revoke_expired(self, lease_id: int) -> None:
        try:
            await self.propose(ipb.InternalRaftRequest(lease_revoke=pb.LeaseRevokeRequest(ID=lease_id)))
        except errors.EtcdError as exc:
            if exc != errors.LEASE_NOT_FOUND:
                fields = {"lease-id": f"{lease_id:x}", "error": exc.message}
                log.warn("failed to revoke an expired lease", **fields)
        finally:
            self._revoking.discard(lease_id)

    # ---- membership --------------------------------------------------------------------------------

    async def member_list(self, linearizable: bool) -> pb.MemberListResponse:
        if linearizable:
            await self.linearizable_read()
        return pb.MemberListResponse(header=self.header(0), members=self.state.members_pb())

    def _members_response_header(self) -> pb.ResponseHeader:
        return self.header(0)  # Cluster RPCs answer with revision 0, as etcd's

    async def _propose_conf_change(self, cc_type: ConfChangeType, member: pb.Member) -> list[pb.Member]:
        """Propose a conf change carrying `member` and wait for the member list after it."""
        if self.stopped:
            raise errors.STOPPED
        request_id = self.ids.next()
        context = ipb.ConfChangeContext(member=member, request_id=request_id).SerializeToString()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.request_timeout
        fut = self.waiters.register(request_id)
        try:
            while True:
                try:
                    self.node.propose_conf_change(ConfChange(cc_type, member.ID, context))
                    self.poke()
                    break
                except ProposalDropped:  # no leader, or another conf change still pending
                    if loop.time() >= deadline:
                        raise errors.TIMEOUT from None
                    await asyncio.sleep(self.settings.heartbeat_seconds)
            members: list[pb.Member] = await asyncio.wait_for(fut, max(deadline - loop.time(), 0.0))
        except TimeoutError:
            raise errors.TIMEOUT from None
        finally:
            self.waiters.forget(request_id)
        return members

    async def member_add(self, r: pb.MemberAddRequest) -> pb.MemberAddResponse:
        urls = list(r.peerURLs)
        reconfig.check_peer_urls(urls)
        membership = self.state.membership
        reconfig.check_urls_free(membership, urls)
        new_id = member_id(urls, "", int(time.time()))
        reconfig.check_add(membership, new_id, r.isLearner, self.member_id, self.peers, time.monotonic())
        member = pb.Member(ID=new_id, peerURLs=urls, isLearner=r.isLearner)
        cc_type = ConfChangeType.ADD_LEARNER_NODE if r.isLearner else ConfChangeType.ADD_NODE
        members = await self._propose_conf_change(cc_type, member)
        return pb.MemberAddResponse(header=self._members_response_header(), member=member, members=members)

    async def member_remove(self, r: pb.MemberRemoveRequest) -> pb.MemberRemoveResponse:
        reconfig.check_remove(self.state.membership, r.ID, self.member_id, self.peers, time.monotonic())
        members = await self._propose_conf_change(ConfChangeType.REMOVE_NODE, pb.Member(ID=r.ID))
        return pb.MemberRemoveResponse(header=self._members_response_header(), members=members)

    async def member_update(self, r: pb.MemberUpdateRequest) -> pb.MemberUpdateResponse:
        urls = list(r.peerURLs)
        reconfig.check_peer_urls(urls)
        if r.ID not in self.state.membership.members:
            raise errors.MEMBER_NOT_FOUND
        reconfig.check_urls_free(self.state.membership, urls, except_id=r.ID)
        member = pb.Member(ID=r.ID, peerURLs=urls)
        members = await self._propose_conf_change(ConfChangeType.UPDATE_NODE, member)
        return pb.MemberUpdateResponse(header=self._members_response_header(), members=members)

    async def member_promote(self, r: pb.MemberPromoteRequest) -> pb.MemberPromoteResponse:
        """Only the leader knows whether the learner caught up; a follower asks it over the peer port."""
        if self.role != Role.LEADER:
            members = await self.forward_promote(r.ID)
        else:
            members = await self.promote_as_leader(r.ID)
        return pb.MemberPromoteResponse(header=self._members_response_header(), members=members)

    async def promote_as_leader(self, learner_id: int) -> list[pb.Member]:
        progress = self.node.status().progress
        learner = progress.get(learner_id)
        leader = progress.get(self.member_id)
        reconfig.check_promote(
            self.state.membership,
            learner_id,
            learner.match if learner else 0,
            leader.match if leader else self.committed_index,
        )
        return await self._propose_conf_change(ConfChangeType.ADD_NODE, pb.Member(ID=learner_id))

    async def _cannot_forward(self, learner_id: int) -> list[pb.Member]:
        raise errors.NOT_LEADER

    async def _peer_activity_loop(self) -> None:
        """Sample the transport's connections each heartbeat: when each came up (ActiveSince)."""
        while True:
            now = time.monotonic()
            members = self.state.membership.members
            for peer in members:
                if peer != self.member_id:
                    self.peers.observe(peer, self.is_peer_active(peer), now)
            self.peers.forget_others(members)
            await asyncio.sleep(self.settings.heartbeat_seconds)

    async def _publish_loop(self) -> None:
        """Publish this member's name and client URLs through Raft once (etcd's publishV3)."""
        s = self.settings
        req = ipb.InternalRaftRequest(
            cluster_member_attr_set=ipb.ClusterMemberAttrSetRequest(
                member_ID=self.member_id,
                member_attributes=ipb.MemberAttributes(name=s.name, client_urls=list(s.client_urls)),
            )
        )
        while True:
            me = self.state.membership.members.get(self.member_id)
            if me is not None and me.name == s.name and list(me.client_urls) == list(s.client_urls):
                break
            try:
                await self.propose(ipb.InternalRaftRequest.FromString(req.SerializeToString()))
                fields = {"local-member-id": f"{self.member_id:x}"}
                log.info("published local member to cluster through raft", **fields)
                break
            except errors.EtcdError as exc:
                log.info("failed to publish local member; retrying", error=exc.message)
                await asyncio.sleep(0.5)
        self.published.set()

    # ---- maintenance -------------------------------------------------------------------------------

    def status(self) -> pb.StatusResponse:
        backend = self.store.backend
        resp = pb.StatusResponse(
            header=self.header(),
            version=SERVER_VERSION,
            dbSize=backend.size(),
            dbSizeInUse=backend.size_in_use(),
            leader=self.leader_id,
            raftIndex=self.committed_index,
            raftTerm=self.term,
            raftAppliedIndex=self.applied.index,
            isLearner=self.member_id in self.conf_state.learners,
        )
        if self.leader_id == 0:
            resp.errors.append(errors.NO_LEADER.message)
        for a in self.state.alarm_list():
            resp.errors.append(f"memberID:{a.memberID} alarm:{pb.AlarmType.Name(a.alarm)} ")
        return resp

    async def alarm(self, r: pb.AlarmRequest) -> pb.AlarmResponse:
        if r.action == pb.AlarmRequest.GET:
            return pb.AlarmResponse(header=self.header(), alarms=self.state.alarm_list())
        resp: pb.AlarmResponse = await self.propose(ipb.InternalRaftRequest(alarm=r))
        return resp

    async def hash(self) -> pb.HashResponse:
        return pb.HashResponse(header=self.header(), hash=self.store.backend.hash())

    async def hash_kv(self, revision: int) -> pb.HashKVResponse:
        h = self.store.hash_kv(revision)
        return pb.HashKVResponse(
            header=self.header(),  # etcd's header carries the current revision, not the hashed one
            hash=h.hash,
            compact_revision=h.compact_revision,
            hash_revision=h.hash_revision,
        )

    async def defragment(self) -> None:
        self.store.backend.defragment()

    async def backend_snapshot(self) -> bytes:
        return self.store.backend.snapshot_bytes()

    async def move_leader(self, target: int) -> None:
        if self.role != Role.LEADER:
            raise errors.NOT_LEADER
        if target not in self.conf_state.voters or target == 0:
            raise errors.BAD_LEADER_TRANSFEREE
        if target == self.member_id:
            return
        self.node.transfer_leader(target)
        self.poke()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.request_timeout
        while self.leader_id != target:
            if loop.time() > deadline:
                raise errors.TIMEOUT
            await asyncio.sleep(self.settings.heartbeat_seconds)


def _txn_is_read_only(r: pb.TxnRequest) -> bool:
    for op in (*r.success, *r.failure):
        which = op.WhichOneof("request")
        if which in ("request_put", "request_delete_range"):
            return False
        if which == "request_txn" and not _txn_is_read_only(op.request_txn):
            return False
    return True

"""The v2 API's view of the server (petcd.v2.http.V2Backend): logged v2 requests go through Raft in
InternalRaftRequest.v2 and are applied to the in-memory v2 store on every member; the leader expires
TTL keys with etcd's periodic SYNC."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from petcd.api import errors
from petcd.log import get_logger
from petcd.proto import raft_internal_pb2 as ipb
from petcd.proto import rpc_pb2 as pb
from petcd.raft.types import Role
from petcd.v2 import request as v2request
from petcd.v2.errors import V2Error
from petcd.v2.events import Event
from petcd.v2.http import MemberHTTPError, V2Member
from petcd.v2.stats import SelfStats, leader_stats
from petcd.v2.store import V2Store

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

log = get_logger("v2")

SYNC_INTERVAL_SECONDS = 0.5  # etcd's leader proposes a SYNC this often while TTL keys exist
STATE_NAMES = {
    Role.LEADER: "StateLeader",
    Role.FOLLOWER: "StateFollower",
    Role.CANDIDATE: "StateCandidate",
    Role.PRE_CANDIDATE: "StatePreCandidate",
}


class ServerV2Backend:
    def __init__(self, server: EtcdServer) -> None:
        self._server = server
        self._started_ns = time.time_ns()

    @property
    def v2_store(self) -> V2Store:
        return self._server.state.v2

    async def propose_v2(self, request: v2request.V2Request) -> Event | V2Error | None:
        result: Event | V2Error | None = await self._server.propose(
            ipb.InternalRaftRequest(v2=v2request.encode(request))
        )
        return result

    def cluster_id(self) -> int:
        return self._server.cluster_id

    def raft_index_term(self) -> tuple[int, int]:
        return self._server.committed_index, self._server.term

    def members(self) -> Sequence[V2Member]:
        return [
            V2Member(m.id, m.name, list(m.peer_urls), list(m.client_urls))
            for m in self._server.state.membership.sorted_members()
        ]

    def leader_id(self) -> int:
        return self._server.leader_id

    def self_stats(self) -> dict[str, Any]:
        s = self._server
        stats = SelfStats(
            s.settings.name, s.member_id, STATE_NAMES[s.role], self._started_ns, s.leader_id, self._started_ns
        )
        return stats.to_dict(time.time_ns())

    def leader_stats(self) -> dict[str, Any] | None:
        s = self._server
        return leader_stats(s.member_id, {}) if s.role == Role.LEADER else None

    async def add_member(self, peer_urls: list[str]) -> V2Member:
        try:
            resp = await self._server.member_add(pb.MemberAddRequest(peerURLs=peer_urls))
        except errors.EtcdError as exc:
            raise self._http_error(exc, 0) from None
        return V2Member(resp.member.ID, "", list(resp.member.peerURLs), [])

    async def remove_member(self, member_id: int) -> None:
        try:
            await self._server.member_remove(pb.MemberRemoveRequest(ID=member_id))
        except errors.EtcdError as exc:
            raise self._http_error(exc, member_id) from None

    async def update_member(self, member_id: int, peer_urls: list[str]) -> None:
        try:
            await self._server.member_update(pb.MemberUpdateRequest(ID=member_id, peerURLs=peer_urls))
        except errors.EtcdError as exc:
            raise self._http_error(exc, member_id) from None

    def _http_error(self, exc: errors.EtcdError, member_id: int) -> MemberHTTPError:
        """etcd's /v2/members answers for the membership errors (409, 404, 410)."""
        if exc == errors.PEER_URL_EXIST:
            return MemberHTTPError.peer_url_exists()
        if exc == errors.MEMBER_EXIST:
            return MemberHTTPError.id_exists()
        if exc == errors.MEMBER_NOT_FOUND:
            if member_id in self._server.state.membership.removed:
                return MemberHTTPError.removed(member_id)
            return MemberHTTPError.not_found(member_id)
        return MemberHTTPError(500, exc.message)

    async def sync_loop(self) -> None:
        """On the leader, while TTL keys exist: expire them on every member through the log."""
        while True:
            await asyncio.sleep(SYNC_INTERVAL_SECONDS)
            if self._server.role != Role.LEADER or not self.v2_store.has_ttl_keys():
                continue
            try:
                await self.propose_v2(v2request.V2Request.sync(time.time_ns()))
            except errors.EtcdError as exc:
                log.warn("v2 sync failed", error=exc.message)

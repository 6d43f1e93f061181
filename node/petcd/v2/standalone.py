"""A single-member V2Backend with no Raft: each request is encoded, appended to a local log and
applied at once. It serves the v2 API over the real store for tests and for a lone discovery service.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from petcd.v2 import request as v2request
from petcd.v2.errors import V2Error
from petcd.v2.events import Event
from petcd.v2.http import MemberHTTPError, V2Member, add_v2_routes
from petcd.v2.stats import SelfStats, leader_stats
from petcd.v2.store import V2Store

# etcd's leader proposes a SYNC this often while the v2 store has TTL keys.
SYNC_INTERVAL_SECONDS = 0.5


class StandaloneV2Backend:
    def __init__(self, member: V2Member, cluster_id: int = 1) -> None:
        self._store = V2Store()
        self._member = member
        self._cluster_id = cluster_id
        self.log: list[bytes] = []
        self._term = 1
        started = time.time_ns()
        self._self_stats = SelfStats(member.name, member.id, "StateLeader", started, member.id, started)

    @property
    def v2_store(self) -> V2Store:
        return self._store

    async def propose_v2(self, request: v2request.V2Request) -> Event | V2Error | None:
        entry = v2request.encode(request)
        self.log.append(entry)
        return v2request.apply(self._store, v2request.decode(entry), time.time_ns())

    def expire_due(self, now_ns: int) -> None:
        """What the leader's sync loop does: expire TTL keys through the log."""
        if self._store.has_ttl_keys():
            entry = v2request.encode(v2request.V2Request.sync(now_ns))
            self.log.append(entry)
            v2request.apply(self._store, v2request.decode(entry), now_ns)

    def cluster_id(self) -> int:
        return self._cluster_id

    def raft_index_term(self) -> tuple[int, int]:
        return len(self.log), self._term

    def members(self) -> Sequence[V2Member]:
        return [self._member]

    def leader_id(self) -> int:
        return self._member.id

    def self_stats(self) -> dict[str, Any]:
        return self._self_stats.to_dict(time.time_ns())

    def leader_stats(self) -> dict[str, Any] | None:
        return leader_stats(self._member.id, {})

    async def add_member(self, peer_urls: list[str]) -> V2Member:
        if set(peer_urls) & set(self._member.peer_urls):
            raise MemberHTTPError.peer_url_exists()
        raise MemberHTTPError(500, "Internal Server Error")

    async def remove_member(self, member_id: int) -> None:
        raise MemberHTTPError.not_found(member_id)

    async def update_member(self, member_id: int, peer_urls: list[str]) -> None:
        if member_id != self._member.id:
            raise MemberHTTPError.not_found(member_id)
        self._member = V2Member(member_id, self._member.name, list(peer_urls), self._member.client_urls)


def standalone_app(backend: StandaloneV2Backend) -> web.Application:
    """An aiohttp app with the v2 routes and a background expiry loop."""
    app = web.Application()
    add_v2_routes(app, backend)

    async def expiry_loop(app: web.Application) -> Any:
        async def loop() -> None:
            while True:
                await asyncio.sleep(SYNC_INTERVAL_SECONDS)
                backend.expire_due(time.time_ns())

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(expiry_loop)
    return app

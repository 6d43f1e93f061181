"""etcd's HTTP/1.1 endpoints on the peer port, and the client that reads them from other members.

- `GET /members` -> the member list as etcd's peer handler writes it: a JSON array of
  `{"id":<uint64 number>,"peerURLs":[..],"isLearner":true?,"name":"..","clientURLs":[..]}` (the last
  three left out when empty/false), header `X-Etcd-Cluster-ID: <hex>`. A member joining with
  `--initial-cluster-state existing` reads it to learn its ID and the cluster ID.
- `POST /members/promote/<decimal id>` -> the leader promotes that learner (a follower asked to
  promote forwards here); 200 with the new member list, or etcd's 404/412 and error text.
- `GET /version` -> `{"etcdserver":"..","etcdcluster":".."}`.
Other methods are 405 with `Allow`, other paths Go's `404 page not found`, as etcd answers.

petcd's own peer traffic never goes through an HTTP proxy: the client ignores http_proxy and friends.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from petcd.api.http import go_http_error, json_response, method_not_allowed, not_found


@dataclass(frozen=True)
class MemberInfo:
    id: int
    peer_urls: tuple[str, ...]
    name: str = ""
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False

    def to_json(self) -> dict[str, Any]:
        """etcd's membership.Member JSON (omitempty on isLearner, name, clientURLs)."""
        out: dict[str, Any] = {"id": self.id, "peerURLs": list(self.peer_urls)}
        if self.is_learner:
            out["isLearner"] = True
        if self.name:
            out["name"] = self.name
        if self.client_urls:
            out["clientURLs"] = list(self.client_urls)
        return out

    @staticmethod
    def from_json(item: dict[str, Any]) -> MemberInfo:
        return MemberInfo(id=int(item["id"]), peer_urls=tuple(item.get("peerURLs") or ()),
                          name=str(item.get("name", "")), client_urls=tuple(item.get("clientURLs") or ()),
                          is_learner=bool(item.get("isLearner", False)))


class PeerInfo(Protocol):
    """What the peer endpoints ask the server."""

    def cluster_id(self) -> int: ...

    def members(self) -> Sequence[MemberInfo]: ...

    def versions(self) -> tuple[str, str]: ...


class PromoteError(Exception):
    """A promotion the leader refused: etcd's HTTP status for it and its error text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# The leader's MemberPromote: the members after the change, or PromoteError (404 unknown member, 412
# not a learner / learner not in sync, as etcd answers).
Promote = Callable[[int], Awaitable[Sequence[MemberInfo]]]
MAX_UINT64 = 2**64 - 1


def build_peer_app(info: PeerInfo, promote: Promote | None = None) -> web.Application:
    def cluster_header() -> dict[str, str]:
        return {"X-Etcd-Cluster-ID": f"{info.cluster_id():x}"}

    async def members(request: web.Request) -> web.Response:
        if request.method != "GET":
            return method_not_allowed()
        return json_response([member.to_json() for member in info.members()], cluster_header(), newline=True)

    async def promote_member(request: web.Request) -> web.Response:
        if request.method != "POST":
            return method_not_allowed("POST")
        text = request.match_info["id"]
        response: web.Response
        if not text.isdigit() or int(text) > MAX_UINT64 or promote is None:
            response = go_http_error(f"member {text} not found in cluster", 404)
        else:
            try:
                after = await promote(int(text))
            except PromoteError as exc:
                response = go_http_error(exc.message, exc.status)
            else:
                response = json_response([m.to_json() for m in after], newline=True)
        response.headers.update(cluster_header())
        return response

    async def version(request: web.Request) -> web.Response:
        if request.method != "GET":
            return method_not_allowed()
        server, cluster = info.versions()
        return json_response({"etcdserver": server, "etcdcluster": cluster})

    app = web.Application()
    app.router.add_route("*", "/members", members)
    app.router.add_route("*", "/members/promote/{id:.*}", promote_member)
    app.router.add_route("*", "/version", version)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


class ClusterInfoError(Exception):
    """No peer URL answered /members."""


async def fetch_cluster_info(peer_urls: Sequence[str], timeout: float = 5.0
                             ) -> tuple[int, tuple[MemberInfo, ...]]:
    """(cluster ID, members) from the first peer answering `GET /members` (etcd's GetClusterFromRemotePeers).

    Raises ClusterInfoError with etcd's wording when none does.
    """
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout, trust_env=False) as session:
        for url in peer_urls:
            try:
                async with session.get(url.rstrip("/") + "/members") as response:
                    if response.status != 200:
                        continue
                    cluster_id = int(response.headers["X-Etcd-Cluster-ID"], 16)
                    items = json.loads(await response.read())
                    return cluster_id, tuple(MemberInfo.from_json(item) for item in items)
            except (aiohttp.ClientError, TimeoutError, KeyError, ValueError, TypeError):
                continue
    raise ClusterInfoError("could not retrieve cluster information from the given URLs")


async def promote_on_peer(peer_urls: Sequence[str], member_id: int, timeout: float = 10.0
                          ) -> tuple[MemberInfo, ...]:
    """Ask the leader (at `peer_urls`) to promote a learner, as an etcd follower does; the members after
    the change. PromoteError carries the leader's refusal; ClusterInfoError when no URL answers."""
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout, trust_env=False) as session:
        for url in peer_urls:
            try:
                async with session.post(f"{url.rstrip('/')}/members/promote/{member_id}") as response:
                    body = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                continue
            if response.status != 200:
                raise PromoteError(response.status, body.decode("utf-8", "replace").rstrip("\n"))
            return tuple(MemberInfo.from_json(item) for item in json.loads(body))
    raise ClusterInfoError("could not reach the leader's peer URLs to promote the member")

"""aiohttp handlers for etcd's v2 HTTP API: /v2/keys, /v2/members, /v2/machines, /v2/stats/*.

The server shell implements `V2Backend` and mounts the routes with `add_v2_routes(app, backend)`.
Reads and watches use the member's local store; writes and quorum reads go through Raft via
`backend.propose_v2`, which resolves with what `petcd.v2.request.apply` returned on this member.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from petcd.config import check_url
from petcd.v2 import gojson
from petcd.v2.errors import RAFT_INTERNAL, V2Error
from petcd.v2.events import Event
from petcd.v2.request import V2Request, parse_key_request
from petcd.v2.store import V2Store
from petcd.v2.watch import Watcher

KEYS_PREFIX = "/v2/keys"
MEMBERS_PREFIX = "/v2/members"
_KEYS_METHODS = ("HEAD", "GET", "PUT", "POST", "DELETE")
_MEMBERS_METHODS = ("GET", "POST", "DELETE", "PUT")
# How often a long-poll checks whether its client went away.
_DISCONNECT_POLL_SECONDS = 1.0
# etcd's default CORS answer (every origin).
_CORS = {
    "Access-Control-Allow-Headers": "accept, content-type, authorization",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
    "Access-Control-Allow-Origin": "*",
}


@dataclass(frozen=True)
class V2Member:
    id: int
    name: str
    peer_urls: Sequence[str]
    client_urls: Sequence[str]

    def to_dict(self) -> dict[str, Any]:
        return {"id": f"{self.id:x}", "name": self.name, "peerURLs": list(self.peer_urls),
                "clientURLs": list(self.client_urls)}


class MemberHTTPError(Exception):
    """A membership failure with the HTTP status and message etcd's /v2/members answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @classmethod
    def id_exists(cls) -> MemberHTTPError:
        return cls(409, "membership: ID exists")

    @classmethod
    def peer_url_exists(cls) -> MemberHTTPError:
        return cls(409, "membership: peerURL exists")

    @classmethod
    def removed(cls, member_id: int) -> MemberHTTPError:
        return cls(410, f"Member permanently removed: {member_id:x}")

    @classmethod
    def not_found(cls, member_id: int) -> MemberHTTPError:
        return cls(404, f"No such member: {member_id:x}")


class V2Backend(Protocol):
    """What the server shell provides to the v2 handlers."""

    @property
    def v2_store(self) -> V2Store:
        """This member's v2 store (applied state)."""
        ...

    async def propose_v2(self, request: V2Request) -> Event | V2Error | None:
        """Put an encoded request in the Raft log; return what `apply` gave on this member."""
        ...

    def cluster_id(self) -> int: ...

    def raft_index_term(self) -> tuple[int, int]:
        """The committed Raft index and the current term (X-Raft-Index / X-Raft-Term)."""
        ...

    def members(self) -> Sequence[V2Member]: ...

    def leader_id(self) -> int:
        """0 while there is no leader."""
        ...

    def self_stats(self) -> dict[str, Any]: ...

    def leader_stats(self) -> dict[str, Any] | None:
        """None unless this member is the leader."""
        ...

    async def add_member(self, peer_urls: list[str]) -> V2Member: ...

    async def remove_member(self, member_id: int) -> None: ...

    async def update_member(self, member_id: int, peer_urls: list[str]) -> None: ...


def add_v2_routes(app: web.Application, backend: V2Backend) -> None:
    """Mount the v2 API on `app` (the client port's HTTP/1.1 application)."""
    handlers = _Handlers(backend)
    routes: dict[str, Handler] = {
        KEYS_PREFIX + "{key:(/.*)?}": handlers.keys,
        MEMBERS_PREFIX + "{rest:(/.*)?}": handlers.members,
        "/v2/machines": handlers.machines,
        "/v2/stats/store": handlers.store_stats,
        "/v2/stats/self": handlers.self_stats,
        "/v2/stats/leader": handlers.leader_stats,
    }
    for path, handler in routes.items():
        app.router.add_route("*", path, _answering_preflight(handler))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answering_preflight(handler: Handler) -> Handler:
    """etcd's CORS wrapper answers OPTIONS itself: 200, empty, with the CORS headers."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return web.Response(status=200, headers=_CORS)
        return await handler(request)

    return handle


# ---- response helpers ---------------------------------------------------------------------------


def _method_not_allowed(allowed: Sequence[str]) -> web.Response:
    return web.Response(status=405, text="Method Not Allowed\n", charset="utf-8",
                        headers={**_CORS, "Allow": ",".join(allowed), "X-Content-Type-Options": "nosniff"})


def _json(status: int, obj: Any, headers: dict[str, str], newline: bool = True) -> web.Response:
    body = gojson.encode_line(obj) if newline else gojson.dumps(obj).encode()
    return web.Response(status=status, body=body, content_type="application/json",
                        headers={**_CORS, **headers})


def _key_error(err: V2Error, headers: dict[str, str]) -> web.Response:
    return web.Response(status=err.http_status, body=err.to_json().encode(), content_type="application/json",
                        headers={**_CORS, **headers, "X-Etcd-Index": str(err.index)})


def _http_error(status: int, message: str, headers: dict[str, str]) -> web.Response:
    return _json(status, {"message": message}, headers, newline=False)


async def _form(request: web.Request) -> dict[str, list[str]]:
    """Go's Request.Form: url-encoded body values (POST/PUT/PATCH) first, then the query's."""
    form: dict[str, list[str]] = {}
    url_encoded = request.content_type == "application/x-www-form-urlencoded"
    if request.method in ("POST", "PUT", "PATCH") and url_encoded:
        for k, v in (await request.post()).items():
            form.setdefault(k, []).append(v if isinstance(v, str) else "")
    for k, v in request.query.items():
        form.setdefault(k, []).append(v)
    return form


def _is_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class _Handlers:
    def __init__(self, backend: V2Backend) -> None:
        self.backend = backend

    def _cluster_header(self) -> dict[str, str]:
        return {"X-Etcd-Cluster-Id": f"{self.backend.cluster_id():x}"}

    def _raft_headers(self) -> dict[str, str]:
        index, term = self.backend.raft_index_term()
        return {"X-Raft-Index": str(index), "X-Raft-Term": str(term)}

    # ---- /v2/keys ---------------------------------------------------------------------------

    async def keys(self, request: web.Request) -> web.StreamResponse:
        if request.method not in _KEYS_METHODS:
            return _method_not_allowed(_KEYS_METHODS)
        headers = self._cluster_header()
        try:
            parsed = parse_key_request(request.method, request.match_info["key"] or "/",
                                       await _form(request), time.time_ns())
        except V2Error as err:
            return _key_error(err, headers)
        v2req = parsed.request
        store = self.backend.v2_store
        if v2req.is_watch:
            try:
                watcher = store.watch(v2req.path, v2req.recursive, v2req.stream, v2req.since)
            except V2Error as err:
                return _key_error(err, headers)
            return await self._serve_watch(request, watcher, headers)
        result: Event | V2Error | None
        if v2req.goes_through_raft:
            try:
                result = await self.backend.propose_v2(v2req)
            except V2Error as err:
                result = err
            except Exception as err:  # the server's failures (timeouts, no leader) are etcd's 300s
                result = V2Error(RAFT_INTERNAL, str(err), 0)
        else:
            try:
                result = store.get(v2req.path, v2req.recursive, v2req.sorted, now_ns=time.time_ns())
            except V2Error as err:
                result = err
        if isinstance(result, V2Error):
            return _key_error(result, headers)
        if result is None:
            return _key_error(V2Error(RAFT_INTERNAL, "received response with no Event/Watcher", 0), headers)
        headers.update({"X-Etcd-Index": str(result.etcd_index), **self._raft_headers()})
        return _json(201 if result.is_created() else 200, result.to_dict(parsed.no_value_on_success), headers)

    async def _serve_watch(self, request: web.Request, watcher: Watcher,
                           headers: dict[str, str]) -> web.StreamResponse:
        wakeup = asyncio.Event()
        watcher.on_event = wakeup.set
        response = web.StreamResponse(status=200, headers={
            **_CORS, **headers, "Content-Type": "application/json",
            "X-Etcd-Index": str(watcher.start_index), **self._raft_headers()})
        try:
            await response.prepare(request)
            while True:
                while watcher.events:
                    await response.write(gojson.encode_line(watcher.events.popleft().to_dict()))
                    if not watcher.stream:
                        return response
                if watcher.overflowed or _is_gone(request):
                    return response
                wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), _DISCONNECT_POLL_SECONDS)
        finally:
            watcher.on_event = None
            watcher.remove()

    # ---- /v2/members ------------------------------------------------------------------------

    async def members(self, request: web.Request) -> web.StreamResponse:
        if request.method not in _MEMBERS_METHODS:
            return _method_not_allowed(_MEMBERS_METHODS)
        headers = self._cluster_header()
        sub = request.match_info["rest"].removeprefix("/")
        if request.method == "GET":
            if sub == "":
                return _json(200, {"members": [m.to_dict() for m in self.backend.members()]}, headers)
            if sub == "leader":
                leader = self.backend.leader_id()
                found = [m for m in self.backend.members() if m.id == leader]
                if leader == 0 or not found:
                    return _http_error(503, "During election", headers)
                return _json(200, found[0].to_dict(), headers)
            return _http_error(404, "Not found", headers)
        if request.method == "POST":
            peer_urls = await _peer_urls_body(request, headers)
            if isinstance(peer_urls, web.Response):
                return peer_urls
            return await self._member_call(self.backend.add_member(peer_urls), headers, created=True)
        if sub == "":  # DELETE or PUT needs a member ID
            return web.Response(status=405, text="Method Not Allowed\n", charset="utf-8",
                                headers={**_CORS, **headers, "X-Content-Type-Options": "nosniff"})
        try:
            member_id = int(sub, 16)
        except ValueError:
            return _http_error(404, f"No such member: {sub}", headers)
        if request.method == "DELETE":
            return await self._member_call(self.backend.remove_member(member_id), headers)
        peer_urls = await _peer_urls_body(request, headers)
        if isinstance(peer_urls, web.Response):
            return peer_urls
        return await self._member_call(self.backend.update_member(member_id, peer_urls), headers)

    async def _member_call(self, call: Awaitable[V2Member | None], headers: dict[str, str],
                           created: bool = False) -> web.Response:
        try:
            member = await call
        except MemberHTTPError as err:
            return _http_error(err.status, err.message, headers)
        except Exception:  # etcd hides other failures behind a plain 500
            return _http_error(500, "Internal Server Error", headers)
        if created and member is not None:
            return _json(201, member.to_dict(), headers)
        return web.Response(status=204, headers={**_CORS, **headers})

    # ---- /v2/machines and /v2/stats ------------------------------------------------------------

    async def machines(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed(("GET", "HEAD"))
        urls = [u for m in self.backend.members() for u in m.client_urls]
        return web.Response(text=", ".join(sorted(urls)), charset="utf-8", headers=_CORS)

    async def store_stats(self, request: web.Request) -> web.StreamResponse:
        return self._stats(request, lambda: self.backend.v2_store.stats_json())

    async def self_stats(self, request: web.Request) -> web.StreamResponse:
        return self._stats(request, self.backend.self_stats)

    async def leader_stats(self, request: web.Request) -> web.StreamResponse:
        return self._stats(request, self.backend.leader_stats)

    def _stats(self, request: web.Request, produce: Callable[[], dict[str, Any] | None]) -> web.Response:
        if request.method != "GET":
            return _method_not_allowed(("GET",))
        stats = produce()
        if stats is None:
            return _http_error(403, "not current leader", {})
        return _json(200, stats, {}, newline=False)


async def _peer_urls_body(request: web.Request, headers: dict[str, str]) -> list[str] | web.Response:
    """The `{"peerURLs": [...]}` body of POST/PUT /v2/members, checked as etcd checks it."""
    ctype = request.headers.get("Content-Type", "")
    if ";" in ctype:
        ctype = ctype.split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        return _http_error(415, f"Bad Content-Type {ctype}, accept application/json", headers)
    try:
        body = json.loads(await request.read())
        urls = body["peerURLs"] if isinstance(body, dict) else None
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ValueError("peerURLs must be a list of URLs")
        for url in urls:
            check_url(url)
    except (ValueError, KeyError) as err:
        return _http_error(400, str(err), headers)
    return urls

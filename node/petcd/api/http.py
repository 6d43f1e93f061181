"""etcd's HTTP health, version and metrics endpoints, as an aiohttp application.

Served on the client port (behind petcd.api.mux) and on every --listen-metrics-urls. The answers,
status codes, content types and query parameters are etcd 3.5's:

- `GET /health` -> 200 `{"health":"true","reason":""}`; 503 with the JSON and a newline, text/plain,
  reasons `ALARM NOSPACE|CORRUPT|UNKNOWN`, `RAFT NO LEADER`, `RANGE ERROR:<err>`. `?exclude=<ALARM>`
  (repeatable) ignores alarms, `?serializable=true` skips the leader check and reads locally.
- `GET /livez`, `/readyz` (and `/livez/<check>`, `/readyz/<check>`): `ok\n`; `?verbose` lists
  `[+]<check> ok`; a failure is 503 with `[-]<check> failed: <reason>` lines; `?exclude=<check>`.
- `GET /version` -> `{"etcdserver":"3.5.x","etcdcluster":"3.5.0"}` (client port only).
- `GET /metrics` -> Prometheus text.
Any other method on these paths is 405 `Method Not Allowed` with `Allow: GET`.

The server answers the questions through `HealthSource`; nothing here knows how it is built.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp import web

from petcd.log import get_logger
from petcd.metrics import CONTENT_TYPE, Metrics

log = get_logger("http")

# How long /health's and the read checks' probe may take (etcd: the request timeout, 5 s + election).
PROBE_TIMEOUT = 5.0


class HealthSource(Protocol):
    """What the endpoints ask the server. Reads raise an exception whose str() is etcd's error text."""

    def leader_id(self) -> int:
        """The current leader's member ID, 0 when there is none."""
        ...

    def alarms(self) -> Sequence[str]:
        """Active alarm names on this member, etcd's AlarmType names: "NOSPACE", "CORRUPT"."""
        ...

    def is_learner(self) -> bool: ...

    async def read_probe(self, serializable: bool) -> None:
        """A Range {keys_only, limit 1} on the empty key with root rights; linearizable unless asked not."""
        ...

    def versions(self) -> tuple[str, str]:
        """(etcdserver, etcdcluster): the server version and the cluster version, or "not_decided"."""
        ...


Check = Callable[[HealthSource], Awaitable[None]]


class CheckFailed(Exception):
    """A /livez or /readyz check's failure; its text follows `failed: ` in the answer."""


def _text(body: str, status: int = 200, *, nosniff: bool = True) -> web.Response:
    response = web.Response(status=status, text=body, content_type="text/plain", charset="utf-8")
    if nosniff:
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def go_http_error(body: str, status: int) -> web.Response:
    """Go's http.Error: text/plain, nosniff, the body plus a newline."""
    return _text(body + "\n", status)


def method_not_allowed(allow: str = "GET") -> web.Response:
    """etcd's answer to a method its endpoint does not take."""
    response = go_http_error("Method Not Allowed", 405)
    response.headers["Allow"] = allow
    return response


async def not_found(request: web.Request) -> web.Response:
    """Go's http.NotFound, for paths etcd's muxes do not serve."""
    return go_http_error("404 page not found", 404)


def json_response(value: object, headers: dict[str, str] | None = None, *, newline: bool = False
                  ) -> web.Response:
    """Compact JSON as Go writes it, `Content-Type: application/json` without a charset. `newline`:
    Go's json.Encoder (used by some etcd handlers) ends the body with one; json.Marshal does not."""
    body = json.dumps(value, separators=(",", ":")) + ("\n" if newline else "")
    return web.Response(body=body.encode(), headers={"Content-Type": "application/json", **(headers or {})})


def _query_set(request: web.Request, name: str) -> set[str]:
    return {value for value in request.query.getall(name, []) if value}


async def _probe(source: HealthSource, serializable: bool) -> str:
    """'' when a read works, else etcd's error text."""
    try:
        await asyncio.wait_for(source.read_probe(serializable), PROBE_TIMEOUT)
    except TimeoutError:
        return "context deadline exceeded"
    except Exception as exc:  # any failure of the read is the answer, not a crash of the endpoint
        return str(exc) or type(exc).__name__
    return ""


async def health(source: HealthSource, excluded_alarms: set[str], serializable: bool) -> tuple[bool, str]:
    """etcd's /health decision: alarms first, then the leader, then a read."""
    for alarm in source.alarms():
        if alarm in excluded_alarms:
            continue
        return False, f"ALARM {alarm}" if alarm in ("NOSPACE", "CORRUPT") else "ALARM UNKNOWN"
    if not serializable and not source.leader_id():
        return False, "RAFT NO LEADER"
    error = await _probe(source, serializable)
    if error:
        return False, f"RANGE ERROR:{error}"
    return True, ""


async def _serializable_read(source: HealthSource) -> None:
    error = await _probe(source, serializable=True)
    if error:
        raise CheckFailed(error)


async def _linearizable_read(source: HealthSource) -> None:
    error = await _probe(source, serializable=False)
    if error:
        raise CheckFailed(error)


async def _data_corruption(source: HealthSource) -> None:
    if "CORRUPT" in source.alarms():
        raise CheckFailed("alarm activated: CORRUPT")


async def _non_learner(source: HealthSource) -> None:
    if source.is_learner():
        raise CheckFailed("not supported for learner")


# etcd's registries, in a fixed order (etcd's map order is random; any order is etcd-like).
LIVEZ_CHECKS: dict[str, Check] = {"serializable_read": _serializable_read}
READYZ_CHECKS: dict[str, Check] = {
    "data_corruption": _data_corruption,
    "serializable_read": _serializable_read,
    "linearizable_read": _linearizable_read,
    "non_learner": _non_learner,
}


class Endpoints:
    """The handlers, bound to one server's HealthSource and Metrics."""

    def __init__(self, source: HealthSource, metrics: Metrics) -> None:
        self.source = source
        self.metrics = metrics

    async def health(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            log.warn("/health error", **{"status-code": 405})
            return method_not_allowed()
        ok, reason = await health(self.source, _query_set(request, "exclude"),
                                  request.query.get("serializable") == "true")
        body = json.dumps({"health": "true" if ok else "false", "reason": reason}, separators=(",", ":"))
        if ok:
            self.metrics.health_success.inc()
            return _text(body, nosniff=False)  # etcd writes it plainly; Go sniffs text/plain
        self.metrics.health_failures.inc()
        log.warn("/health error", output=body, **{"status-code": 503})
        return go_http_error(body, 503)

    async def run_checks(self, kind: str, checks: dict[str, Check], names: Sequence[str],
                         verbose: bool) -> web.Response:
        lines = []
        failed = False
        for name in names:
            try:
                await checks[name](self.source)
            except CheckFailed as exc:
                failed = True
                lines.append(f"[-]{name} failed: {exc}\n")
                self.metrics.healthcheck.labels(type=kind, name=name).set(0)
                self.metrics.healthchecks.labels(type=kind, name=name, status="error").inc()
            else:
                lines.append(f"[+]{name} ok\n")
                self.metrics.healthcheck.labels(type=kind, name=name).set(1)
                self.metrics.healthchecks.labels(type=kind, name=name, status="success").inc()
        report = "".join(lines)
        if failed:
            log.error("Health check error", path=f"/{kind}", reason=report, **{"status-code": 503})
            return go_http_error(report, 503)
        return _text((report if verbose else "") + "ok\n")

    def checks_handler(self, kind: str, checks: dict[str, Check]
                       ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if request.method != "GET":
                return method_not_allowed()
            excluded = _query_set(request, "exclude")
            unknown = excluded - set(checks)
            if unknown:
                log.warn("some health checks cannot be excluded",
                         **{"missing-health-checks": ",".join(f'"{n}"' for n in sorted(unknown))})
            names = [name for name in checks if name not in excluded]
            return await self.run_checks(kind, checks, names, "verbose" in request.query)

        return handle

    def single_check_handler(self, kind: str, checks: dict[str, Check], name: str
                             ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if request.method != "GET":
                return method_not_allowed()
            return await self.run_checks(kind, checks, [name], "verbose" in request.query)

        return handle

    async def version(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            return method_not_allowed()
        server, cluster = self.source.versions()
        return json_response({"etcdserver": server, "etcdcluster": cluster})

    async def metrics_text(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            return method_not_allowed()
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response


def add_routes(app: web.Application, source: HealthSource, metrics: Metrics, *, version: bool = True) -> None:
    """Mount the endpoints on an application (the client port's, which also serves /v2)."""
    endpoints = Endpoints(source, metrics)
    app.router.add_route("*", "/health", endpoints.health)
    if version:
        app.router.add_route("*", "/version", endpoints.version)
    app.router.add_route("*", "/metrics", endpoints.metrics_text)
    for kind, checks in (("livez", LIVEZ_CHECKS), ("readyz", READYZ_CHECKS)):
        app.router.add_route("*", f"/{kind}", endpoints.checks_handler(kind, checks))
        for name in checks:
            app.router.add_route("*", f"/{kind}/{name}", endpoints.single_check_handler(kind, checks, name))


def build_app(source: HealthSource, metrics: Metrics) -> web.Application:
    """What --listen-metrics-urls serves: /health, /livez, /readyz and /metrics (etcd has no /version
    there)."""
    app = web.Application()
    add_routes(app, source, metrics, version=False)
    return app


class MetricsListeners:
    """The --listen-metrics-urls servers (plain http; https comes with TLS)."""

    def __init__(self, app: web.Application, urls: Sequence[str]) -> None:
        self._app = app
        self._urls = tuple(urls)
        self._runner: web.AppRunner | None = None
        self.addresses: list[tuple[str, int]] = []

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        for url in self._urls:
            parts = urlsplit(url)
            site = web.TCPSite(self._runner, parts.hostname, parts.port, reuse_address=True)
            await site.start()
            # aiohttp keeps the bound server here (asyncio's or uvloop's); needed to learn a port 0.
            sockets = getattr(site._server, "sockets", None)
            if sockets:
                host, port = sockets[0].getsockname()[:2]
                self.addresses.append((host, port))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

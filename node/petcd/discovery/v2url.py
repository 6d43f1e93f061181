"""The etcd v2 discovery protocol, client side (`--discovery <url>`), as etcd 3.4/3.5 speak it.

The URL's path is the token directory on a v2 key service (e.g. `/v2/keys/discovery/<token>`):
read `_config/size`, register `<token>/<member id hex>` with prevExist=false, wait until `size`
members have registered, and return their values joined by commas: the initial cluster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from petcd.config import parse_initial_cluster
from petcd.discovery import errors
from petcd.discovery.errors import DiscoveryError

log = logging.getLogger(__name__)

# etcd's client.DefaultRequestTimeout for the size/registration requests; watches have none.
REQUEST_TIMEOUT_SECONDS = 5.0
MAX_EXPONENTIAL_RETRIES = 8
UNLIMITED_RETRIES = 2**32 - 1


class _ClusterError(Exception):
    """The service could not be reached or answered 500/503 (etcd's client.ClusterError): retried."""


class _InvalidJSON(Exception):
    pass


class _KeyError(Exception):
    """A v2 error answer; str() is the v2 client's `code: message (cause) [index]`."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.code = int(body.get("errorCode", 0))
        super().__init__(f"{self.code}: {body.get('message', '')} ({body.get('cause', '')}) "
                         f"[{body.get('index', 0)}]")


@dataclass(frozen=True)
class _Node:
    key: str
    value: str
    created_index: int
    modified_index: int

    @classmethod
    def of(cls, raw: dict[str, Any]) -> _Node:
        return cls(raw.get("key", ""), raw.get("value", ""), int(raw.get("createdIndex", 0)),
                   int(raw.get("modifiedIndex", 0)))


class Discovery:
    def __init__(self, discovery_url: str, member_id: int = 0, *,
                 backoff_unit_seconds: float = 1.0, max_retries: int = UNLIMITED_RETRIES,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        parts = urlsplit(discovery_url)
        if not parts.scheme or not parts.netloc:
            raise DiscoveryError(errors.INVALID_URL)
        self.endpoint = f"{parts.scheme}://{parts.netloc}"
        self.cluster = parts.path
        self.member_id = member_id
        self.retries = 0
        self.backoff_unit = backoff_unit_seconds
        self.max_retries = max_retries
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    @property
    def self_key(self) -> str:
        return posixpath.join("/", self.cluster.lstrip("/"), f"{self.member_id:x}")

    # ---- the protocol -------------------------------------------------------------------------

    async def join_cluster(self, config: str) -> str:
        """Register `config` (this member's `name=peerURL,...`) and return the initial cluster."""
        async with aiohttp.ClientSession() as self._session:
            await self._check_cluster()  # fast path: a full cluster needs no registration
            await self._create_self(config)
            nodes, size, index = await self._check_cluster()
            return _nodes_to_cluster(await self._wait_nodes(nodes, size, index), size)

    async def get_cluster(self) -> str:
        """The initial cluster without registering (a proxy's view); a full cluster is fine."""
        async with aiohttp.ClientSession() as self._session:
            try:
                nodes, size, index = await self._check_cluster()
            except _FullCluster as full:
                return _nodes_to_cluster(full.nodes, full.size)
            return _nodes_to_cluster(await self._wait_nodes(nodes, size, index), size)

    async def _create_self(self, config: str) -> None:
        try:
            _, body = await self._call("PUT", self.self_key, {"prevExist": "false", "value": config},
                                       REQUEST_TIMEOUT_SECONDS)
        except _KeyError as err:
            if err.code == 105:
                raise DiscoveryError(errors.DUPLICATE_ID) from None
            raise DiscoveryError(str(err)) from None
        except _ClusterError as err:
            raise DiscoveryError(str(err)) from None
        # Make sure our registration is visible on the server we talk to.
        created = _Node.of(body["node"]).created_index
        await self._watch_next(self.self_key, created, recursive=False)

    async def _check_cluster(self) -> tuple[list[_Node], int, int]:
        config_key = posixpath.join("/", self.cluster.lstrip("/"), "_config")
        try:
            _, body = await self._call("GET", config_key + "/size", {}, REQUEST_TIMEOUT_SECONDS)
        except _InvalidJSON:
            raise DiscoveryError(errors.BAD_DISCOVERY_ENDPOINT) from None
        except _KeyError as err:
            # etcd means to say SIZE_NOT_FOUND here, but a type mismatch makes it print the raw error.
            raise DiscoveryError(str(err)) from None
        except _ClusterError as err:
            log.warning("failed to get from discovery server: %s", err)
            return await self._check_cluster_retry()
        value = body.get("node", {}).get("value", "")
        if not (value.isascii() and value.isdigit()):
            raise DiscoveryError(errors.BAD_SIZE_KEY)
        size = int(value)
        try:
            headers, body = await self._call("GET", self.cluster, {}, REQUEST_TIMEOUT_SECONDS)
        except _ClusterError as err:
            log.warning("failed to get from discovery server: %s", err)
            return await self._check_cluster_retry()
        except (_KeyError, _InvalidJSON) as err:
            raise DiscoveryError(str(err)) from None
        index = int(headers.get("X-Etcd-Index", "0"))
        nodes = [_Node.of(n) for n in body["node"].get("nodes", [])
                 if posixpath.basename(n.get("key", "")) != "_config"]
        nodes.sort(key=lambda n: n.created_index)
        self_name = posixpath.basename(self.self_key)
        for i, node in enumerate(nodes):
            if posixpath.basename(node.key) == self_name:
                break
            if size and i >= size - 1:  # (etcd's unsigned arithmetic never calls size 0 full)
                raise _FullCluster(nodes[:size], size)
        return nodes, size, index

    async def _backoff(self, step: str) -> None:
        self.retries += 1
        delay = self.backoff_unit * (1 << min(self.retries, MAX_EXPONENTIAL_RETRIES))
        log.info("retry connecting to discovery service url=%s reason=%s backoff=%ss",
                 self.endpoint + self.cluster, step, delay)
        await self._sleep(delay)

    async def _check_cluster_retry(self) -> tuple[list[_Node], int, int]:
        if self.retries >= self.max_retries:
            raise DiscoveryError(errors.TOO_MANY_RETRIES)
        await self._backoff("cluster status check")
        return await self._check_cluster()

    async def _wait_nodes(self, nodes: list[_Node], size: int, index: int) -> list[_Node]:
        found = list(nodes[:size])
        wait_index = index + 1
        while len(found) < size:
            log.info("found %d peers from discovery server; waiting for %d more",
                     len(found), size - len(found))
            try:
                node = await self._watch_next(self.cluster, wait_index, recursive=True)
            except _ClusterError as err:
                log.warning("error while waiting for peers: %s", err)
                if self.retries >= self.max_retries:
                    raise DiscoveryError(errors.TOO_MANY_RETRIES) from None
                await self._backoff("waiting for other nodes")
                nodes, size, index = await self._check_cluster()
                return await self._wait_nodes(nodes, size, index)
            except (_KeyError, _InvalidJSON) as err:
                raise DiscoveryError(str(err)) from None
            found.append(node)
            wait_index = node.modified_index + 1
        return found

    async def _watch_next(self, key: str, wait_index: int, recursive: bool) -> _Node:
        params = {"wait": "true", "waitIndex": str(wait_index)}
        if recursive:
            params["recursive"] = "true"
        _, body = await self._call("GET", key, params, None)
        return _Node.of(body["node"])

    async def _call(self, method: str, key: str, params: dict[str, str],
                    timeout: float | None) -> tuple[dict[str, str], dict[str, Any]]:
        assert self._session is not None
        url = self.endpoint + key
        data = params if method == "PUT" else None
        query = None if method == "PUT" else params
        try:
            async with self._session.request(
                method, url, params=query, data=data,
                timeout=aiohttp.ClientTimeout(total=timeout, connect=30),
            ) as resp:
                raw = await resp.read()
                if resp.status in (500, 503):
                    raise _ClusterError(f"client: etcd cluster is unavailable or misconfigured; "
                                        f"error #0: server answered {resp.status}")
                headers = dict(resp.headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise _ClusterError("client: etcd cluster is unavailable or misconfigured; "
                                f"error #0: {err}") from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise _InvalidJSON() from None
        if not isinstance(body, dict):
            raise _InvalidJSON()
        if "errorCode" in body:
            raise _KeyError(body)
        return headers, body


class _FullCluster(DiscoveryError):
    def __init__(self, nodes: list[_Node], size: int) -> None:
        super().__init__(errors.FULL_CLUSTER)
        self.nodes = nodes
        self.size = size


def _nodes_to_cluster(nodes: list[_Node], size: int) -> str:
    text = ",".join(n.value for n in nodes)
    try:
        urls_map = parse_initial_cluster(text)
    except ValueError:
        raise DiscoveryError(errors.INVALID_URL) from None
    if len(urls_map) != size:
        raise DiscoveryError(errors.DUPLICATE_NAME)
    return text


async def join_cluster(discovery_url: str, member_id: int, config: str, **options: Any) -> str:
    """etcd's v2discovery.JoinCluster: register and wait; returns the initial cluster string."""
    return await Discovery(discovery_url, member_id, **options).join_cluster(config)


async def get_cluster(discovery_url: str, **options: Any) -> str:
    """etcd's v2discovery.GetCluster."""
    return await Discovery(discovery_url, **options).get_cluster()

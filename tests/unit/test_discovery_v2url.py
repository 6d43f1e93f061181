"""The v2 discovery client against an in-process v2 service built on the real store."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from petcd.discovery import v2url
from petcd.discovery.errors import DiscoveryError
from petcd.v2.http import V2Member
from petcd.v2.standalone import StandaloneV2Backend, standalone_app

SERVICE = V2Member(1, "disco", ["http://127.0.0.1:1"], ["http://127.0.0.1:2"])


def with_service(test: Callable[[str], Awaitable[None]]) -> None:
    async def main() -> None:
        server = TestServer(standalone_app(StandaloneV2Backend(SERVICE)), host="127.0.0.1")
        await server.start_server()
        try:
            await test(f"http://127.0.0.1:{server.port}")
        finally:
            await server.close()

    asyncio.run(main())


async def put(base: str, key: str, value: str) -> None:
    async with aiohttp.ClientSession() as session, session.put(base + "/v2/keys" + key,
                                                               data={"value": value}) as r:
        assert r.status in (200, 201)


def config(name: str, port: int) -> str:
    return f"{name}=http://127.0.0.{port}:2380"


def test_three_members_find_each_other() -> None:
    async def body(base: str) -> None:
        url = base + "/v2/keys/discovery/token1"
        await put(base, "/discovery/token1/_config/size", "3")
        first = asyncio.ensure_future(v2url.join_cluster(url, 0xA, config("m1", 11)))
        await asyncio.sleep(0.1)
        assert not first.done()  # waits for the others
        rest = [v2url.join_cluster(url, 0xB, config("m2", 12)),
                v2url.join_cluster(url, 0xC, config("m3", 13))]
        results = await asyncio.wait_for(asyncio.gather(first, *rest), 20)
        assert len(set(results)) == 1
        assert sorted(results[0].split(",")) == [config("m1", 11), config("m2", 12), config("m3", 13)]
        assert results[0].split(",")[0] == config("m1", 11)  # ordered by registration
        with pytest.raises(DiscoveryError, match=r"^discovery: cluster is full$"):
            await v2url.join_cluster(url, 0xD, config("m4", 14))
        # A registered member asking again (a restart) collides with its own key.
        with pytest.raises(DiscoveryError, match=r"^discovery: found duplicate id$"):
            await v2url.join_cluster(url, 0xA, config("m1", 11))
        assert await v2url.get_cluster(url) == results[0]

    with_service(body)


def test_size_key_problems() -> None:
    async def body(base: str) -> None:
        with pytest.raises(DiscoveryError, match=r"^100: Key not found \(/discovery\) \[0\]$"):
            await v2url.join_cluster(base + "/v2/keys/discovery/none", 1, config("a", 1))
        await put(base, "/discovery/bad/_config/size", "three")
        with pytest.raises(DiscoveryError, match=r"^discovery: size key is bad$"):
            await v2url.join_cluster(base + "/v2/keys/discovery/bad", 1, config("a", 1))

    with_service(body)


def test_duplicate_names() -> None:
    async def body(base: str) -> None:
        url = base + "/v2/keys/discovery/dup"
        await put(base, "/discovery/dup/_config/size", "2")
        joins = [v2url.join_cluster(url, 1, config("same", 1)), v2url.join_cluster(url, 2, config("same", 2))]
        outcomes = await asyncio.wait_for(asyncio.gather(*joins, return_exceptions=True), 20)
        assert [str(o) for o in outcomes] == ["discovery: found duplicate name"] * 2

    with_service(body)


def test_not_a_discovery_service() -> None:
    async def body() -> None:
        app = web.Application()

        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="<html>hello</html>")

        app.router.add_get("/{tail:.*}", hello)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            with pytest.raises(DiscoveryError, match=r"^discovery: bad discovery endpoint$"):
                await v2url.join_cluster(f"http://127.0.0.1:{server.port}/x", 1, config("a", 1))
        finally:
            await server.close()

    asyncio.run(body())


def test_unreachable_service_backs_off_then_gives_up() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    async def body() -> Any:
        return await v2url.join_cluster(f"http://127.0.0.1:{port}/v2/keys/t", 1, config("a", 1),
                                        max_retries=3, sleep=record)

    with pytest.raises(DiscoveryError, match=r"^discovery: too many retries$"):
        asyncio.run(body())
    assert slept == [2.0, 4.0, 8.0]


def test_backoff_is_capped_at_two_to_the_eighth() -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    async def body() -> None:
        d = v2url.Discovery("http://127.0.0.1:1/t", 1, backoff_unit_seconds=0.5, sleep=record)
        for _ in range(10):
            await d._backoff("test")

    asyncio.run(body())
    assert slept == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 128.0, 128.0]


def test_invalid_url() -> None:
    with pytest.raises(DiscoveryError, match=r"^discovery: invalid URL$"):
        v2url.Discovery("not a url", 1)

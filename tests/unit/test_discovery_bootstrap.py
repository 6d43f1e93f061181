"""initial_members: static, discovery-URL and the duplicate-URL check, over an in-process v2 service."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from petcd.config import Config, ConfigError
from petcd.discovery.bootstrap import initial_members
from petcd.v2.http import V2Member
from petcd.v2.standalone import StandaloneV2Backend, standalone_app


def test_static_cluster_is_taken_as_configured() -> None:
    config = Config(name="a", initial_cluster="a=http://127.0.0.1:2380,b=http://127.0.0.2:2380",
                    initial_advertise_peer_urls=("http://127.0.0.1:2380",))
    members = asyncio.run(initial_members(config, 1))
    assert members == {"a": ("http://127.0.0.1:2380",), "b": ("http://127.0.0.2:2380",)}


async def _service_with_size(size: int) -> TestServer:
    backend = StandaloneV2Backend(V2Member(1, "disco", ["http://127.0.0.1:1"], ["http://127.0.0.1:2"]))
    server = TestServer(standalone_app(backend), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{server.port}/v2/keys/discovery/t/_config/size"
        async with session.put(url, data={"value": str(size)}) as resp:
            assert resp.status == 201
    return server


def _config(name: str, peer_url: str, discovery: str) -> Config:
    return Config(name=name, initial_cluster="", discovery=discovery, initial_advertise_peer_urls=(peer_url,))


def test_discovery_url_gives_the_registered_members() -> None:
    async def body() -> None:
        server = await _service_with_size(2)
        try:
            url = f"http://127.0.0.1:{server.port}/v2/keys/discovery/t"
            found = await asyncio.gather(initial_members(_config("a", "http://127.0.0.1:2380", url), 10),
                                         initial_members(_config("b", "http://127.0.0.2:2380", url), 11))
            assert found[0] == found[1] == {"a": ("http://127.0.0.1:2380",), "b": ("http://127.0.0.2:2380",)}
        finally:
            await server.close()

    asyncio.run(body())


def test_discovered_duplicate_url_is_refused() -> None:
    async def body() -> None:
        server = await _service_with_size(2)
        try:
            url = f"http://127.0.0.1:{server.port}/v2/keys/discovery/t"
            same = "http://127.0.0.1:2380"
            with pytest.raises(ConfigError, match=r"^discovery cluster a=.*,b=.* has duplicate url$"):
                await asyncio.gather(initial_members(_config("a", same, url), 10),
                                     initial_members(_config("b", same, url), 11))
        finally:
            await server.close()

    asyncio.run(body())

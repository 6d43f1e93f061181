"""The /v2 handlers over aiohttp's test server, backed by the real v2 store (StandaloneV2Backend)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from petcd.v2.http import V2Member
from petcd.v2.standalone import StandaloneV2Backend, standalone_app

MEMBER = V2Member(0x8E9E05C52164694D, "default", ["http://localhost:2380"], ["http://localhost:2379"])


def run(test: Callable[[TestClient[Any, Any], StandaloneV2Backend], Awaitable[None]]) -> None:
    async def main() -> None:
        backend = StandaloneV2Backend(MEMBER, cluster_id=0xCDF818194E3A8C32)
        async with TestClient(TestServer(standalone_app(backend))) as client:
            await test(client, backend)

    asyncio.run(main())


def test_put_get_headers_and_status() -> None:
    async def body(client: TestClient[Any, Any], backend: StandaloneV2Backend) -> None:
        r = await client.put("/v2/keys/site", data={"value": "example.com"})
        assert r.status == 201
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["X-Etcd-Cluster-ID"] == "cdf818194e3a8c32"
        assert r.headers["X-Etcd-Index"] == "1"
        assert r.headers["X-Raft-Index"] == "1" and r.headers["X-Raft-Term"] == "1"
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert await r.text() == ('{"action":"set","node":{"key":"/site","value":"example.com",'
                                  '"modifiedIndex":1,"createdIndex":1}}\n')
        r = await client.put("/v2/keys/site", data={"value": "<b>&"})
        assert r.status == 200
        assert '"value":"\\u003cb\\u003e\\u0026"' in await r.text()  # escaped as Go escapes it
        r = await client.get("/v2/keys/site")
        assert (await r.json())["node"]["value"] == "<b>&"
        r = await client.get("/v2/keys/")
        assert await r.json() == {"action": "get", "node": {"dir": True, "nodes": [
            {"key": "/site", "value": "<b>&", "modifiedIndex": 2, "createdIndex": 2}]}}
        r = await client.head("/v2/keys/site")
        assert r.status == 200 and r.headers["X-Etcd-Index"] == "2"
        assert len(backend.log) == 2  # reads do not go through the log; writes do

    run(body)


def test_form_body_wins_over_query_and_errors_are_etcds() -> None:
    async def body(client: TestClient[Any, Any], backend: StandaloneV2Backend) -> None:
        r = await client.put("/v2/keys/k?value=query", data={"value": "body"})
        assert (await r.json())["node"]["value"] == "body"
        r = await client.put("/v2/keys/k?value=query")
        assert (await r.json())["node"]["value"] == "query"
        r = await client.get("/v2/keys/missing")
        assert r.status == 404 and r.headers["X-Etcd-Index"] == "2"
        assert await r.text() == '{"errorCode":100,"message":"Key not found","cause":"/missing","index":2}\n'
        r = await client.put("/v2/keys/k", data={"value": "x", "prevExist": "false"})
        assert r.status == 412 and (await r.json())["errorCode"] == 105
        r = await client.put("/v2/keys/k?wait=true")
        assert r.status == 400 and r.headers["X-Etcd-Index"] == "0"
        r = await client.patch("/v2/keys/k")
        assert r.status == 405 and r.headers["Allow"] == "HEAD,GET,PUT,POST,DELETE"
        assert await r.text() == "Method Not Allowed\n"
        r = await client.put("/v2/keys/k", data={"value": "n", "noValueOnSuccess": "true"})
        assert await r.text() == '{"action":"set"}\n'
        r = await client.delete("/v2/keys/k?prevValue=n")
        assert (await r.json())["action"] == "compareAndDelete"

    run(body)


def test_post_in_order_keys_and_quorum_get() -> None:
    async def body(client: TestClient[Any, Any], backend: StandaloneV2Backend) -> None:
        keys = []
        for job in ("a", "b"):
            r = await client.post("/v2/keys/queue", data={"value": job})
            assert r.status == 201
            keys.append((await r.json())["node"]["key"])
        assert keys == ["/queue/00000000000000000001", "/queue/00000000000000000002"]
        r = await client.get("/v2/keys/queue?sorted=true&quorum=true")
        assert [n["value"] for n in (await r.json())["node"]["nodes"]] == ["a", "b"]
        assert len(backend.log) == 3  # the quorum read went through the log

    run(body)


def test_long_poll_watch_and_history() -> None:
    async def body(client: TestClient[Any, Any], backend: StandaloneV2Backend) -> None:
        await client.put("/v2/keys/w", data={"value": "1"})
        r = await client.get("/v2/keys/w?wait=true&waitIndex=1")
        assert r.headers["X-Etcd-Index"] == "1"
        assert (await r.json())["node"]["value"] == "1"
        r = await client.get("/v2/keys/dir?wait=true&recursive=true")
        # Headers come at once (etcd flushes them before waiting); the event comes with the write.
        assert r.status == 200 and r.headers["X-Etcd-Index"] == "1"
        pending = asyncio.ensure_future(r.json())
        await asyncio.sleep(0.2)
        assert not pending.done()
        await client.put("/v2/keys/dir/child", data={"value": "c"})
        assert await asyncio.wait_for(pending, 10) == {
            "action": "set",
            "node": {"key": "/dir/child", "value": "c", "modifiedIndex": 2, "createdIndex": 2}}
        for _ in range(1001):
            await client.put("/v2/keys/w", data={"value": "again"})
        r = await client.get("/v2/keys/w?wait=true&waitIndex=1")
        assert r.status == 400
        assert (await r.json())["cause"] == "the requested history has been cleared [4/1]"

    run(body)


def test_stream_watch_delivers_several_events() -> None:
    async def body(client: TestClient[Any, Any], backend: StandaloneV2Backend) -> None:
        r = await client.get("/v2/keys/s?wait=true&stream=true")
        for value in ("1", "2"):
            await client.put("/v2/keys/s", data={"value": value})
        lines = [json.loads(await asyncio.wait_for(r.content.readline(), 10)) for _ in range(2)]
        assert [line["node"]["value"] for line in lines] == ["1", "2"]
        r.close()
        for _ in range(50):
            if backend.v2_store.hub.count == 0:
                break
            await asyncio.sleep(0.1)
        assert backend.v2_store.hub.count == 0  # the watcher went away with its client

    run(body)


def test_members_machines_and_stats() -> None:
    async def body(client: TestClient[Any, Any], backend: StandaloneV2Backend) -> None:
        r = await client.get("/v2/members")
        assert r.headers["X-Etcd-Cluster-ID"] == "cdf818194e3a8c32"
        assert await r.text() == ('{"members":[{"id":"8e9e05c52164694d","name":"default",'
                                  '"peerURLs":["http://localhost:2380"],"clientURLs":["http://localhost:2379"]}]}\n')
        r = await client.get("/v2/members/leader")
        assert (await r.json())["name"] == "default"
        r = await client.post("/v2/members", data={"peerURLs": "x"})
        assert r.status == 415
        assert await r.json() == {"message": "Bad Content-Type application/x-www-form-urlencoded, "
                                             "accept application/json"}
        r = await client.post("/v2/members", json={"peerURLs": ["http://localhost:2380"]})
        assert r.status == 409 and await r.json() == {"message": "membership: peerURL exists"}
        r = await client.post("/v2/members", json={"peerURLs": ["ftp://x:1"]})
        assert r.status == 400
        r = await client.delete("/v2/members/zz")
        assert r.status == 404 and await r.json() == {"message": "No such member: zz"}
        r = await client.delete("/v2/members/12")
        assert r.status == 404 and await r.json() == {"message": "No such member: 12"}
        r = await client.put("/v2/members/8e9e05c52164694d", json={"peerURLs": ["http://127.0.0.1:2380"]})
        assert r.status == 204
        assert (await (await client.get("/v2/members")).json())["members"][0]["peerURLs"] == [
            "http://127.0.0.1:2380"]
        r = await client.get("/v2/machines")
        assert await r.text() == "http://localhost:2379"
        await client.put("/v2/keys/a", data={"value": "1"})
        await client.get("/v2/keys/nope")
        stats = await (await client.get("/v2/stats/store")).json()
        assert list(stats)[:4] == ["getsSuccess", "getsFail", "setsSuccess", "setsFail"]
        assert (stats["setsSuccess"], stats["getsFail"], stats["watchers"]) == (1, 1, 0)
        assert (await (await client.get("/v2/stats/leader")).json())["leader"] == "8e9e05c52164694d"
        assert (await (await client.get("/v2/stats/self")).json())["state"] == "StateLeader"
        assert (await client.post("/v2/stats/self")).status == 405

    run(body)

"""An aetcd session against one endpoint; prints what it observed as JSON.

Run as its own process: aetcd registers etcd's .proto names in protobuf's default pool, as petcd's
own modules do, and the two cannot live in one interpreter.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aetcd


async def session(host: str, port: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with aetcd.Client(host=host, port=port, timeout=10) as client:
        put = await client.put(b"/a/1", b"one")
        seen["put_revision"] = put.header.revision
        await client.put(b"/a/2", b"two")
        await client.put(b"/b/1", b"other")
        got = await client.get(b"/a/1")
        seen["get"] = [got.value.decode(), got.version, got.create_revision]
        seen["prefix"] = [kv.key.decode() for kv in await client.get_prefix(b"/a/")]
        seen["range"] = [kv.key.decode() for kv in await client.get_range(b"/a/", b"/b/2")]
        ok, _ = await client.transaction(
            compare=[client.transactions.value(b"/a/1") == b"one"],
            success=[client.transactions.put(b"/a/1", b"uno")],
            failure=[],
        )
        failed, _ = await client.transaction(
            compare=[client.transactions.version(b"/a/1") > 99],
            success=[client.transactions.put(b"/a/1", b"never")],
            failure=[client.transactions.get(b"/a/2")],
        )
        seen["txn"] = [ok, failed, (await client.get(b"/a/1")).value.decode()]

        watch = await client.watch_prefix(b"/w/")
        events: list[list[str]] = []

        async def collect() -> None:
            async for event in watch:
                events.append([str(event.kind), event.kv.key.decode(), event.kv.value.decode()])
                if len(events) == 3:
                    return

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.5)
        await client.put(b"/w/x", b"1")
        await client.put(b"/w/y", b"2")
        await client.delete(b"/w/x")
        await asyncio.wait_for(task, 10)
        await watch.cancel()
        seen["watch"] = events

        lease = await client.lease(60)
        await client.put(b"/leased", b"v", lease=lease)
        await lease.refresh()
        seen["lease"] = [await lease.granted_ttl(), [k.decode() for k in await lease.keys()]]
        await lease.revoke()
        seen["after_revoke"] = await client.get(b"/leased") is None
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(session(sys.argv[1], int(sys.argv[2])))))

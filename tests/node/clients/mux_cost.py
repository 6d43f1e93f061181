"""What the client-port multiplexer costs: the same gRPC calls straight to the gRPC server's unix
socket and through the TCP listener that splices into it, with the server process's CPU time per
call for each path. Run: python3 tests/node/clients/mux_cost.py [calls] [concurrency]
(a measurement, not a test: it prints numbers and asserts nothing about them)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

import grpc
import grpc.aio
from aiohttp import web
from petcd.api.mux import ClientListener
from petcd.proto import kv_pb2, rpc_pb2, rpc_pb2_grpc

VALUE = kv_pb2.KeyValue(key=b"key", value=b"v" * 100, create_revision=2, mod_revision=2, version=1)


class _KV(rpc_pb2_grpc.KVServicer):
    async def Range(self, request: rpc_pb2.RangeRequest, context: Any) -> rpc_pb2.RangeResponse:
        return rpc_pb2.RangeResponse(header=rpc_pb2.ResponseHeader(revision=2), kvs=[VALUE], count=1)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _serve(sock: str, conn: Connection) -> None:
    async def main() -> None:
        server = grpc.aio.server()
        rpc_pb2_grpc.add_KVServicer_to_server(_KV(), server)  # type: ignore[no-untyped-call]
        server.add_insecure_port(f"unix:{sock}")
        await server.start()
        listener = ClientListener("127.0.0.1", 0, sock, web.Server(lambda r: web.Response()))
        await listener.start()
        conn.send(listener.port)
        loop = asyncio.get_running_loop()
        while True:
            await loop.run_in_executor(None, conn.recv)
            conn.send(_cpu())

    if os.environ.get("MUX_COST_UVLOOP"):
        import uvloop

        uvloop.install()
    asyncio.run(main())


async def _load(target: str, calls: int, concurrency: int) -> float:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        await stub.Range(rpc_pb2.RangeRequest(key=b"key"))
        start = time.perf_counter()

        async def worker(n: int) -> None:
            for _ in range(n):
                await stub.Range(rpc_pb2.RangeRequest(key=b"key"))

        await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
        return time.perf_counter() - start


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "grpc.sock")
        parent, child = multiprocessing.Pipe()
        proc = multiprocessing.Process(target=_serve, args=(sock, child), daemon=True)
        proc.start()
        port = parent.recv()
        try:
            paths = (("direct unix socket", f"unix:{sock}"), ("through the mux", f"127.0.0.1:{port}"))
            for name, target in paths:
                parent.send("cpu")
                before = parent.recv()
                wall = asyncio.run(_load(target, calls, concurrency))
                parent.send("cpu")
                cpu = parent.recv() - before
                print(f"{name:20s} {calls / wall:8.0f} calls/s  server CPU {cpu / calls * 1e6:6.1f} us/call")
        finally:
            proc.kill()


if __name__ == "__main__":
    main()

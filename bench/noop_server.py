"""The ceiling of one Python gRPC process here: a grpc.aio server (on uvloop, as petcd runs) whose
KV.Put answers at once with an empty response. etcd's benchmark tool measures it like any member.

    python3 -m bench.noop_server HOST PORT
"""

from __future__ import annotations

import sys
from typing import Any

import grpc
import uvloop
from petcd.proto import rpc_pb2, rpc_pb2_grpc


class NoopKV(rpc_pb2_grpc.KVServicer):
    async def Put(self, request: rpc_pb2.PutRequest, context: Any) -> rpc_pb2.PutResponse:
        return rpc_pb2.PutResponse()


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server()
    rpc_pb2_grpc.add_KVServicer_to_server(NoopKV(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"no-op KV server on {host}:{port}", flush=True)
    await server.wait_for_termination()


def main(argv: list[str]) -> int:
    host, port = argv
    uvloop.run(serve(host, int(port)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

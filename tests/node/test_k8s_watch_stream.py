"""kube-apiserver opens and drops Watch streams all the time (every watch cache restart, every client
going away): a dropped stream must be cleaned up without leaving pending tasks to the garbage
collector, which asyncio reports as "Task was destroyed but it is pending!" in the member's log."""

from __future__ import annotations

import time

import grpc
from harness import Implementation, Sandbox, etcdctl
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

PETCD = Implementation("petcd", ("petcd",))
STREAMS = 40


def test_watch_streams_dropped_by_the_client_leave_no_pending_task(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=1)
    member = cluster.members[0]
    endpoint = member.client_url.removeprefix("http://")

    def requests():  # type: ignore[no-untyped-def]
        yield pb.WatchRequest(
            create_request=pb.WatchCreateRequest(key=b"/registry/", range_end=b"/registry0")
        )
        time.sleep(30)  # the stream stays open until the client cancels it

    with grpc.insecure_channel(endpoint) as channel:
        stub = rpc_pb2_grpc.WatchStub(channel)  # type: ignore[no-untyped-call]
        for _ in range(STREAMS):
            stream = stub.Watch(requests())
            assert next(stream).created
            stream.cancel()  # the server is waiting for the next event when the client goes
    # Allocation churn on the server makes its garbage collector run (the dropped tasks, if any,
    # are collected and reported then).
    for i in range(100):
        etcdctl(["put", f"/registry/churn/{i}", "x" * 2000], cluster.endpoints).check()
    assert etcdctl(["endpoint", "health"], cluster.endpoints).returncode == 0
    assert not member.logged("Task was destroyed but it is pending"), member.log_tail(20)

"""porcupine-check (tools/porcupine) can tell linearizable histories from broken ones, and a real
etcd cluster's history, recorded under a leader kill, passes it."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import grpc
import pytest
from harness import Cluster, Implementation, Sandbox
from harness.linearizability import History, Pending, check
from petcd.proto import rpc_pb2, rpc_pb2_grpc

Op = tuple[int, int, int, dict[str, Any], dict[str, Any]]  # client, call, return, input, output


def history(*operations: Op) -> str:
    return json.dumps(
        {
            "operations": [
                {"client": c, "call": s, "return": e, "input": i, "output": o} for c, s, e, i, o in operations
            ]
        }
    )


def put(key: str, value: str) -> dict[str, Any]:
    return {"op": "put", "key": key, "value": value}


def get(key: str) -> dict[str, Any]:
    return {"op": "get", "key": key}


def cas(key: str, expected: str | None, value: str) -> dict[str, Any]:
    return {"op": "cas", "key": key, "expected": expected, "value": value}


def found(value: str) -> dict[str, Any]:
    return {"found": True, "value": value}


ABSENT: dict[str, Any] = {"found": False, "value": ""}
UNKNOWN: dict[str, Any] = {"unknown": True}

LINEARIZABLE = {
    "sequential": history(
        (0, 0, 10, get("x"), ABSENT),
        (0, 20, 30, put("x", "1"), {}),
        (1, 40, 50, get("x"), found("1")),
        (1, 60, 70, {"op": "delete", "key": "x"}, {"deleted": 1}),
        (0, 80, 90, get("x"), ABSENT),
    ),
    "concurrent read sees the new value": history(
        (0, 0, 100, put("x", "1"), {}),
        (1, 10, 20, get("x"), found("1")),
    ),
    "concurrent read sees the old value": history(
        (0, 0, 100, put("x", "1"), {}),
        (1, 10, 20, get("x"), ABSENT),
    ),
    "unknown write seen later": history(
        (0, 0, 10, put("x", "1"), UNKNOWN),
        (1, 50, 60, get("x"), found("1")),
    ),
    "unknown write never seen": history(
        (0, 0, 10, put("x", "1"), UNKNOWN),
        (1, 50, 60, get("x"), ABSENT),
    ),
    "compare-and-set": history(
        (0, 0, 10, cas("x", None, "a"), {"succeeded": True}),
        (1, 20, 30, cas("x", None, "b"), {"succeeded": False}),
        (1, 40, 50, cas("x", "a", "b"), {"succeeded": True}),
        (0, 60, 70, get("x"), found("b")),
    ),
}

NOT_LINEARIZABLE = {
    "stale read": history(
        (0, 0, 10, put("x", "1"), {}),
        (0, 20, 30, put("x", "2"), {}),
        (1, 40, 50, get("x"), found("1")),
    ),
    "lost write": history(
        (0, 0, 10, put("x", "1"), {}),
        (1, 20, 30, put("x", "2"), {}),
        (0, 40, 50, get("x"), found("1")),
        (1, 60, 70, get("x"), found("1")),
    ),
    "read of a value never written": history((0, 0, 10, get("x"), found("ghost"))),
    "two creators": history(
        (0, 0, 10, cas("x", None, "a"), {"succeeded": True}),
        (1, 20, 30, cas("x", None, "b"), {"succeeded": True}),
    ),
}


@pytest.mark.parametrize("name", sorted(LINEARIZABLE))
def test_linearizable_histories_pass(name: str, tmp_path: Path) -> None:
    assert check(LINEARIZABLE[name], tmp_path).result == "ok"


@pytest.mark.parametrize("name", sorted(NOT_LINEARIZABLE))
def test_broken_histories_are_reported(name: str, tmp_path: Path) -> None:
    verdict = check(NOT_LINEARIZABLE[name], tmp_path)
    assert verdict.result == "illegal"
    assert verdict.visualization.exists()


KEYS = [f"k{i}" for i in range(4)]
CLIENTS = 6
OPERATIONS_PER_CLIENT = 60
REQUEST_TIMEOUT = 2


async def perform(kv: rpc_pb2_grpc.KVStub, pending: Pending) -> str | None:
    """One operation through etcd's gRPC API, returning the value it read or wrote (None: absent or
    not known); a failed write has an unknown outcome."""
    op, key = pending.input["op"], pending.input["key"].encode()
    try:
        if op == "get":
            got = await kv.Range(rpc_pb2.RangeRequest(key=key), timeout=REQUEST_TIMEOUT)
            value = got.kvs[0].value.decode() if got.kvs else None
            pending.returned(found=value is not None, value=value or "")
            return value
        if op == "put":
            await kv.Put(
                rpc_pb2.PutRequest(key=key, value=pending.input["value"].encode()), timeout=REQUEST_TIMEOUT
            )
            pending.returned()
            return str(pending.input["value"])
        expected = pending.input["expected"]
        compare = (
            rpc_pb2.Compare(
                key=key, target=rpc_pb2.Compare.CREATE, result=rpc_pb2.Compare.EQUAL, create_revision=0
            )
            if expected is None
            else rpc_pb2.Compare(
                key=key, target=rpc_pb2.Compare.VALUE, result=rpc_pb2.Compare.EQUAL, value=expected.encode()
            )
        )
        put = rpc_pb2.RequestOp(
            request_put=rpc_pb2.PutRequest(key=key, value=pending.input["value"].encode())
        )
        reply = await kv.Txn(rpc_pb2.TxnRequest(compare=[compare], success=[put]), timeout=REQUEST_TIMEOUT)
        pending.returned(succeeded=reply.succeeded)
        return str(pending.input["value"]) if reply.succeeded else None
    except grpc.RpcError:
        if op != "get":
            pending.unknown()
        return None  # a failed read has no effect: it is left out of the history


async def run_client(number: int, cluster: Cluster, recorded: History, seed: int) -> None:
    rng = random.Random(seed)
    last_seen: dict[str, str | None] = {}  # compare-and-set expects what this client saw last
    members = (
        cluster.members[number % len(cluster.members) :] + cluster.members[: number % len(cluster.members)]
    )
    for i in range(OPERATIONS_PER_CLIENT):
        member = next((m for m in members if m.running()), members[0])
        target = f"{member.address.host}:{member.address.client_port}"
        async with grpc.aio.insecure_channel(target) as channel:
            client = rpc_pb2_grpc.KVStub(channel)
            key = rng.choice(KEYS)
            kind = rng.choice(["get", "get", "put", "cas"])
            value = f"c{number}-{i}"
            if kind == "get":
                last_seen[key] = await perform(client, recorded.call(number, "get", key))
            elif kind == "put":
                last_seen[key] = await perform(client, recorded.call(number, "put", key, value=value))
            else:
                pending = recorded.call(number, "cas", key, expected=last_seen.get(key), value=value)
                last_seen[key] = await perform(client, pending) or last_seen.get(key)


async def workload_with_leader_kill(cluster: Cluster, recorded: History) -> None:
    clients = [asyncio.create_task(run_client(n, cluster, recorded, seed=n)) for n in range(CLIENTS)]
    await asyncio.sleep(0.5)
    leader = cluster.leader()
    await asyncio.to_thread(leader.kill)
    await asyncio.gather(*clients)


def test_etcd_history_is_linearizable(sandbox: Sandbox, implementation: Implementation) -> None:
    """Concurrent gets, puts and compare-and-sets on 3 members while the leader is killed (-9)."""
    cluster = sandbox.static_cluster(implementation, 3)
    recorded = History()
    asyncio.run(workload_with_leader_kill(cluster, recorded))
    verdict = check(recorded, sandbox.root / "linearizability")
    assert verdict.operations > CLIENTS * OPERATIONS_PER_CLIENT // 2
    assert verdict.result == "ok", f"see {verdict.visualization} (kept with PETCD_KEEP_SANDBOX=1)"

"""Moving a key space between etcd and petcd with Debian's `etcdctl make-mirror`, as docs/migration.md
says: 10,000 keys (and keys attached to a lease) from a running etcd 3.4 / 3.5 into petcd, and from
petcd back into etcd; afterwards both sides hold the same keys with the same values. The commands are
run exactly as the document shows them."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from harness import IMPLEMENTATIONS, Implementation, Sandbox
from harness.process import ManagedProcess, child_environment
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

PETCD = Implementation("petcd", ("petcd",))
DOC = Path(__file__).resolve().parents[2] / "docs" / "migration.md"
KEYS = int(os.environ.get("PETCD_MIGRATION_KEYS", "10000"))
LEASED_KEYS = 10
TXN_OPS = 128  # etcd's default --max-txn-ops: the most puts one Txn may carry
MIRROR_DEADLINE = 600.0

MIRROR = 'etcdctl --endpoints="$SOURCE" make-mirror "$TARGET"'
COUNT_SOURCE = 'etcdctl --endpoints="$SOURCE" get "" --prefix --limit=1 --write-out=fields | grep \'"Count"\''
COUNT_TARGET = 'etcdctl --endpoints="$TARGET" get "" --prefix --limit=1 --write-out=fields | grep \'"Count"\''


def documented(command: str) -> str:
    assert command in DOC.read_text(), f"docs/migration.md does not show: {command}"
    return command


def count(command: str, source: str, target: str) -> str:
    done = subprocess.run(["bash", "-c", documented(command)], env=child_environment({"SOURCE": source,
                          "TARGET": target}), capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip()


def stub(endpoint: str) -> tuple[grpc.Channel, rpc_pb2_grpc.KVStub]:
    channel = grpc.insecure_channel(endpoint.removeprefix("http://"))
    return channel, rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]


def bulk_load(endpoint: str, keys: int) -> None:
    """`keys` distinct keys in Txns of TXN_OPS puts (seconds, not minutes), then LEASED_KEYS keys
    attached to one lease."""
    channel, kv = stub(endpoint)
    with channel:
        for start in range(0, keys, TXN_OPS):
            puts = [pb.RequestOp(request_put=pb.PutRequest(key=f"data/{i:06d}".encode(),
                                                           value=f"value {i} ".encode() * (1 + i % 7)))
                    for i in range(start, min(start + TXN_OPS, keys))]
            kv.Txn(pb.TxnRequest(success=puts), timeout=30)
        lease = rpc_pb2_grpc.LeaseStub(channel).LeaseGrant(  # type: ignore[no-untyped-call]
            pb.LeaseGrantRequest(TTL=3600), timeout=10)
        for i in range(LEASED_KEYS):
            kv.Put(pb.PutRequest(key=f"leased/{i}".encode(), value=b"session", lease=lease.ID), timeout=10)


def key_values(endpoint: str) -> dict[bytes, bytes]:
    channel, kv = stub(endpoint)
    with channel:
        resp = kv.Range(pb.RangeRequest(key=b"\0", range_end=b"\0"), timeout=60)
    return {item.key: item.value for item in resp.kvs}


def mirror(sandbox: Sandbox, source: str, target: str) -> None:
    """Run make-mirror until the target counts as many keys as the source, then stop it."""
    log = sandbox.log_dir / f"make-mirror-{time.monotonic_ns()}.log"
    env = {"SOURCE": source, "TARGET": target}
    process = ManagedProcess(["bash", "-c", documented(MIRROR)], env, log)
    try:
        expected = count(COUNT_SOURCE, source, target)
        assert expected == f'"Count" : {KEYS + LEASED_KEYS}', expected
        deadline = time.monotonic() + MIRROR_DEADLINE
        while count(COUNT_TARGET, source, target) != expected:
            assert process.running(), process.log_text()
            assert time.monotonic() < deadline, f"make-mirror did not finish in {MIRROR_DEADLINE} s"
            time.sleep(1.0)
    finally:
        process.kill()


def assert_same_key_space(source: str, target: str) -> None:
    expected, mirrored = key_values(source), key_values(target)
    assert len(expected) == KEYS + LEASED_KEYS
    assert mirrored.keys() == expected.keys()
    assert mirrored == expected


def migrate(sandbox: Sandbox, source_impl: Implementation, target_impl: Implementation) -> None:
    """A one-member source filled with the keys, an empty one-member target, the documented mirror."""
    source_impl.require()
    target_impl.require()
    source = sandbox.static_cluster(source_impl, 1, names=["source"])
    target = sandbox.static_cluster(target_impl, 1, names=["target"])
    bulk_load(source.endpoints[0], KEYS)
    mirror(sandbox, source.endpoints[0], target.endpoints[0])
    assert_same_key_space(source.endpoints[0], target.endpoints[0])


@pytest.mark.parametrize("source_name", ["etcd34", "etcd35"])
def test_make_mirror_from_etcd_into_petcd(sandbox: Sandbox, source_name: str) -> None:
    migrate(sandbox, IMPLEMENTATIONS[source_name], PETCD)


def test_make_mirror_from_petcd_back_into_etcd(sandbox: Sandbox) -> None:
    migrate(sandbox, PETCD, IMPLEMENTATIONS["etcd34"])

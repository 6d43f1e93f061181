"""The recorded workload: concurrent clients doing get, put, delete and compare-and-set (recorded
in porcupine's format by harness.linearizability.History, with each response's header revision),
clients writing keys under short leases, and a poller that records which lease keys exist when.

Every client is a thread with its own member preference; after an error it moves to the next
member. A write whose RPC fails has an unknown outcome; the client then continues as a new
porcupine process, since its old one may still be "in flight" forever.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import grpc
from harness.linearizability import History, Pending
from petcd.proto import rpc_pb2

from .client import Connections, Stubs

KV_PREFIX = "/kv/"
LEASE_PREFIX = "/lease/"
REQUEST_TIMEOUT = 2.0
# A process number no client reaches by itself: the next porcupine process of a client after an
# unknown outcome.
_PROCESS_STRIDE = 1000
_MAX_BACK_OFF = 1.0  # seconds
# Clients move on to fresh keys after this many operations in all, so that each key's history
# (porcupine checks keys separately) stays short enough to check quickly.
OPERATIONS_PER_KEY_GENERATION = 3000


T = TypeVar("T")


def prefix_end(prefix: str) -> bytes:
    """etcd's range end for every key starting with `prefix` (last byte plus one)."""
    raw = prefix.encode()
    return raw[:-1] + bytes([raw[-1] + 1])


class Worker(threading.Thread):
    """A client thread that runs `step` until stopped, moving to another member after an error."""

    def __init__(self, name: str, connections: Connections, seed: int, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.connections = connections
        self.rng = random.Random(seed)
        self.stop = stop
        self.member = self.rng.randrange(len(connections.members))
        self.counts: Counter[str] = Counter()
        self.failure: BaseException | None = None
        self.unsent = False  # whether the last failed request surely never reached a server
        self.errors_in_a_row = 0

    @property
    def stubs(self) -> Stubs:
        return self.connections.members[self.member]

    def failed_over(self) -> None:
        self.member = (self.member + 1) % len(self.connections.members)

    def step(self) -> None:
        raise NotImplementedError

    def call(self, rpc: Callable[[], T]) -> T | None:
        """The RPC's response, or None when it failed: counted, `unsent` tells whether the request
        surely never reached a server, the next member is chosen, and the client backs off a
        little longer after each error in a row (so that a dead cluster does not fill the history
        with unknown outcomes)."""
        try:
            result = rpc()
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            details = (error.details() or "") if isinstance(error, grpc.Call) else ""
            self.counts[f"error {code.name if code else 'unknown'}"] += 1
            # gRPC's own words when no connection could be made: the request was never sent
            self.unsent = code == grpc.StatusCode.UNAVAILABLE and "failed to connect" in details.lower()
            self.errors_in_a_row += 1
            self.failed_over()
            self.stop.wait(min(_MAX_BACK_OFF, 0.05 * self.errors_in_a_row))
            return None
        self.counts["ok"] += 1
        self.errors_in_a_row = 0
        return result

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
        except BaseException as error:  # reported by the run, never swallowed
            self.failure = error


class KvClient(Worker):
    """get / put / delete / compare-and-set on a few shared keys, every operation recorded."""

    def __init__(
        self, number: int, connections: Connections, history: History, keys: int, stop: threading.Event
    ):
        super().__init__(f"kv-{number}", connections, seed=number, stop=stop)
        self.number = number
        self.process = number
        self.history = history
        self.keys = keys
        self.sequence = 0
        self.last_seen: dict[str, str | None] = {}  # compare-and-set expects what it saw last

    def step(self) -> None:
        generation = len(self.history.operations) // OPERATIONS_PER_KEY_GENERATION
        key = f"{KV_PREFIX}g{generation}-k{self.rng.randrange(self.keys)}"
        kind = self.rng.choices(["get", "put", "delete", "cas"], weights=[4, 3, 1, 3])[0]
        self.sequence += 1
        value = f"{self.number}-{self.sequence}"
        raw = key.encode()
        if kind == "get":
            pending = self.history.call(self.process, "get", key)
            got = self.call(
                lambda: self.stubs.kv.Range(rpc_pb2.RangeRequest(key=raw), timeout=REQUEST_TIMEOUT)
            )
            if got is None:
                return  # a failed read had no effect: left out of the history
            seen = got.kvs[0].value.decode() if got.kvs else None
            pending.returned(found=seen is not None, value=seen or "", revision=got.header.revision)
            self.last_seen[key] = seen
            return
        if kind == "put":
            pending = self.history.call(self.process, "put", key, value=value)
            request = rpc_pb2.PutRequest(key=raw, value=value.encode())
            put = self.call(lambda: self.stubs.kv.Put(request, timeout=REQUEST_TIMEOUT))
            if put is None:
                return self._unknown(pending)
            pending.returned(revision=put.header.revision)
            self.last_seen[key] = value
            return
        if kind == "delete":
            pending = self.history.call(self.process, "delete", key)
            deleted = self.call(
                lambda: self.stubs.kv.DeleteRange(
                    rpc_pb2.DeleteRangeRequest(key=raw), timeout=REQUEST_TIMEOUT
                )
            )
            if deleted is None:
                return self._unknown(pending)
            pending.returned(deleted=deleted.deleted, revision=deleted.header.revision)
            self.last_seen[key] = None
            return
        expected = self.last_seen.get(key)
        pending = self.history.call(self.process, "cas", key, expected=expected, value=value)
        txn = self.call(
            lambda: self.stubs.kv.Txn(compare_and_set(raw, expected, value), timeout=REQUEST_TIMEOUT)
        )
        if txn is None:
            return self._unknown(pending)
        pending.returned(succeeded=txn.succeeded, revision=txn.header.revision)
        if txn.succeeded:
            self.last_seen[key] = value

    def _unknown(self, pending: Pending) -> None:
        """A failed write: left out when it was never sent, otherwise its outcome is unknown."""
        if self.unsent:
            self.counts["writes never sent"] += 1
            return
        pending.unknown()
        self.process += _PROCESS_STRIDE


def compare_and_set(key: bytes, expected: str | None, value: str) -> rpc_pb2.TxnRequest:
    """Put `value` if the key holds `expected` (None: if the key does not exist)."""
    if expected is None:
        compare = rpc_pb2.Compare(
            key=key, target=rpc_pb2.Compare.CREATE, result=rpc_pb2.Compare.EQUAL, create_revision=0
        )
    else:
        compare = rpc_pb2.Compare(
            key=key, target=rpc_pb2.Compare.VALUE, result=rpc_pb2.Compare.EQUAL, value=expected.encode()
        )
    put = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value.encode()))
    return rpc_pb2.TxnRequest(compare=[compare], success=[put])


@dataclass
class LeaseKey:
    """A key written under a lease: it must vanish within the lease's TTL after its last renewal."""

    key: str
    lease: int
    ttl: int  # seconds, as granted (etcd raises small TTLs to its minimum)
    renewed: float  # monotonic time of the last grant or keep-alive response
    written: str = "pending"  # "ok", or "unknown" when the put's outcome is not known


class LeaseClient(Worker):
    """Grants short leases, writes one key under each, sometimes renews a lease once."""

    def __init__(self, number: int, connections: Connections, stop: threading.Event):
        super().__init__(f"lease-{number}", connections, seed=10_000 + number, stop=stop)
        self.number = number
        self.keys: list[LeaseKey] = []

    def step(self) -> None:
        ttl = self.rng.choice([1, 2, 3])
        lease = self.stubs.lease
        grant = self.call(
            lambda: lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=ttl), timeout=REQUEST_TIMEOUT)
        )
        if grant is None or grant.error:
            return
        record = LeaseKey(
            f"{LEASE_PREFIX}{self.number}-{len(self.keys)}", grant.ID, grant.TTL, time.monotonic()
        )
        self.keys.append(record)
        put = rpc_pb2.PutRequest(key=record.key.encode(), value=b"v", lease=grant.ID)
        record.written = (
            "ok" if self.call(lambda: self.stubs.kv.Put(put, timeout=REQUEST_TIMEOUT)) else "unknown"
        )
        if self.rng.random() < 0.3 and not self.stop.wait(record.ttl / 2):
            self.keep_alive(record)
        self.stop.wait(0.3)

    def keep_alive(self, record: LeaseKey) -> None:
        request = rpc_pb2.LeaseKeepAliveRequest(ID=record.lease)
        lease = self.stubs.lease
        answer = self.call(lambda: next(iter(lease.LeaseKeepAlive(iter([request]), timeout=REQUEST_TIMEOUT))))
        if answer is not None and answer.TTL > 0:
            record.renewed = time.monotonic()
            record.ttl = answer.TTL


@dataclass(frozen=True)
class Observation:
    """The lease keys a linearizable read returned, and when the read was called and returned."""

    called: float
    returned: float
    keys: frozenset[str]


class LeasePoller(Worker):
    """Reads every lease key a few times a second."""

    def __init__(self, connections: Connections, stop: threading.Event, interval: float = 0.25):
        super().__init__("lease-poller", connections, seed=20_000, stop=stop)
        self.interval = interval
        self.observations: list[Observation] = []

    def step(self) -> None:
        self.poll()
        self.stop.wait(self.interval)

    def poll(self) -> Observation | None:
        request = rpc_pb2.RangeRequest(
            key=LEASE_PREFIX.encode(), range_end=prefix_end(LEASE_PREFIX), keys_only=True
        )
        called = time.monotonic()
        got = self.call(lambda: self.stubs.kv.Range(request, timeout=REQUEST_TIMEOUT))
        if got is None:
            return None
        seen = Observation(called, time.monotonic(), frozenset(kv.key.decode() for kv in got.kvs))
        self.observations.append(seen)
        return seen


class TermMonitor(Worker):
    """Notes when the Raft term rises (a leader election the nemesis did not cause, e.g. a member
    starved of CPU): the lease check counts those as disturbances too."""

    def __init__(self, connections: Connections, stop: threading.Event, interval: float = 0.5):
        super().__init__("term-monitor", connections, seed=40_000, stop=stop)
        self.interval = interval
        self.term = 0
        self.elections: list[float] = []

    def step(self) -> None:
        for stubs in self.connections.members:
            status = self.call(partial(stubs.maintenance.Status, rpc_pb2.StatusRequest(), timeout=0.5))
            if status is not None and status.raftTerm > self.term:
                if self.term:
                    self.elections.append(time.monotonic())
                self.term = status.raftTerm
        self.stop.wait(self.interval)

"""Membership churn under load: 1 → 3 → 5 → 3 → 1 members while a client writes all the time.

Members join as learners (MemberAdd --learner, started with --initial-cluster-state existing) and
are promoted once caught up; members leave by MemberRemove, the leader among them at each shrink.
Every acknowledged write must be readable at the end, and after every step `etcdctl member list`
shows exactly the members expected (names, learner flags). Runs with every registered
implementation, so the same steps are shown to work with etcd.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from harness import Cluster, Implementation, Member, Sandbox, etcdctl, static_flags
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc

TOKEN = "churn"
STEP_TIMEOUT = 30.0
PREFIX = "churn/"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what} after {timeout} s"
        time.sleep(0.2)


@dataclass
class Writer:
    """Puts churn/<n> = <n> in a loop, round-robin over the endpoints it is given."""

    endpoints: list[str]
    acknowledged: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def use(self, endpoints: list[str]) -> None:
        with self._lock:
            self.endpoints = list(endpoints)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STEP_TIMEOUT)

    def _run(self) -> None:
        channels: dict[str, grpc.Channel] = {}
        n = 0
        try:
            while not self._stop.is_set():
                with self._lock:
                    endpoint = self.endpoints[n % len(self.endpoints)]
                target = endpoint.removeprefix("http://")
                channel = channels.get(target) or channels.setdefault(target, grpc.insecure_channel(target))
                key, value = f"{PREFIX}{n:06d}", str(n)
                try:
                    rpc_pb2_grpc.KVStub(channel).Put(  # type: ignore[no-untyped-call]
                        pb.PutRequest(key=key.encode(), value=value.encode()), timeout=5.0
                    )
                    self.acknowledged[key] = value
                except grpc.RpcError:
                    self.failures += 1  # not acknowledged: may or may not have been applied
                    time.sleep(0.05)
                n += 1
        finally:
            for channel in channels.values():
                channel.close()


def listing(endpoints: list[str]) -> dict[str, bool]:
    """name -> isLearner, from `etcdctl member list` (an unstarted member shows an empty name)."""
    out = etcdctl(["member", "list", "-w", "json"], endpoints).check().stdout
    return {m.get("name", ""): bool(m.get("isLearner", False)) for m in json.loads(out)["members"]}


class Churn:
    def __init__(self, sandbox: Sandbox, implementation: Implementation) -> None:
        self.sandbox = sandbox
        self.implementation = implementation
        self.cluster = sandbox.static_cluster(implementation, 1, names=["m0"], token=TOKEN)
        self.members: list[Member] = list(self.cluster.members)
        self.writer = Writer(self.endpoints())
        self._names = (f"m{i}" for i in range(1, 100))

    def endpoints(self, without: Member | None = None) -> list[str]:
        return [m.client_url for m in self.members if m is not without]

    def expect(self, learners: tuple[str, ...] = ()) -> None:
        expected = {m.name: m.name in learners for m in self.members}
        voters = [m.client_url for m in self.members if m.name not in learners]  # learners refuse it
        wait_until(lambda: listing(voters) == expected, f"member list {expected}")

    def grow(self) -> None:
        """Add a learner, start it with `existing`, promote it once it has caught up."""
        (address,) = self.sandbox.addresses([next(self._names)])
        add = ["member", "add", address.name, f"--peer-urls={address.peer_url}", "--learner"]
        added = self._retry(add, self.endpoints())
        match = re.search(r"Member\s+([0-9a-f]+)\s+added", added)  # %16x: space-padded
        assert match is not None, added
        peers = [m.address for m in self.members] + [address]
        flags = static_flags(address, self.sandbox.data_dir(address), peers, token=TOKEN, state="existing")
        member = self.sandbox.member(self.implementation, address, flags)
        self.members.append(member)
        member.wait_healthy(STEP_TIMEOUT)
        self.expect(learners=(address.name,))
        self._retry(["member", "promote", match.group(1)], self.endpoints(without=member))
        self.writer.use(self.endpoints())
        self.expect()

    def shrink(self, leader: bool) -> None:
        """Remove the leader (or a follower); it stops by itself."""
        current = Cluster(self.implementation, self.members, TOKEN)
        chosen = current.leader()
        if not leader:
            chosen = next(m for m in self.members if m is not chosen)
        chosen_id = current.member_ids()[chosen.name]
        others = self.endpoints(without=chosen)
        self.writer.use(others)
        self._retry(["member", "remove", f"{chosen_id:x}"], others)
        assert chosen.wait_exit(STEP_TIMEOUT) is not None, f"{chosen.name} kept running after its removal"
        assert chosen.logged("the member has been permanently removed from the cluster")
        self.members.remove(chosen)
        self.expect()

    def _retry(self, args: list[str], endpoints: list[str]) -> str:
        """etcd refuses reconfiguration until the members are connected for a while, and promotion
        until the learner caught up: retry those refusals (bounded), fail on anything else."""
        transient = ("unhealthy cluster", "not enough started members", "in sync with leader")
        outcome = ""

        def done() -> bool:
            nonlocal outcome
            answer = etcdctl(args, endpoints)
            outcome = answer.stdout + answer.stderr
            if answer.returncode == 0:
                return True
            assert any(t in answer.stderr for t in transient), f"{args}: {outcome}"
            return False

        wait_until(done, f"etcdctl {' '.join(args)} ({outcome})")
        return outcome


def test_one_three_five_three_one_under_writes(sandbox: Sandbox, implementation: Implementation) -> None:
    churn = Churn(sandbox, implementation)
    churn.expect()
    churn.writer.start()
    try:
        for _ in range(4):
            churn.grow()
        assert len(churn.members) == 5
        churn.shrink(leader=True)
        churn.shrink(leader=False)
        churn.shrink(leader=True)
        churn.shrink(leader=False)
        assert len(churn.members) == 1
        time.sleep(0.5)  # a few writes against the last member alone
    finally:
        churn.writer.stop()
    acknowledged = churn.writer.acknowledged
    failures = churn.writer.failures
    assert len(acknowledged) > 20, f"only {len(acknowledged)} writes succeeded ({failures} failed)"
    out = etcdctl(["get", PREFIX, "--prefix", "-w", "json"], churn.endpoints()).check().stdout
    stored = {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode()
        for kv in json.loads(out).get("kvs", [])
    }
    lost = {k: v for k, v in acknowledged.items() if stored.get(k) != v}
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {sorted(lost)[:5]}"

"""The nemesis: a bounded random plan of faults (pure) and the shell that injects and heals them.

Faults: SIGKILL of a follower, the leader, a majority or every member (restarted on heal), SIGSTOP
of a follower, the leader or a majority (SIGCONT on heal), a partition isolating the leader or
splitting the members into a minority and a majority, a leader transfer (etcdctl move-leader), a
compaction and a defragmentation. Each fault is held for a while, healed, and followed by a quiet
spell. Every fault is logged as it is injected and healed, with its targets and any error.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from harness import Cluster, Member, etcdctl
from petcd.proto import rpc_pb2

from .client import Connections
from .network import PartitionableNetwork

FAULT_KINDS = (
    "kill-follower",
    "kill-leader",
    "kill-majority",
    "kill-all",
    "pause-follower",
    "pause-leader",
    "pause-majority",
    "partition-leader",
    "partition-minority",
    "move-leader",
    "compact",
    "defrag",
)
# The first faults of every plan, so that even the shortest pass kills, pauses and partitions.
OPENING = ("kill-leader", "pause-follower", "partition-leader")
COMPACT_BEHIND = 50  # compact this many revisions behind the current one


@dataclass(frozen=True)
class PlannedFault:
    kind: str
    hold: float  # seconds the fault lasts before it is healed
    quiet: float  # seconds without a fault afterwards


def plan(
    rng: random.Random, duration: float, max_faults: int, kinds: Sequence[str] = FAULT_KINDS
) -> list[PlannedFault]:
    """Faults of `kinds` whose hold and quiet times add up to about `duration`, at most
    `max_faults` of them, opening with those of OPENING that are among `kinds`."""
    unknown = set(kinds) - set(FAULT_KINDS)
    if unknown or not kinds:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
    faults: list[PlannedFault] = []
    total = 0.0
    opening = [k for k in OPENING if k in kinds]
    rng.shuffle(opening)
    while len(faults) < max_faults and total < duration:
        kind = opening.pop(0) if opening else rng.choice(list(kinds))
        fault = PlannedFault(
            kind, hold=round(rng.uniform(1.0, 5.0), 2), quiet=round(rng.uniform(2.0, 5.0), 2)
        )
        faults.append(fault)
        total += fault.hold + fault.quiet
    return faults


@dataclass
class FaultRecord:
    """One injected fault: what, on whom, when (monotonic seconds), and what went wrong doing it."""

    kind: str
    targets: list[str]
    started: float
    healed: float = 0.0
    detail: str = ""
    error: str = ""


class Nemesis:
    """Injects planned faults into a cluster whose members live in `network`'s namespaces."""

    def __init__(
        self,
        cluster: Cluster,
        network: PartitionableNetwork,
        connections: Connections,
        rng: random.Random,
        log: Callable[[str], None],
    ):
        self.cluster = cluster
        self.network = network
        self.connections = connections
        self.rng = rng
        self.log = log
        self.records: list[FaultRecord] = []
        self.paused: set[int] = set()

    # --- observing the cluster -------------------------------------------------------------

    def statuses(self) -> dict[int, rpc_pb2.StatusResponse]:
        """The Status of every running, unpaused member that answers, by member index."""
        answers = {}
        for index, stubs in enumerate(self.connections.members):
            if index in self.paused or not self.cluster.members[index].running():
                continue
            try:
                answers[index] = stubs.maintenance.Status(rpc_pb2.StatusRequest(), timeout=1.0)
            except grpc.RpcError:
                continue
        return answers

    def leader(self) -> int | None:
        """Index of the member the answering members name as leader (None when there is none)."""
        statuses = self.statuses()
        ids = {status.header.member_id: index for index, status in statuses.items()}
        named = {status.leader for status in statuses.values() if status.leader}
        leaders = [ids[n] for n in named if n in ids]
        return leaders[0] if len(leaders) == 1 else None

    def followers(self) -> list[int]:
        leader = self.leader()
        return [i for i in range(len(self.cluster.members)) if i != leader]

    def majority(self) -> list[int]:
        size = len(self.cluster.members)
        return sorted(self.rng.sample(range(size), size // 2 + 1))

    def name(self, index: int) -> str:
        return self.cluster.members[index].name

    # --- faults --------------------------------------------------------------------------

    def targets(self, kind: str) -> list[int]:
        size = len(self.cluster.members)
        if kind.endswith("-follower") or kind == "move-leader":
            return [self.rng.choice(self.followers())]
        if kind.endswith("-leader"):
            leader = self.leader()
            return [self.rng.randrange(size) if leader is None else leader]
        if kind.endswith("-majority"):
            return self.majority()
        if kind == "partition-minority":
            return sorted(self.rng.sample(range(size), (size - 1) // 2))
        if kind == "kill-all":
            return list(range(size))
        return [self.rng.randrange(size)]  # compact, defrag: the member asked

    def inject(self, kind: str, targets: Sequence[int], hold: float) -> tuple[str, Callable[[], None]]:
        """Start the fault; returns a detail for the log and the action that heals it."""
        members = [self.cluster.members[i] for i in targets]
        if kind.startswith("kill-"):
            for member in members:
                member.kill()
            return "SIGKILL", lambda: _start_all(members)
        if kind.startswith("pause-"):
            for index, member in zip(targets, members, strict=True):
                _signal(member, signal.SIGSTOP)
                self.paused.add(index)
            return "SIGSTOP", lambda: self._resume(targets)
        if kind.startswith("partition-"):
            rest = [i for i in range(len(self.cluster.members)) if i not in targets]
            self.network.partition([rest, list(targets)])
            groups = f"{[self.name(i) for i in targets]} | {[self.name(i) for i in rest]}"
            return f"peer links split {groups}", self.network.heal
        if kind == "move-leader":
            statuses = self.statuses()
            leader = self.leader()
            if leader is None or targets[0] not in statuses:
                raise RuntimeError("no leader, or the target does not answer: nothing to transfer")
            target = f"{statuses[targets[0]].header.member_id:x}"
            url = self.cluster.members[leader].client_url
            etcdctl(["move-leader", target], [url], timeout=max(hold, 5.0) + 5).check()
            return f"etcdctl move-leader {target}", _nothing
        if kind == "compact":
            stubs = self.connections.members[targets[0]]
            current = stubs.maintenance.Status(rpc_pb2.StatusRequest(), timeout=5).header.revision
            revision = max(1, current - COMPACT_BEHIND)
            stubs.kv.Compact(rpc_pb2.CompactionRequest(revision=revision), timeout=10)
            return f"compacted at {revision}", _nothing
        if kind == "defrag":
            etcdctl(["defrag", "--command-timeout=30s"], [members[0].client_url], timeout=40).check()
            return "etcdctl defrag", _nothing
        raise ValueError(f"unknown fault {kind}")

    def _resume(self, targets: Sequence[int]) -> None:
        for index in targets:
            _signal(self.cluster.members[index], signal.SIGCONT)
            self.paused.discard(index)

    def run(
        self, faults: Sequence[PlannedFault], deadline: float, stop: threading.Event
    ) -> list[FaultRecord]:
        """Inject `faults` one after another until done, `deadline` (monotonic) or `stop`."""
        for fault in faults:
            if stop.is_set() or time.monotonic() >= deadline:
                break
            targets = self.targets(fault.kind)
            record = FaultRecord(fault.kind, [self.name(i) for i in targets], time.monotonic())
            self.records.append(record)
            heal: Callable[[], None] = _nothing
            try:
                record.detail, heal = self.inject(fault.kind, targets, fault.hold)
            except Exception as error:  # a fault that could not be injected is reported, not fatal
                record.error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            outcome = f"failed: {record.error}" if record.error else record.detail
            self.log(f"fault {len(self.records)}: {record.kind} on {record.targets}: {outcome}")
            stop.wait(fault.hold)
            try:
                heal()
            except (OSError, RuntimeError) as error:
                record.error += f"; healing: {error}"
            record.healed = time.monotonic()
            self.log(f"fault {len(self.records)}: healed after {record.healed - record.started:.1f} s")
            stop.wait(fault.quiet)
        return self.records

    def heal_everything(self, timeout: float = 60.0) -> None:
        """Resume, reconnect and restart every member, then wait until all are healthy."""
        self._resume(sorted(self.paused))
        self.network.heal()
        _start_all([m for m in self.cluster.members if not m.running()])
        self.cluster.wait_healthy(timeout)


def _signal(member: Member, signum: int) -> None:
    if member.process is not None:
        member.process.signal_group(signum)


def _start_all(members: Sequence[Member]) -> None:
    """Restart members from a helper thread: the harness runs Python code between fork and exec
    (PR_SET_PDEATHSIG) only for children of the main thread, which aborts the child while gRPC's
    threads are busy; the sandbox and the namespaces' removal kill these members instead."""

    def start() -> None:
        for member in members:
            if not member.running():
                member.start()

    starter = threading.Thread(target=start, name="nemesis-restart")
    starter.start()
    starter.join(timeout=60)


def _nothing() -> None:
    return None

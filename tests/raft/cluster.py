"""A test shell around `RawNode`: members with a simulated disk and state machine, and an in-memory network.

`Member` does what petcd's server shell does with each `Ready`: persist (the `Disk` survives crashes, the
`MemoryStorage` and the `RawNode` do not), send, apply, advance. The state machine is a key-value map whose
entries are `key=value` strings; snapshots serialize it.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from petcd.raft import Config, MemoryStorage, RawNode
from petcd.raft.raft import Raft
from petcd.raft.storage import SnapshotOutOfDateError
from petcd.raft.types import (
    ConfChange,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Role,
    Snapshot,
    decode_conf_change,
)


@dataclass
class Disk:
    """What survives a crash: the hard state, the log after the snapshot, and the snapshot."""

    hard_state: HardState = field(default_factory=HardState)
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot = field(default_factory=Snapshot)

    def is_empty(self) -> bool:
        return not self.entries and self.snapshot.is_empty and self.hard_state == HardState()

    def append(self, entries: tuple[Entry, ...]) -> None:
        if not entries:
            return
        first = entries[0].index
        keep = [e for e in self.entries if e.index < first]
        self.entries = keep + list(entries)

    def install(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.entries = [e for e in self.entries if e.index > snapshot.metadata.index]
        # A snapshot replaces a log that does not contain its last entry.
        if self.entries and self.entries[0].index != snapshot.metadata.index + 1:
            self.entries = []


@dataclass
class Applied:
    """One applied entry, as the invariant checker sees it."""

    member: int
    entry: Entry


class Member:
    """One machine: a RawNode, its disk, its state machine."""

    def __init__(self, node_id: int, disk: Disk, rng: random.Random, raft_class: type[Raft] = Raft,
                 election_tick: int = 10, max_size_per_msg: int | None = 1024 * 1024,
                 max_inflight: int = 256, founders: tuple[int, ...] = (), pre_vote: bool = True,
                 check_quorum: bool = True) -> None:
        self.id = node_id
        self.pre_vote = pre_vote
        self.check_quorum = check_quorum
        self.founders = founders
        self.disk = disk
        self.rng = rng
        self.raft_class = raft_class
        self.election_tick = election_tick
        self.max_size_per_msg = max_size_per_msg
        self.max_inflight = max_inflight
        self.read_states: list[ReadState] = []
        self.start()

    def start(self) -> None:
        """Boot from the disk alone, as after a crash."""
        storage = MemoryStorage()
        snapshot = self.disk.snapshot
        if snapshot.is_empty:
            storage = MemoryStorage(snapshot.metadata.conf_state)
        else:
            storage.apply_snapshot(snapshot)
        storage.append(self.disk.entries)
        storage.set_hard_state(self.disk.hard_state)
        self.storage = storage
        self.unadvanced: Ready | None = None
        self.kv: dict[str, str] = json.loads(snapshot.data) if snapshot.data else {}
        self.applied_index = snapshot.metadata.index
        self.conf_state = snapshot.metadata.conf_state
        node_class = type("TestRawNode", (RawNode,), {"raft_class": self.raft_class})
        self.node: RawNode = node_class(Config(
            id=self.id, storage=storage, election_tick=self.election_tick, heartbeat_tick=1,
            applied=self.applied_index, max_size_per_msg=self.max_size_per_msg,
            max_inflight_msgs=self.max_inflight, rng=self.rng, pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
        ))
        if self.founders and self.disk.is_empty():
            self.node.bootstrap(self.founders)

    @property
    def raft(self) -> Raft:
        return self.node.raft

    @property
    def is_leader(self) -> bool:
        return self.node.raft.role == Role.LEADER

    def handle_ready(self, on_apply: Callable[[Member, Entry], None] | None = None,
                     advance: bool = True) -> Ready | None:
        """Persist, apply and advance one Ready; the caller sends its messages. None if nothing was ready.
        With `advance=False` the Ready is acknowledged only at the next call, so the node may be stepped
        in between, as an asynchronous shell does while it waits for its disk."""
        if self.unadvanced is not None:
            self.node.advance(self.unadvanced)
            self.unadvanced = None
        if not self.node.has_ready():
            return None
        ready = self.node.ready()
        if ready.snapshot is not None:
            self.disk.install(ready.snapshot)
            with contextlib.suppress(SnapshotOutOfDateError):
                self.storage.apply_snapshot(ready.snapshot)
        self.disk.append(ready.entries)
        self.storage.append(ready.entries)
        if ready.hard_state is not None:
            self.disk.hard_state = ready.hard_state
            self.storage.set_hard_state(ready.hard_state)
        if ready.snapshot is not None:
            meta = ready.snapshot.metadata
            self.kv = json.loads(ready.snapshot.data) if ready.snapshot.data else {}
            self.applied_index = meta.index
            self.conf_state = meta.conf_state
        for entry in ready.committed_entries:
            self._apply(entry)
            if on_apply is not None:
                on_apply(self, entry)
        self.read_states.extend(ready.read_states)
        if advance:
            self.node.advance(ready)
        else:
            self.unadvanced = ready
        return ready

    def _apply(self, entry: Entry) -> None:
        if entry.type == EntryType.CONF_CHANGE:
            self.conf_state = self.node.apply_conf_change(decode_conf_change(entry.data))
        elif entry.data:
            key, _, value = entry.data.decode().partition("=")
            self.kv[key] = value
        self.applied_index = entry.index

    def take_snapshot(self) -> bool:
        """Snapshot the state machine at the applied index and compact the log before it."""
        index = self.applied_index
        if index <= self.storage.snapshot().metadata.index or index > self.storage.last_index():
            return False
        data = json.dumps(self.kv, sort_keys=True).encode()
        snapshot = self.storage.create_snapshot(index, self.conf_state, data)
        self.storage.compact(index)
        self.disk.install(snapshot)
        return True

    def propose_conf_change(self, change: ConfChange) -> None:
        self.node.propose_conf_change(change)


@dataclass
class Network:
    """Messages in flight, delivered on demand. `cut` holds the (from, to) pairs that lose everything."""

    queue: list[Message] = field(default_factory=list)
    cut: set[tuple[int, int]] = field(default_factory=set)

    def send(self, messages: tuple[Message, ...]) -> None:
        for m in messages:
            if (m.frm, m.to) not in self.cut:
                self.queue.append(m)

    def isolate(self, node: int, others: list[int]) -> None:
        for other in others:
            if other != node:
                self.cut.add((node, other))
                self.cut.add((other, node))

    def heal(self) -> None:
        self.cut.clear()


class Cluster:
    """A cluster for scenario tests: everything is delivered in order unless a test says otherwise."""

    def __init__(self, voters: tuple[int, ...], seed: int = 0, raft_class: type[Raft] = Raft,
                 **member_options: Any) -> None:
        rng = random.Random(seed)
        self.member_options = member_options
        self.raft_class = raft_class
        self.members: dict[int, Member] = {}
        for node in voters:
            self.members[node] = Member(node, Disk(), random.Random(rng.random()), raft_class,
                                        founders=voters, **member_options)
        self.network = Network()
        # The network's behaviour in scenario tests: the message to deliver instead, or None if it is lost.
        self.network_filter: Callable[[Message], Message | None] | None = None
        self.applied: list[Applied] = []
        self.down: set[int] = set()
        self.stabilize()  # persist and apply the bootstrap entries

    def add_member(self, node: int) -> Member:
        """A new, empty machine that will learn the configuration from the leader."""
        member = Member(node, Disk(), random.Random(node), self.raft_class, **self.member_options)
        self.members[node] = member
        return member

    def process_ready(self) -> bool:
        moved = False
        for node, member in self.members.items():
            if node in self.down:
                continue
            ready = member.handle_ready(self._record)
            if ready is not None:
                moved = True
                self.network.send(ready.messages)
        return moved

    def _record(self, member: Member, entry: Entry) -> None:
        self.applied.append(Applied(member.id, entry))

    def deliver(self, message: Message) -> None:
        if message.to in self.down or message.to not in self.members:
            return
        if (message.frm, message.to) in self.network.cut:
            return
        if self.network_filter is not None:
            filtered = self.network_filter(message)
            if filtered is None:
                return
            message = filtered
        self.members[message.to].node.step(message)
        if message.type == MessageType.MsgSnap and message.frm not in self.down:
            self.members[message.frm].node.report_snapshot(message.to, True)  # the transport reports it

    def stabilize(self, limit: int = 10_000) -> None:
        """Process readies and deliver messages until nothing moves."""
        for _ in range(limit):
            moved = self.process_ready()
            if self.network.queue:
                queue, self.network.queue = self.network.queue, []
                for message in queue:
                    self.deliver(message)
                moved = True
            if not moved:
                return
        raise AssertionError("cluster did not stabilize")

    def tick(self, node: int, times: int = 1) -> None:
        for _ in range(times):
            self.members[node].node.tick()

    def tick_all(self, times: int = 1) -> None:
        for _ in range(times):
            for node, member in self.members.items():
                if node not in self.down:
                    member.node.tick()
            self.stabilize()

    def leader(self) -> int | None:
        leaders = [n for n, m in self.members.items() if n not in self.down and m.is_leader]
        return max(leaders, key=lambda n: self.members[n].raft.term) if leaders else None

    def crash(self, node: int) -> None:
        self.down.add(node)

    def restart(self, node: int) -> None:
        self.down.discard(node)
        self.members[node].start()

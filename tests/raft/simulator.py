"""A deterministic simulator for the Raft core: one seed drives the network, the clocks, crashes and the
workload, and safety invariants are checked after every step.

Each step draws the same number of random values whatever it does, so a step can be skipped without
changing the choices of the steps after it; that is how a failing schedule is shrunk (`shrink`).

Invariants (`Checker`): one leader per term; log matching; leader completeness; state machine safety (no
two members apply different entries at one index); the persisted commit index and term never decrease
and a vote never changes within a term; a read index is never older than a write acknowledged before the
read started. Liveness (`Simulation.check_liveness`): once the faults heal, a leader is elected and a
proposal commits within a bounded number of ticks.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from petcd.raft.raft import ProposalDropped, Raft
from petcd.raft.types import (
    NONE,
    ConfChange,
    ConfChangeType,
    Entry,
    EntryType,
    Message,
    MessageType,
    Ready,
    Role,
    decode_conf_change,
)

from tests.raft.cluster import Disk, Member

LIVENESS_TICKS = 400  # ticks of every member after healing: about 20 election timeouts


class Violation(AssertionError):
    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


@dataclass(frozen=True)
class SimConfig:
    nodes: int = 3
    steps: int = 1000
    drop: float = 0.05  # probability that a delivered message is lost instead
    duplicate: float = 0.03  # probability that a delivered message stays in flight for another delivery
    crash: float = 0.006
    partition: float = 0.006
    membership: float = 0.006
    transfer: float = 0.006
    snapshot: float = 0.01
    propose: float = 0.07
    read: float = 0.04
    tick: float = 0.08  # every live member ticks once
    reboot: float = 0.01  # crash and restart at once
    isolate_leader: float = 0.004
    flush_at_once: float = 0.8  # else a member's Ready waits for a later step
    defer_advance: float = 0.15  # a handled Ready is acknowledged (advance) only at a later step
    max_in_flight: int = 300
    election_tick: int = 10
    max_size_per_msg: int = 120  # small, so appends are split into several messages
    max_inflight: int = 4  # small, so the pipeline fills up
    raft_class: type[Raft] = Raft
    check_liveness: bool = True


@dataclass
class Checker:
    leader_of_term: dict[int, int] = field(default_factory=dict)
    entry_at: dict[tuple[int, int], tuple[int, EntryType, bytes]] = field(default_factory=dict)
    applied_at: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    commit_index: int = 0
    commit_term: int = 0

    def on_leader(self, member: Member) -> None:
        raft = member.raft
        term = raft.term
        previous = self.leader_of_term.setdefault(term, member.id)
        if previous != member.id:
            raise Violation("election safety", f"term {term} has two leaders: {previous} and {member.id}")
        # Leader completeness: every entry committed in an earlier term is in the new leader's log.
        if self.commit_term < term and self.commit_index > raft.raft_log.first_index() - 1 \
                and not raft.raft_log.match_term(self.commit_index, self.commit_term):
            raise Violation("leader completeness",
                            f"leader {member.id} of term {term} lacks committed entry "
                            f"{self.commit_index} (term {self.commit_term})")

    def on_leader_commit(self, leader: Member, voters: frozenset[int], commit: int,
                         members: dict[int, Member], led_throughout: bool) -> None:
        """An entry is committed only once a majority of the voters have persisted it, and a leader moves
        its commit index only to an entry of its own term (Raft's commit rule, figure 2 and §5.4.2;
        `led_throughout`: the commit moved while this member led in its current term)."""
        term = leader.storage.term(commit)
        if led_throughout and term != leader.raft.term:
            raise Violation("leader commit rule", f"leader {leader.id} of term {leader.raft.term} moved its "
                            f"commit index to {commit}, an entry of term {term}")
        holders = 0
        for voter in voters:
            storage = members[voter].storage if voter in members else None
            if storage is None:
                continue
            if commit < storage.first_index() - 1 or (
                    commit <= storage.last_index() and storage.term(commit) == term):
                holders += 1
        if holders <= len(voters) // 2:
            raise Violation("commit quorum", f"leader {leader.id} committed {commit} (term {term}) held by "
                            f"only {holders} of the voters {sorted(voters)}")

    def on_persist(self, member: Member, ready: Ready, previous_term: int) -> None:
        """Log matching: an (index, term) pair names one entry, whose predecessor has one term."""
        entry_at = self.entry_at
        prev_term = previous_term
        for entry in ready.entries:
            key = (entry.index, entry.term)
            fact = (prev_term, entry.type, entry.data)
            known = entry_at.setdefault(key, fact)
            if known != fact:
                raise Violation("log matching",
                                f"member {member.id} has entry {key} = {fact}, elsewhere {known}")
            prev_term = entry.term

    def on_hard_state(self, member: Member, old_term: int, old_vote: int, old_commit: int,
                      term: int, vote: int, commit: int) -> None:
        if term < old_term:
            raise Violation("term monotonic", f"member {member.id} term {old_term} -> {term}")
        if commit < old_commit:
            raise Violation("commit monotonic", f"member {member.id} commit {old_commit} -> {commit}")
        if term == old_term and old_vote != NONE and vote != old_vote:
            raise Violation("one vote per term", f"member {member.id} voted {old_vote} then {vote} in {term}")
        if commit > self.commit_index:
            self.commit_index = commit
            self.commit_term = member.storage.term(commit)

    def on_apply(self, member: Member, entry: Entry) -> None:
        fact = (entry.term, entry.data)
        known = self.applied_at.setdefault(entry.index, fact)
        if known != fact:
            raise Violation("state machine safety",
                            f"member {member.id} applied {fact} at {entry.index}, another applied {known}")


@dataclass
class Simulation:
    seed: int
    config: SimConfig
    skip: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        # One seed, one etcd configuration: PreVote and CheckQuorum on (etcd's server default) or off.
        self.pre_vote = self.rng.random() < 0.75
        self.check_quorum = self.rng.random() < 0.75
        self.actions = self._action_table()
        config = self.config
        voters = tuple(range(1, config.nodes + 1))
        self.members: dict[int, Member] = {}
        for node in voters:
            self._new_member(node, Disk(), founders=voters)
        self.next_id = config.nodes + 1
        self.down: set[int] = set()
        self.retired: set[int] = set()
        self.removed_by: dict[int, set[int]] = {node: set() for node in voters}  # who each member removed
        self.in_flight: list[Message] = []
        self.cut: set[tuple[int, int]] = set()
        self.checker = Checker()
        self.trace: list[str] = []
        self.proposals = 0
        self.proposer_of: dict[bytes, int] = {}
        self.acked_index = 0
        self.read_floor: dict[bytes, int] = {}
        self.reads_checked = 0
        self.step_number = 0
        self.dirty: set[int] = set()  # members with a Ready not yet handled
        self.flush_now = True
        self.defer_advance = False

    def note(self, text: str) -> None:
        self.trace.append(f"{self.step_number:>5} {text}")

    def _new_member(self, node: int, disk: Disk, founders: tuple[int, ...] = ()) -> Member:
        config = self.config
        member = Member(node, disk, random.Random(self.seed * 1000 + node), config.raft_class,
                        election_tick=config.election_tick, max_size_per_msg=config.max_size_per_msg,
                        max_inflight=config.max_inflight, founders=founders, pre_vote=self.pre_vote,
                        check_quorum=self.check_quorum)
        self.members[node] = member
        return member

    # --- the Ready loop of one member, with the invariant checks

    def touch(self, node: int) -> None:
        """After an input to `node`: run its Ready loop now, or (when this step says so) later, so that a
        crash in between loses what was not persisted."""
        if self.flush_now:
            self.flush(node)
        else:
            self.dirty.add(node)

    def flush(self, node: int) -> None:
        self.dirty.discard(node)
        member = self.members[node]
        checker = self.checker
        for _ in range(100):
            if not member.node.has_ready():
                return
            raft = member.raft
            entries_before = raft.raft_log.unstable.next_entries()
            previous_term = 0
            if entries_before:
                previous_term = raft.raft_log.zero_term_on_compacted(entries_before[0].index - 1)
            old = member.disk.hard_state
            voters = raft.tracker.voters  # the configuration the leader counted in, before applying
            ready = member.handle_ready(self._on_apply, advance=not self.defer_advance)
            if ready is None:
                return
            if ready.entries:
                checker.on_persist(member, ready, previous_term)
            hard = ready.hard_state
            if hard is not None:
                checker.on_hard_state(member, old.term, old.vote, old.commit,
                                      hard.term, hard.vote, hard.commit)
                if hard.commit > old.commit and raft.role == Role.LEADER:
                    checker.on_leader_commit(member, voters, hard.commit, self.members,
                                             led_throughout=hard.term == old.term)
            if ready.soft_state is not None and ready.soft_state.role == Role.LEADER:
                checker.on_leader(member)
            for read in ready.read_states:
                floor = self.read_floor.get(read.request_ctx)
                if floor is not None:
                    self.reads_checked += 1
                    if read.index < floor:
                        raise Violation("linearizable read",
                                        f"read {read.request_ctx!r} on {node} got index {read.index}, but a "
                                        f"write at {floor} was acknowledged before it started")
            member.read_states.clear()
            if ready.messages:
                self.in_flight.extend(ready.messages)
            if node in self.retired:
                self.down.add(node)
                return
            if self.defer_advance:
                self.dirty.add(node)  # acknowledged by a later flush; the node may be stepped meanwhile
                return

    def _on_apply(self, member: Member, entry: Entry) -> None:
        self.checker.on_apply(member, entry)
        if entry.type == EntryType.CONF_CHANGE:
            change = decode_conf_change(entry.data)
            if change.type == ConfChangeType.REMOVE_NODE:
                self.removed_by[member.id].add(change.node_id)
                if change.node_id == member.id:
                    self.retired.add(member.id)  # the shell shuts a removed member down
        elif self.proposer_of.get(entry.data) == member.id:
            self.acked_index = max(self.acked_index, entry.index)

    # --- actions

    def alive(self) -> list[int]:
        return [n for n in self.members if n not in self.down]

    def leader(self) -> Member | None:
        best: Member | None = None
        for node in self.alive():
            member = self.members[node]
            if member.raft.role == Role.LEADER and (best is None or member.raft.term > best.raft.term):
                best = member
        return best

    def deliver(self, position: float, fate: float) -> None:
        queue = self.in_flight
        if not queue:
            return
        i = int(position * len(queue))
        message = queue[i]
        if fate >= self.config.duplicate:
            queue[i] = queue[-1]
            queue.pop()
        lost = fate > 1 - self.config.drop
        self._transmit(message, lost)

    def _transmit(self, message: Message, lost: bool) -> None:
        """The transport: deliver `message` unless it is lost, reporting a snapshot's fate to its sender
        and refusing a removed member's messages, as etcd's transport does."""
        to, frm = message.to, message.frm
        lost = lost or (frm, to) in self.cut or to in self.down or to not in self.members
        if message.type == MessageType.MsgSnap and frm not in self.down:
            self.members[frm].node.report_snapshot(to, not lost)
            self.touch(frm)
        if lost:
            if message.type == MessageType.MsgApp and frm not in self.down and (frm, to) in self.cut:
                self.members[frm].node.report_unreachable(to)  # the transport could not connect
                self.touch(frm)
            return
        if frm in self.removed_by[to]:
            # A peer refuses a removed member's messages, and the removed member shuts down.
            self.retired.add(frm)
            self.down.add(frm)
            return
        self.members[to].node.step(message)
        self.touch(to)

    def tick(self, node: int) -> None:
        self.members[node].node.tick()
        self.touch(node)

    def propose(self, node: int, key: float) -> None:
        self.proposals += 1
        data = f"k{int(key * 4)}={node}.{self.proposals}".encode()
        self.proposer_of[data] = node
        with contextlib.suppress(ProposalDropped):
            self.members[node].node.propose(data)
        self.touch(node)

    def read(self, node: int) -> None:
        self.proposals += 1
        ctx = f"r{self.proposals}".encode()
        self.read_floor[ctx] = self.acked_index
        self.members[node].node.read_index(ctx)
        self.touch(node)

    def crash(self, node: int) -> None:
        self.down.add(node)
        self.dirty.discard(node)  # whatever its Ready loop had not persisted is lost

    def restart(self, node: int) -> None:
        self.down.discard(node)
        self.members[node].start()
        self.touch(node)

    def change_membership(self, a: float, b: float) -> None:
        leader = self.leader()
        if leader is None:
            return
        conf = leader.raft.tracker.conf_state()
        voters, learners = list(conf.voters), list(conf.learners)
        if learners and a < 0.4:
            change = ConfChange(ConfChangeType.ADD_NODE, learners[int(b * len(learners))])
        elif len(voters) > max(2, self.config.nodes - 1) and a < 0.7:
            change = ConfChange(ConfChangeType.REMOVE_NODE, voters[int(b * len(voters))])
        elif len(self.members) < self.config.nodes + 3:
            node = self.next_id
            self.next_id += 1
            self._new_member(node, Disk())
            self.removed_by[node] = set()
            change = ConfChange(ConfChangeType.ADD_LEARNER_NODE, node)
        else:
            return
        self.note(f"  -> {change.type.name} {change.node_id} via leader {leader.id}")
        with contextlib.suppress(ProposalDropped):
            leader.propose_conf_change(change)
        self.touch(leader.id)

    def transfer(self, node: int, a: float) -> None:
        """Ask `node` (the leader, or a follower that forwards the request) to hand leadership over."""
        if not node:
            return
        voters = self.members[node].raft.tracker.conf_state().voters
        if voters:
            self.members[node].node.transfer_leader(voters[int(a * len(voters))])
            self.touch(node)

    def partition(self, a: float) -> None:
        nodes = self.alive()
        if len(nodes) < 2:
            return
        shuffled = random.Random(a).sample(nodes, len(nodes))
        cut_at = 1 + int(a * 997) % (len(nodes) - 1)
        left, right = shuffled[:cut_at], shuffled[cut_at:]
        for x in left:
            for y in right:
                self.cut.add((x, y))
                self.cut.add((y, x))

    def step(self) -> None:
        """One step: every step draws exactly five random numbers (see the module docstring)."""
        rng = self.rng
        kind, a, b, c, d = rng.random(), rng.random(), rng.random(), rng.random(), rng.random()
        self.step_number += 1
        if self.step_number in self.skip:
            return
        self.flush_now = d < self.config.flush_at_once
        self.defer_advance = d < self.config.defer_advance
        if self.dirty and d > 0.9:
            for dirty in sorted(self.dirty):
                if dirty not in self.down:
                    self.flush(dirty)
        alive = self.alive()
        node = alive[int(a * len(alive))] if alive else NONE
        for weight, action in self.actions:
            if kind < weight:
                action(node, b, c)
                break
            kind -= weight
        else:
            self._act_deliver(node, b, c)
        if len(self.in_flight) > self.config.max_in_flight:
            overflow = self.in_flight[: len(self.in_flight) - self.config.max_in_flight]
            del self.in_flight[: len(overflow)]
            for message in overflow:  # the oldest are lost
                self._transmit(message, lost=True)

    def _action_table(self) -> list[tuple[float, Callable[[int, float, float], None]]]:
        """(probability, action) for each kind of step; what is left over delivers a message."""
        config = self.config
        return [
            (config.propose, self._act_propose),
            (config.read, self._act_read),
            (config.crash, self._act_crash),
            (config.crash * 3, self._act_restart),
            (config.partition, self._act_partition),
            (config.partition * 2, self._act_heal),
            (config.membership, self._act_membership),
            (config.transfer, self._act_transfer),
            (config.reboot, self._act_reboot),
            (config.isolate_leader, self._act_isolate_leader),
            (config.snapshot, self._act_snapshot),
            (config.tick, self._act_tick_all),
        ]

    def _act_propose(self, node: int, b: float, c: float) -> None:
        if node:
            self.note(f"propose on {node}")
            self.propose(node, b)

    def _act_read(self, node: int, b: float, c: float) -> None:
        if node:
            self.note(f"read on {node}")
            self.read(node)

    def _act_crash(self, node: int, b: float, c: float) -> None:
        if node and len(self.alive()) > 1:
            self.note(f"crash {node}")
            self.crash(node)

    def _act_restart(self, node: int, b: float, c: float) -> None:
        down = sorted(self.down - self.retired)
        if down:
            restarted = down[int(b * len(down))]
            self.note(f"restart {restarted}")
            self.restart(restarted)

    def _act_partition(self, node: int, b: float, c: float) -> None:
        self.note("partition")
        self.partition(b)

    def _act_heal(self, node: int, b: float, c: float) -> None:
        if self.cut:
            self.note("heal")
            self.cut.clear()

    def _act_membership(self, node: int, b: float, c: float) -> None:
        self.note("membership change")
        self.change_membership(b, c)

    def _act_transfer(self, node: int, b: float, c: float) -> None:
        self.note(f"transfer leadership via {node}")
        self.transfer(node, b)

    def _act_reboot(self, node: int, b: float, c: float) -> None:
        if node:
            self.note(f"reboot {node}")
            self.crash(node)
            self.restart(node)

    def _act_isolate_leader(self, node: int, b: float, c: float) -> None:
        leader = self.leader()
        if leader is not None:
            self.note(f"isolate leader {leader.id}")
            self.cut.update(pair for other in self.members if other != leader.id
                            for pair in ((leader.id, other), (other, leader.id)))

    def _act_snapshot(self, node: int, b: float, c: float) -> None:
        if node and self.members[node].take_snapshot():
            self.note(f"snapshot on {node}")

    def _act_tick_all(self, node: int, b: float, c: float) -> None:
        alive = self.alive()
        for ticked in alive:
            self.members[ticked].node.tick()
        for ticked in alive:
            self.flush(ticked)

    def _act_deliver(self, node: int, b: float, c: float) -> None:
        if self.in_flight:
            message = self.in_flight[int(b * len(self.in_flight))]
            self.note(f"deliver {message.type.name} {message.frm}->{message.to} t{message.term}")
            self.deliver(b, c)
        elif node:
            self.tick(node)

    # --- liveness

    def check_liveness(self) -> None:
        """Heal everything, then require a leader and a committed proposal within LIVENESS_TICKS."""
        self.cut.clear()
        self.flush_now = True
        self.defer_advance = False
        for node in sorted(self.down - self.retired):
            self.restart(node)
        marker = b"liveness=probe"
        for tick in range(LIVENESS_TICKS):
            for node in self.alive():
                self.members[node].node.tick()
                if tick % 20 == 19:
                    # The shell snapshots periodically; a member added after the last snapshot can only
                    # catch up from a compacted leader once a snapshot includes it.
                    self.members[node].take_snapshot()
            self.deliver_all()
            leader = self.leader()
            if leader is None:
                continue
            if leader.kv.get("liveness") == "probe":
                return
            if tick % 5 == 0:
                with contextlib.suppress(ProposalDropped):
                    leader.node.propose(marker)
                self.flush(leader.id)
                self.deliver_all()
        raise Violation("liveness",
                        f"no leader committed a proposal within {LIVENESS_TICKS} ticks of healing")

    def deliver_all(self) -> None:
        for node in self.alive():
            self.flush(node)
        for _ in range(50):
            if not self.in_flight:
                return
            batch, self.in_flight = self.in_flight, []
            for message in batch:
                self._transmit(message, lost=False)

    def run(self) -> None:
        try:
            for _ in range(self.config.steps):
                self.step()
            if self.config.check_liveness:
                self.check_liveness()
        except Violation:
            raise
        except AssertionError as error:
            raise Violation("core assertion", str(error)) from error


@dataclass
class Failure:
    seed: int
    config: SimConfig
    violation: Violation
    steps: int
    skip: frozenset[int]
    trace: list[str]

    def report(self) -> str:
        shown = self.trace[-60:]
        return (f"raft simulator: {self.violation} (seed={self.seed}, nodes={self.config.nodes}, "
                f"failing step {self.steps}, {len(self.skip)} steps skipped by shrinking)\n"
                f"replay: run_schedule({self.seed}, SimConfig(nodes={self.config.nodes}, "
                f"steps={self.steps}, raft_class={self.config.raft_class.__name__}), "
                f"skip=frozenset({_ranges(self.skip)}))\n"
                f"last {len(shown)} actions (step number, action):\n  " + "\n  ".join(shown))


def _ranges(steps: frozenset[int]) -> str:
    """`steps` as an expression of ranges, short enough to paste."""
    parts: list[str] = []
    ordered = sorted(steps)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(f"range({ordered[i]}, {ordered[j] + 1})")
        i = j + 1
    return "itertools.chain(" + ", ".join(parts) + ")" if parts else ""


def run_schedule(seed: int, config: SimConfig, skip: frozenset[int] = frozenset()) -> Failure | None:
    simulation = Simulation(seed, config, skip)
    try:
        simulation.run()
    except Violation as violation:
        return Failure(seed, config, violation, simulation.step_number, skip, simulation.trace)
    return None


def shrink(failure: Failure, budget: int = 300) -> Failure:
    """Cut the schedule at the failing step, then skip chunks of steps while the same invariant still
    fails (a bounded delta-debugging pass)."""
    from dataclasses import replace

    best = failure
    config = replace(failure.config, steps=failure.steps,
                     check_liveness=failure.violation.invariant == "liveness")
    attempts = 0
    chunk = max(1, failure.steps // 4)
    while chunk >= 1 and attempts < budget:
        start = 1
        while start <= best.steps and attempts < budget:
            candidate = best.skip | frozenset(range(start, min(start + chunk, best.steps)))
            attempts += 1
            result = run_schedule(failure.seed, replace(config, steps=best.steps), candidate)
            if result is not None and result.violation.invariant == failure.violation.invariant:
                best = result
            start += chunk
        chunk //= 2
    return best

"""A small datadriven interpreter for the scenario scripts in tests/raft/testdata/.

A script is a list of blocks:

    # comments
    command arg arg key=value
    ----
    expected output (no blank lines; "ok" when a command prints nothing)

Commands (members are numbered; "all" where a list of members is accepted):
  cluster voters=1,2,3 [pre-vote=false] [check-quorum=false] [max-msg-size=N] [variant=NAME]
  campaign N | tick N [times] | tick-all [times]        time and elections
  stabilize                                             handle Readies and deliver until quiet
  propose N data | read-index N ctx | transfer-leader N to
  add-learner N | promote N | remove N  (proposed on the current leader)
  partition 1,2 3,4,5 | isolate N | heal | block FROM TO,.. [type=MsgApp] | unblock
  truncate-appends FROM TO,.. term=T
  crash N | restart N | snapshot N
  status | log N | kv | applied-at I | read-states N | progress N      what to show
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from petcd.raft import ProposalDropped
from petcd.raft.raft import Raft
from petcd.raft.types import ConfChange, ConfChangeType, EntryType, Message, MessageType, decode_conf_change

from tests.raft.broken import BROKEN_VARIANTS
from tests.raft.cluster import Cluster


@dataclass
class Block:
    line: int
    command: str
    expected: str


def parse(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        text = lines[i].strip()
        if not text or text.startswith("#"):
            i += 1
            continue
        if i + 1 >= len(lines) or lines[i + 1].strip() != "----":
            raise ValueError(f"{path.name}:{i + 1}: expected '----' after the command {text!r}")
        output: list[str] = []
        j = i + 2
        while j < len(lines) and lines[j].strip():
            output.append(lines[j].rstrip())
            j += 1
        blocks.append(Block(i + 1, text, "\n".join(output)))
        i = j
    return blocks


def render(path: Path, blocks: list[Block], outputs: list[str]) -> str:
    """The script with `outputs` in place of the expected outputs (for REWRITE=1), comments kept."""
    lines = path.read_text().splitlines()
    result: list[str] = []
    i = 0
    by_line = {block.line: output for block, output in zip(blocks, outputs, strict=True)}
    while i < len(lines):
        if i + 1 in by_line:
            result += [lines[i], "----", *by_line[i + 1].splitlines()]
            i += 2
            while i < len(lines) and lines[i].strip():
                i += 1
            continue
        result.append(lines[i])
        i += 1
    return "\n".join(result) + "\n"


def ids(text: str, cluster: Cluster | None = None) -> list[int]:
    if text == "all" and cluster is not None:
        return sorted(cluster.members)
    return [int(part) for part in text.split(",")]


class Interpreter:
    def __init__(self) -> None:
        self.cluster: Cluster | None = None
        self.blocked: list[Callable[[Message], bool]] = []
        self.truncations: list[tuple[int, set[int], int]] = []

    @property
    def c(self) -> Cluster:
        assert self.cluster is not None, "the script must start with 'cluster'"
        return self.cluster

    def run(self, command: str) -> str:
        words = command.split()
        name, args = words[0], words[1:]
        options = dict(arg.split("=", 1) for arg in args if "=" in arg)
        positional = [arg for arg in args if "=" not in arg]
        if name in ("propose", "read-index"):
            positional, options = args, {}  # the data may contain '='

        handler = getattr(self, "cmd_" + name.replace("-", "_"), None)
        if handler is None:
            raise ValueError(f"unknown command {name!r}")
        try:
            output: str = handler(positional, options)
        except ProposalDropped as error:
            output = f"dropped: {error}"
        except AssertionError as error:
            output = f"raft panic: {error}"
        return output or "ok"

    # --- setting up

    def cmd_cluster(self, args: list[str], opts: dict[str, str]) -> str:
        raft_class: type[Raft] = Raft
        if "variant" in opts:
            by_slug = {name.replace(" ", "-"): variant for name, (variant, _) in BROKEN_VARIANTS.items()}
            raft_class = by_slug[opts["variant"]]
        self.cluster = Cluster(
            tuple(ids(opts["voters"])), raft_class=raft_class,
            pre_vote=opts.get("pre-vote", "true") == "true",
            check_quorum=opts.get("check-quorum", "true") == "true",
            max_size_per_msg=int(opts.get("max-msg-size", 1024 * 1024)),
        )
        self.c.network_filter = self.allowed
        return self.cmd_status([], {})

    def allowed(self, message: Message) -> Message | None:
        if any(rule(message) for rule in self.blocked):
            return None
        for frm, targets, term in self.truncations:
            if message.frm == frm and message.to in targets and message.type == MessageType.MsgApp:
                kept = [e.term != term for e in message.entries]
                if not all(kept):
                    message = replace(message, entries=message.entries[: kept.index(False)])
        return message

    # --- time and elections

    def cmd_campaign(self, args: list[str], opts: dict[str, str]) -> str:
        self.c.members[int(args[0])].node.campaign()
        self.c.stabilize()
        return self.cmd_status([], {})

    def cmd_tick(self, args: list[str], opts: dict[str, str]) -> str:
        times = int(args[1]) if len(args) > 1 else 1
        for _ in range(times):
            for node in ids(args[0], self.c):
                if node not in self.c.down:
                    self.c.members[node].node.tick()
            self.c.stabilize()
        return self.cmd_status([], {})

    def cmd_tick_all(self, args: list[str], opts: dict[str, str]) -> str:
        return self.cmd_tick(["all", *args], opts)

    def cmd_stabilize(self, args: list[str], opts: dict[str, str]) -> str:
        self.c.stabilize()
        return self.cmd_status([], {})

    # --- requests

    def cmd_propose(self, args: list[str], opts: dict[str, str]) -> str:
        self.c.members[int(args[0])].node.propose(args[1].encode())
        self.c.stabilize()
        return self.cmd_status([], {})

    def cmd_read_index(self, args: list[str], opts: dict[str, str]) -> str:
        self.c.members[int(args[0])].node.read_index(args[1].encode())
        self.c.stabilize()
        return self.cmd_read_states(args[:1], opts)

    def cmd_transfer_leader(self, args: list[str], opts: dict[str, str]) -> str:
        self.c.members[int(args[0])].node.transfer_leader(int(args[1]))
        self.c.stabilize()
        return self.cmd_status([], {})

    def _conf_change(self, change_type: ConfChangeType, node: int) -> str:
        leader = self.c.leader()
        assert leader is not None, "no leader to propose the change"
        if node not in self.c.members:
            self.c.add_member(node)
        self.c.members[leader].propose_conf_change(ConfChange(change_type, node))
        self.c.stabilize()
        return self.cmd_status([], {})

    def cmd_add_learner(self, args: list[str], opts: dict[str, str]) -> str:
        return self._conf_change(ConfChangeType.ADD_LEARNER_NODE, int(args[0]))

    def cmd_promote(self, args: list[str], opts: dict[str, str]) -> str:
        return self._conf_change(ConfChangeType.ADD_NODE, int(args[0]))

    def cmd_remove(self, args: list[str], opts: dict[str, str]) -> str:
        return self._conf_change(ConfChangeType.REMOVE_NODE, int(args[0]))

    # --- faults

    def cmd_partition(self, args: list[str], opts: dict[str, str]) -> str:
        groups = [ids(arg) for arg in args]
        for group in groups:
            for other in groups:
                if other is not group:
                    self.c.network.cut.update((a, b) for a in group for b in other)
        return ""

    def cmd_isolate(self, args: list[str], opts: dict[str, str]) -> str:
        self.c.network.isolate(int(args[0]), list(self.c.members))
        return ""

    def cmd_heal(self, args: list[str], opts: dict[str, str]) -> str:
        self.c.network.heal()
        return ""

    def cmd_block(self, args: list[str], opts: dict[str, str]) -> str:
        frm, targets = int(args[0]), set(ids(args[1], self.c))
        kind = MessageType[opts["type"]] if "type" in opts else None

        def rule(m: Message) -> bool:
            return m.frm == frm and m.to in targets and (kind is None or m.type == kind)

        self.blocked.append(rule)
        return ""

    def cmd_truncate_appends(self, args: list[str], opts: dict[str, str]) -> str:
        """Appends from FROM to TO.. lose their entries from the first one of term T on, as if the
        message carrying them had been lost while the earlier ones arrived."""
        self.truncations.append((int(args[0]), set(ids(args[1], self.c)), int(opts["term"])))
        return ""

    def cmd_unblock(self, args: list[str], opts: dict[str, str]) -> str:
        self.blocked.clear()
        self.truncations.clear()
        return ""

    def cmd_crash(self, args: list[str], opts: dict[str, str]) -> str:
        self.c.crash(int(args[0]))
        return ""

    def cmd_restart(self, args: list[str], opts: dict[str, str]) -> str:
        self.c.restart(int(args[0]))
        self.c.stabilize()
        return self.cmd_status([], {})

    def cmd_snapshot(self, args: list[str], opts: dict[str, str]) -> str:
        member = self.c.members[int(args[0])]
        member.take_snapshot()
        meta = member.storage.snapshot().metadata
        return (f"snapshot at index {meta.index} term {meta.term}, "
                f"log now starts at {member.storage.first_index()}")

    # --- showing

    def cmd_status(self, args: list[str], opts: dict[str, str]) -> str:
        lines = []
        for node, member in sorted(self.c.members.items()):
            if node in self.c.down:
                lines.append(f"{node}: down")
                continue
            raft = member.raft
            log = raft.raft_log
            conf = raft.tracker.conf_state()
            role = raft.role.name + (" (learner)" if raft.is_learner else "")
            lines.append(f"{node}: {role} term={raft.term} lead={raft.lead} last={log.last_index()} "
                         f"commit={log.committed} applied={log.applied} voters={list(conf.voters)}"
                         + (f" learners={list(conf.learners)}" if conf.learners else ""))
        return "\n".join(lines)

    def cmd_log(self, args: list[str], opts: dict[str, str]) -> str:
        member = self.c.members[int(args[0])]
        lines = []
        for entry in member.raft.raft_log.all_entries():
            if entry.type == EntryType.CONF_CHANGE:
                change = decode_conf_change(entry.data)
                text = f"{change.type.name} {change.node_id}"
            else:
                text = entry.data.decode() or "(empty)"
            lines.append(f"{entry.index}/{entry.term} {text}")
        snapshot = member.storage.snapshot().metadata.index
        return "\n".join(lines) or f"no entries after the snapshot at {snapshot}"

    def cmd_kv(self, args: list[str], opts: dict[str, str]) -> str:
        return "\n".join(f"{node}: {json.dumps(member.kv, sort_keys=True)}"
                         for node, member in sorted(self.c.members.items()) if node not in self.c.down)

    def cmd_applied_at(self, args: list[str], opts: dict[str, str]) -> str:
        index = int(args[0])
        lines = []
        for record in self.c.applied:
            if record.entry.index == index:
                text = record.entry.data.decode() if record.entry.type == EntryType.NORMAL else "conf change"
                lines.append(f"{record.member}: {index}/{record.entry.term} {text or '(empty)'}")
        return "\n".join(sorted(set(lines))) or f"nobody applied {index}"

    def cmd_read_states(self, args: list[str], opts: dict[str, str]) -> str:
        member = self.c.members[int(args[0])]
        states = [f"read {s.request_ctx.decode()} at index {s.index}" for s in member.read_states]
        member.read_states.clear()
        return "\n".join(states) or "no read state"

    def cmd_progress(self, args: list[str], opts: dict[str, str]) -> str:
        status = self.c.members[int(args[0])].node.status()
        return "\n".join(f"{node}: {p.state.name} match={p.match} next={p.next}"
                         + (" learner" if p.is_learner else "")
                         for node, p in sorted(status.progress.items())) or "not the leader"

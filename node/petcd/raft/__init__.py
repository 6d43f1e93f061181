"""petcd's Raft consensus core, pure (no I/O, clocks or threads), modelled on etcd-io/raft.

Modules: `types` (messages, entries, Ready), `storage` (MemoryStorage), `log` (stable + unstable log),
`progress` / `tracker` (the leader's view of each follower), `quorum` (majorities), `confchange`
(one-at-a-time membership changes), `read_only` (ReadIndex bookkeeping), `raft` (the state machine) and
`node` (`RawNode`, the shell's handle).

Proposals made on a follower are forwarded to the leader in a MsgProp, as etcd does; the proposer learns
the outcome only by seeing its entry applied. `ProposalDropped` is raised when no leader is known (a
candidate, or a follower between leaders), when a leader already has a conf change pending, when a
leadership transfer is in progress, or when the leader was removed from the configuration. A forwarded
proposal the leader cannot accept is dropped silently there (the proposer's shell times out and retries).
Read-index requests on a follower are forwarded the same way and silently dropped with no leader.

Membership changes take effect when the shell applies the committed entry (`apply_conf_change`), one at a
time; a leader that applies its own removal steps down and hands over to an up-to-date voter.
"""

from petcd.raft.node import RawNode, Status
from petcd.raft.raft import Config, ProposalDropped
from petcd.raft.storage import MemoryStorage

__all__ = ["Config", "MemoryStorage", "ProposalDropped", "RawNode", "Status"]

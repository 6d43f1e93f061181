"""Single-step membership changes (etcd's confchange.Changer.Simple, without joint consensus).

One voter at a time changes, so any two successive majorities overlap. A change that would leave no
voter is refused; refusing is deterministic, so every member refuses the same committed entry.
"""

from __future__ import annotations

from petcd.raft.types import ConfChange, ConfChangeType, ConfState


class ConfChangeError(ValueError):
    """The change cannot be applied to the current configuration."""


def apply_change(conf: ConfState, change: ConfChange) -> ConfState:
    voters = set(conf.voters)
    learners = set(conf.learners)
    node = change.node_id
    if node == 0:
        raise ConfChangeError("node ID 0 is reserved for 'no node'")
    if change.type == ConfChangeType.ADD_NODE:
        learners.discard(node)  # promotion of a learner, or a new voter
        voters.add(node)
    elif change.type == ConfChangeType.ADD_LEARNER_NODE:
        voters.discard(node)  # demotion of a voter, or a new learner
        learners.add(node)
    elif change.type == ConfChangeType.REMOVE_NODE:
        voters.discard(node)
        learners.discard(node)
    elif change.type == ConfChangeType.UPDATE_NODE:
        pass  # the shell's business (peer URLs); the Raft configuration does not change
    if not voters:
        raise ConfChangeError("removed all voters")
    return ConfState(voters=tuple(sorted(voters)), learners=tuple(sorted(learners)))

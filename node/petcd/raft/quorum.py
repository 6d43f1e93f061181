"""Majority quorums over a set of voters (etcd's quorum/majority.go, without joint configurations)."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping


class VoteResult(enum.IntEnum):
    PENDING = 1
    LOST = 2
    WON = 3


def committed_index(voters: Collection[int], match: Mapping[int, int]) -> int:
    """The largest index acknowledged by a majority of `voters`; unbounded (no constraint) when empty."""
    if not voters:
        return 2**64 - 1  # an empty configuration constrains nothing, as in etcd
    acked = sorted((match.get(voter, 0) for voter in voters), reverse=True)
    return acked[len(acked) // 2]


def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """WON once a majority granted, LOST once a majority can no longer grant, else PENDING."""
    if not voters:
        return VoteResult.WON
    granted = missing = 0
    for voter in voters:
        vote = votes.get(voter)
        if vote is None:
            missing += 1
        elif vote:
            granted += 1
    quorum = len(voters) // 2 + 1
    if granted >= quorum:
        return VoteResult.WON
    if granted + missing >= quorum:
        return VoteResult.PENDING
    return VoteResult.LOST

"""The checks etcd makes before a membership change is proposed (pure).

etcd's strict reconfiguration check (on by default): adding or removing a voter must leave enough
started — connected — voters for a quorum; learners are capped at one; peer URLs are unique.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from petcd.api import errors
from petcd.server.membership import Membership

MAX_LEARNERS = 1
LEARNER_READY_PERCENT = 0.9  # a learner's match index must reach 90% of the leader's


def check_peer_urls(urls: Sequence[str]) -> None:
    """etcd's types.NewURLs: http/https/unix/unixs; http(s) needs host:port and no path."""
    if not urls:
        raise errors.MEMBER_BAD_URLS
    for url in urls:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise errors.MEMBER_BAD_URLS from None
        if parts.scheme not in ("http", "https", "unix", "unixs"):
            raise errors.MEMBER_BAD_URLS
        if parts.scheme in ("http", "https") and (not parts.hostname or port is None or parts.path):
            raise errors.MEMBER_BAD_URLS


def check_urls_free(membership: Membership, urls: Sequence[str], except_id: int = 0) -> None:
    taken = {u for m in membership.members.values() if m.id != except_id for u in m.peer_urls}
    if taken & set(urls):
        raise errors.PEER_URL_EXIST


def check_add(membership: Membership, new_id: int, is_learner: bool, started: Callable[[int], bool]) -> None:
    if new_id in membership.members or new_id in membership.removed:
        raise errors.MEMBER_EXIST
    if is_learner:
        if len(membership.learners()) >= MAX_LEARNERS:
            raise errors.TOO_MANY_LEARNERS
        return
    voters = membership.voters()
    active = sum(1 for v in voters if started(v))
    if active < (len(voters) + 1) // 2 + 1:
        raise errors.MEMBER_NOT_ENOUGH_STARTED


def check_remove(membership: Membership, member_id: int, started: Callable[[int], bool]) -> None:
    member = membership.members.get(member_id)
    if member is None:
        raise errors.MEMBER_NOT_FOUND
    if member.is_learner:
        return
    remaining = [v for v in membership.voters() if v != member_id]
    active = sum(1 for v in remaining if started(v))
    if active < len(remaining) // 2 + 1:
        raise errors.MEMBER_NOT_ENOUGH_STARTED


def check_promote(membership: Membership, member_id: int, learner_match: int, leader_match: int) -> None:
    member = membership.members.get(member_id)
    if member is None:
        raise errors.MEMBER_NOT_FOUND
    if not member.is_learner:
        raise errors.MEMBER_NOT_LEARNER
    if learner_match < leader_match * LEARNER_READY_PERCENT:
        raise errors.LEARNER_NOT_READY

"""The checks etcd makes before a membership change is proposed (pure).

etcd's strict reconfiguration check (on by default): adding or removing a voter must leave enough
started (published) voters for a quorum, and the voters must have been connected for etcd's health
interval ("etcdserver: unhealthy cluster"); learners are capped at one; peer URLs are unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from petcd.api import errors
from petcd.server.membership import Membership
from petcd.server.peer_activity import HEALTH_INTERVAL_SECONDS, PeerActivity

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


def _started_voters(membership: Membership, excluding: int = 0) -> tuple[int, int]:
    """(voters, started voters) — a member has started once it published its name (etcd's IsStarted)."""
    voters = [m for m in membership.members.values() if not m.is_learner and m.id != excluding]
    return len(voters), sum(1 for m in voters if m.name)


def check_add(membership: Membership, new_id: int, is_learner: bool, me: int, activity: PeerActivity,
              now: float) -> None:
    """etcd's mayAddMember (+ the ID and learner checks of ValidateConfigurationChange)."""
    if new_id in membership.members or new_id in membership.removed:
        raise errors.MEMBER_EXIST
    if is_learner and len(membership.learners()) >= MAX_LEARNERS:
        raise errors.TOO_MANY_LEARNERS
    if not is_learner:
        voters, started = _started_voters(membership)
        members = voters + 1
        # adding a second member to a one-member cluster is always allowed (restoring a cluster)
        if not (started == 1 and members == 2) and started < members // 2 + 1:
            raise errors.MEMBER_NOT_ENOUGH_STARTED
    voter_ids = membership.voters()
    if activity.connected_since(voter_ids, me, now - HEALTH_INTERVAL_SECONDS) != len(voter_ids):
        raise errors.UNHEALTHY


def check_remove(membership: Membership, member_id: int, me: int, activity: PeerActivity, now: float) -> None:
    """etcd's mayRemoveMember: a learner goes freely; a voter only if the started voters left make a
    quorum and, unless it is down already, the connected ones still would."""
    member = membership.members.get(member_id)
    if member is None:
        raise errors.MEMBER_NOT_FOUND
    if member.is_learner:
        return
    voters, started = _started_voters(membership, excluding=member_id)
    if started < voters // 2 + 1:
        raise errors.MEMBER_NOT_ENOUGH_STARTED
    if member_id != me and activity.active_since(member_id) is None:
        return  # a member that is down is not part of the active quorum
    voter_ids = membership.voters()
    active = activity.connected_since(voter_ids, me, now - HEALTH_INTERVAL_SECONDS)
    if active - 1 < 1 + (len(voter_ids) - 1) // 2:
        raise errors.UNHEALTHY


def check_promote(membership: Membership, member_id: int, learner_match: int, leader_match: int) -> None:
    member = membership.members.get(member_id)
    if member is None:
        raise errors.MEMBER_NOT_FOUND
    if not member.is_learner:
        raise errors.MEMBER_NOT_LEARNER
    if learner_match < leader_match * LEARNER_READY_PERCENT:
        raise errors.LEARNER_NOT_READY
    voters, started = _started_voters(membership)
    # the learner counts as a started member of the future quorum (etcd's IsReadyToPromoteMember)
    if started + 1 < (voters + 1) // 2 + 1:
        raise errors.MEMBER_NOT_ENOUGH_STARTED

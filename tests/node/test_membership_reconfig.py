"""etcd's strict reconfiguration checks (petcd.server.reconfig with petcd.server.peer_activity),
in-process: started members (published names), connections older than the health interval, and
the errors etcd answers with."""

from __future__ import annotations

import pytest
from petcd.api import errors
from petcd.server import reconfig
from petcd.server.membership import Member, Membership
from petcd.server.peer_activity import HEALTH_INTERVAL_SECONDS, PeerActivity

pytestmark = pytest.mark.unit

ME = 1
NOW = 100.0


def cluster(*members: Member) -> Membership:
    return Membership(7, {m.id: m for m in members})


def started(member: int, learner: bool = False) -> Member:
    return Member(member, f"m{member}", (f"http://127.0.0.{member}:2380",), is_learner=learner)


def unstarted(member: int) -> Member:
    return Member(member, "", (f"http://127.0.0.{member}:2380",))


def connected(*peers: int, since: float = NOW - HEALTH_INTERVAL_SECONDS - 1) -> PeerActivity:
    activity = PeerActivity()
    for peer in peers:
        activity.observe(peer, True, since)
    return activity


def test_add_needs_every_voter_connected_for_the_health_interval() -> None:
    three = cluster(started(1), started(2), started(3))
    reconfig.check_add(three, 9, False, ME, connected(2, 3), NOW)
    reconfig.check_add(three, 9, True, ME, connected(2, 3), NOW)
    with pytest.raises(errors.EtcdError) as refused:
        reconfig.check_add(three, 9, True, ME, connected(2, 3, since=NOW - 1), NOW)
    assert refused.value == errors.UNHEALTHY
    with pytest.raises(errors.EtcdError) as down:
        reconfig.check_add(three, 9, True, ME, connected(2), NOW)
    assert down.value == errors.UNHEALTHY


def test_add_of_a_voter_needs_a_started_quorum_of_the_new_size() -> None:
    # 2 started of 3 voters: 4 members need 3 started
    with pytest.raises(errors.EtcdError) as refused:
        reconfig.check_add(cluster(started(1), started(2), unstarted(3)), 9, False, ME, connected(2, 3), NOW)
    assert refused.value == errors.MEMBER_NOT_ENOUGH_STARTED
    # a second member for a one-member cluster is always allowed
    reconfig.check_add(cluster(started(1)), 9, False, ME, connected(), NOW)


def test_add_checks_ids_and_learners_first() -> None:
    with_learner = cluster(started(1), started(2, learner=True))
    with pytest.raises(errors.EtcdError) as too_many:
        reconfig.check_add(with_learner, 9, True, ME, connected(2), NOW)
    assert too_many.value == errors.TOO_MANY_LEARNERS
    gone = cluster(started(1))
    gone.remove(5)
    with pytest.raises(errors.EtcdError) as exists:
        reconfig.check_add(gone, 5, False, ME, connected(), NOW)
    assert exists.value == errors.MEMBER_EXIST


def test_remove_of_a_down_member_or_a_learner_is_allowed() -> None:
    three = cluster(started(1), started(2), started(3), started(4, learner=True))
    reconfig.check_remove(three, 3, ME, connected(2), NOW)  # 3 is down: not in the active quorum
    reconfig.check_remove(three, 4, ME, connected(), NOW)


def test_remove_refused_when_the_connected_rest_would_lose_quorum() -> None:
    three = cluster(started(1), started(2), started(3))
    with pytest.raises(errors.EtcdError) as refused:
        reconfig.check_remove(three, 2, ME, connected(2, 3, since=NOW - 1), NOW)
    assert refused.value == errors.UNHEALTHY
    reconfig.check_remove(three, 2, ME, connected(2, 3), NOW)
    reconfig.check_remove(three, ME, ME, connected(2, 3), NOW)  # removing the member taking the request


def test_remove_needs_a_started_quorum_of_the_rest() -> None:
    with pytest.raises(errors.EtcdError) as refused:
        reconfig.check_remove(cluster(started(1), unstarted(2), unstarted(3)), 1, ME, connected(2, 3), NOW)
    assert refused.value == errors.MEMBER_NOT_ENOUGH_STARTED
    with pytest.raises(errors.EtcdError) as unknown:
        reconfig.check_remove(cluster(started(1)), 8, ME, connected(), NOW)
    assert unknown.value == errors.MEMBER_NOT_FOUND


def test_promote_needs_the_learner_in_sync_and_a_started_quorum() -> None:
    members = cluster(started(1), started(2, learner=True))
    with pytest.raises(errors.EtcdError) as behind:
        reconfig.check_promote(members, 2, 89, 100)
    assert behind.value == errors.LEARNER_NOT_READY
    reconfig.check_promote(members, 2, 90, 100)
    with pytest.raises(errors.EtcdError) as voter:
        reconfig.check_promote(members, 1, 100, 100)
    assert voter.value == errors.MEMBER_NOT_LEARNER
    # 1 started of 3 voters, plus the learner counted as started: 4 members need 3 started
    quorumless = cluster(started(1), unstarted(3), unstarted(4), started(2, learner=True))
    with pytest.raises(errors.EtcdError) as refused:
        reconfig.check_promote(quorumless, 2, 100, 100)
    assert refused.value == errors.MEMBER_NOT_ENOUGH_STARTED


def test_activity_forgets_a_dropped_connection() -> None:
    activity = connected(2)
    activity.observe(2, False, NOW)
    activity.observe(2, True, NOW)
    assert activity.active_since(2) == NOW
    activity.forget_others([3])
    assert activity.active_since(2) is None

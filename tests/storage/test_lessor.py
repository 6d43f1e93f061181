"""Leases: grant/revoke through the store, expiry driven by the leader's clock, keep-alive, promotion."""

from __future__ import annotations

from pathlib import Path

import pytest
from petcd.storage.errors import LeaseExistsError, LeaseNotFoundError, LeaseTTLTooLargeError
from petcd.storage.kv import DeleteRangeRequest, PutRequest
from petcd.storage.lessor import MAX_LEASE_TTL, LeaseTimeToLive
from petcd.storage.mvcc import MVCCStore


def grant(store: MVCCStore, lease_id: int, ttl: int, now: float = 100.0) -> int:
    with store.batch() as b:
        return b.lease_grant(lease_id, ttl, now)


def test_grant_raises_ttl_to_minimum_and_rejects_duplicates(store: MVCCStore) -> None:
    assert grant(store, 1, 1) == 2  # the default minimum TTL
    assert grant(store, 2, 60) == 60
    with pytest.raises(LeaseExistsError, match=r"^etcdserver: lease already exists$"):
        grant(store, 1, 5)
    with pytest.raises(LeaseTTLTooLargeError, match=r"^etcdserver: too large lease TTL$"):
        grant(store, 3, MAX_LEASE_TTL + 1)
    assert store.lessor.leases() == [1, 2]


def test_followers_never_expire_leases(store: MVCCStore) -> None:
    grant(store, 1, 5, now=0.0)
    assert store.lessor.expired(now=1e9) == []
    ttl = store.lessor.time_to_live(1, now=1e9)
    assert (ttl.ttl, ttl.granted_ttl) == (5, 5)


def test_primary_expiry_renew_and_time_to_live(store: MVCCStore) -> None:
    lessor = store.lessor
    lessor.promote(now=0.0, extend=1.0)
    grant(store, 1, 10, now=0.0)
    grant(store, 2, 20, now=0.0)
    assert lessor.time_to_live(1, now=3.5) == LeaseTimeToLive(1, 6, 10, [])
    assert lessor.expired(now=9.9) == []
    assert lessor.renew(1, now=9.0) == 10
    assert lessor.expired(now=20.5, limit=1) == [1]  # soonest expiry first: 1 at 19, 2 at 20
    assert lessor.expired(now=20.5) == [2]
    assert lessor.expired(now=21.0) == []  # both reported; their revokes are on their way
    assert lessor.expired(now=23.6) == [1, 2]  # not revoked after the retry interval: again
    with pytest.raises(LeaseNotFoundError):
        lessor.renew(2, now=21.0)  # expired: a keep-alive answers TTL 0
    with pytest.raises(LeaseNotFoundError):
        lessor.renew(99, now=0.0)
    assert lessor.time_to_live(99, now=0.0) == LeaseTimeToLive(99, -1, 0, [])


def test_promotion_gives_every_lease_a_fresh_ttl(store: MVCCStore) -> None:
    grant(store, 1, 10)
    store.lessor.promote(now=1000.0, extend=1.0)
    assert store.lessor.expired(now=1010.5) == []
    assert store.lessor.expired(now=1011.5) == [1]
    store.lessor.demote()
    assert store.lessor.expired(now=1e9) == []


def test_checkpointed_remaining_ttl_is_used_on_promotion(store: MVCCStore) -> None:
    grant(store, 1, 100)
    with store.batch() as b:
        b.lease_checkpoint(1, 7)
    store.lessor.promote(now=0.0, extend=0.0)
    assert store.lessor.time_to_live(1, now=0.0).ttl == 7


def test_keys_attach_detach_and_revoke(store: MVCCStore) -> None:
    grant(store, 1, 10)
    grant(store, 2, 10)
    store.put(PutRequest(b"a", lease=1))
    store.put(PutRequest(b"b", lease=1))
    store.put(PutRequest(b"c", lease=2))
    store.put(PutRequest(b"b", lease=2))  # moves b to lease 2
    store.delete_range(DeleteRangeRequest(b"c"))  # detaches c
    assert store.lessor.time_to_live(1, 0.0, with_keys=True).keys == [b"a"]
    assert store.lessor.time_to_live(2, 0.0, with_keys=True).keys == [b"b"]
    with store.batch() as b:
        rev = b.lease_revoke(2)
    assert rev == store.current_revision and store.get(b"b") is None and store.get(b"a") is not None
    assert store.lessor.leases() == [1]


def test_revoke_of_a_lease_without_keys_does_not_bump_the_revision(store: MVCCStore) -> None:
    grant(store, 5, 10)
    with store.batch() as b:
        assert b.lease_revoke(5) == 1


def test_leases_survive_a_restart(db_path: Path) -> None:
    s = MVCCStore.open(db_path, sync=False)
    grant(s, 1, 30)
    grant(s, 2, 40)
    s.put(PutRequest(b"k", lease=2))
    with s.batch() as b:
        b.lease_revoke(1)
    s.close()
    s = MVCCStore.open(db_path, sync=False)
    try:
        assert s.lessor.leases() == [2]
        assert s.lessor.time_to_live(2, 0.0, with_keys=True) == LeaseTimeToLive(2, 40, 40, [b"k"])
    finally:
        s.close()


def test_a_reload_on_the_leader_keeps_expiries(store: MVCCStore) -> None:
    store.lessor.promote(now=0.0, extend=0.0)
    grant(store, 1, 10, now=0.0)
    with pytest.raises(RuntimeError), store.batch() as b:
        b.lease_grant(2, 10, now=0.0)
        raise RuntimeError("apply failed: the batch is rolled back and the state reloaded")
    assert store.lessor.leases() == [1]
    assert store.lessor.expired(now=11.0) == [1]

"""Leases, as etcd's lessor: a table persisted in the backend plus in-memory expiry and attached keys.

Applied through Raft (deterministic on every member): grant, revoke, checkpoint, attach/detach (the
MVCC store attaches and detaches as keys are put and deleted). Driven by the leader's clock (local,
never replicated): promote/demote, renew (keep-alive), expired, time_to_live. `now` is a monotonic
clock value in seconds passed in by the shell; the lessor never reads a clock. Only the primary (the
leader) has finite expiries; followers keep leases until a revoke is applied.
"""

from __future__ import annotations

import heapq
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from petcd.storage.backend import Backend
from petcd.storage.errors import LeaseExistsError, LeaseNotFoundError, LeaseTTLTooLargeError

MAX_LEASE_TTL = 9_000_000_000
NO_LEASE = 0
EXPIRED_RETRY_SECONDS = 3.0  # etcd's expiredLeaseRetryInterval: report an unrevoked lease again
_ID = struct.Struct(">q")
_RECORD = struct.Struct(">qq")  # granted TTL, checkpointed remaining TTL


@dataclass(slots=True)
class Lease:
    id: int
    ttl: int  # granted TTL in seconds
    remaining_ttl: int = 0  # last checkpointed remaining TTL (0 = none)
    expiry: float = math.inf  # monotonic seconds; inf = never (not primary)
    keys: set[bytes] = field(default_factory=set)
    report_at: float = math.inf  # when `expired` looks at it next (its live entry in the due heap)


@dataclass(slots=True)
class LeaseTimeToLive:
    id: int
    ttl: int  # remaining seconds, truncated; -1 = lease not found (etcd answers so, not an error)
    granted_ttl: int
    keys: list[bytes]


class Lessor:
    def __init__(self, min_ttl: int = 2) -> None:
        self.min_ttl = min_ttl
        self.primary = False
        self._leases: dict[int, Lease] = {}
        self._key_lease: dict[bytes, int] = {}
        self._due: list[tuple[float, int]] = []  # (time to look at a lease, ID); stale entries skipped

    # ---- state -------------------------------------------------------------------------------------

    def load(self, backend: Backend, txn: Any) -> None:
        """Rebuild the table from the backend (keys are attached afterwards by the MVCC store). Leases
        known before keep their expiry, so a reload on the leader does not make them immortal."""
        before = self._leases
        self._leases = {}
        self._key_lease = {}
        for k, v in txn.cursor(db=backend.lease_db):
            lease_id = _ID.unpack(k)[0]
            ttl, remaining = _RECORD.unpack(v)
            lease = self._leases[lease_id] = Lease(lease_id, ttl, remaining)
            old = before.get(lease_id)
            if old is not None:
                lease.expiry, lease.report_at = old.expiry, old.report_at

    def lookup(self, lease_id: int) -> Lease | None:
        return self._leases.get(lease_id)

    def lease_of(self, key: bytes) -> int:
        """The lease the key is attached to, or NO_LEASE."""
        return self._key_lease.get(key, NO_LEASE)

    def leases(self) -> list[int]:
        return sorted(self._leases)

    def __len__(self) -> int:
        return len(self._leases)

    # ---- applied through Raft ----------------------------------------------------------------------

    def grant(self, backend: Backend, txn: Any, lease_id: int, ttl: int, now: float) -> Lease:
        if lease_id == NO_LEASE:
            raise LeaseNotFoundError()
        if ttl > MAX_LEASE_TTL:
            raise LeaseTTLTooLargeError()
        if lease_id in self._leases:
            raise LeaseExistsError()
        lease = Lease(lease_id, max(ttl, self.min_ttl))
        self._leases[lease_id] = lease
        if self.primary:
            self._set_expiry(lease, now + lease.ttl)
        self._persist(backend, txn, lease)
        return lease

    def revoke(self, backend: Backend, txn: Any, lease_id: int) -> list[bytes]:
        """Remove the lease; returns its keys in order — the caller deletes them in the same revision."""
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            raise LeaseNotFoundError()
        txn.delete(_ID.pack(lease_id), db=backend.lease_db)
        for key in lease.keys:
            self._key_lease.pop(key, None)
        return sorted(lease.keys)

    def checkpoint(self, backend: Backend, txn: Any, lease_id: int, remaining_ttl: int) -> None:
        lease = self._leases.get(lease_id)
        if lease is None:
            return  # revoked meanwhile: etcd ignores it too
        lease.remaining_ttl = remaining_ttl
        self._persist(backend, txn, lease)

    def attach(self, lease_id: int, key: bytes) -> None:
        lease = self._leases.get(lease_id)
        if lease is not None:
            lease.keys.add(key)
            self._key_lease[key] = lease_id

    def detach(self, lease_id: int, key: bytes) -> None:
        lease = self._leases.get(lease_id)
        if lease is not None:
            lease.keys.discard(key)
        if self._key_lease.get(key) == lease_id:
            del self._key_lease[key]

    def _persist(self, backend: Backend, txn: Any, lease: Lease) -> None:
        txn.put(_ID.pack(lease.id), _RECORD.pack(lease.ttl, lease.remaining_ttl), db=backend.lease_db)

    # ---- the leader's clock ------------------------------------------------------------------------

    def promote(self, now: float, extend: float) -> None:
        """Become primary: every lease gets a fresh TTL (plus `extend`, the election timeout), as etcd."""
        self.primary = True
        self._due = []
        for lease in self._leases.values():
            ttl = lease.remaining_ttl if lease.remaining_ttl > 0 else lease.ttl
            self._set_expiry(lease, now + extend + ttl)

    def demote(self) -> None:
        self.primary = False
        self._due = []
        for lease in self._leases.values():
            lease.expiry = math.inf

    def renew(self, lease_id: int, now: float) -> int:
        """Keep-alive on the primary: refresh the expiry; returns the granted TTL."""
        lease = self._leases.get(lease_id)
        if lease is None or lease.expiry <= now:
            raise LeaseNotFoundError()
        lease.remaining_ttl = 0  # a renewal supersedes any checkpoint
        self._set_expiry(lease, now + lease.ttl)
        return lease.ttl

    def _set_expiry(self, lease: Lease, expiry: float) -> None:
        lease.expiry = lease.report_at = expiry
        heapq.heappush(self._due, (expiry, lease.id))

    def expired(self, now: float, limit: int = 1000) -> list[int]:
        """IDs of leases whose expiry has passed, soonest first, for the shell to propose their revokes.
        A lease is reported again after EXPIRED_RETRY_SECONDS while its revoke has not been applied."""
        if not self.primary:
            return []
        out: list[int] = []
        due = self._due
        while due and due[0][0] <= now and len(out) < limit:
            at, lease_id = heapq.heappop(due)
            lease = self._leases.get(lease_id)
            if lease is None or at != lease.report_at:
                continue  # revoked, or an entry superseded by a renewal or a retry
            out.append(lease_id)
            lease.report_at = now + EXPIRED_RETRY_SECONDS
            heapq.heappush(due, (lease.report_at, lease_id))
        return out

    def time_to_live(self, lease_id: int, now: float, with_keys: bool = False) -> LeaseTimeToLive:
        lease = self._leases.get(lease_id)
        if lease is None:
            return LeaseTimeToLive(lease_id, -1, 0, [])
        if math.isinf(lease.expiry):
            remaining = lease.remaining_ttl if lease.remaining_ttl > 0 else lease.ttl
        else:
            remaining = max(0, int(lease.expiry - now))
        keys = sorted(lease.keys) if with_keys else []
        return LeaseTimeToLive(lease_id, remaining, lease.ttl, keys)

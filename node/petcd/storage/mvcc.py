"""MVCCStore: etcd's multi-version key space over the LMDB backend.

History lives in the backend's `key` database, one row per change, keyed by revision
(8-byte main, 8-byte sub, then b"t" for a tombstone); the in-memory `TreeIndex` maps keys to
revisions and is rebuilt from those rows on open. Every change (put, delete, txn, lease revoke) gets
one main revision; the changes inside it are ordered by sub revision.

Writes go through a `WriteBatch` — one LMDB write transaction for many applied Raft entries:

    with store.batch() as b:
        for entry in committed_entries:
            if not b.applies(entry.index):      # already applied before a restart
                continue
            try:
                result = b.put(request)          # or delete_range / txn / compact / lease_*
            except StorageError as err:          # a client error: the entry is still applied
                result = err
            b.set_applied(entry.index, entry.term)
    hub.notify(b.events)                         # only after the commit

The consistent index (last applied Raft index) is committed in the same LMDB transaction as the data,
so a restart never applies an entry twice. A StorageError is raised before anything is written; any
exception that leaves the `with` block aborts the whole batch and reloads the in-memory state.
The store is not thread-safe: one thread applies and reads.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from petcd.storage.backend import (
    COMPACT_REVISION,
    CONSISTENT_INDEX,
    CURRENT_REVISION,
    DEFAULT_MAP_SIZE,
    SCHEDULED_COMPACT_REVISION,
    TERM,
    Backend,
)
from petcd.storage.errors import (
    CompactedError,
    FutureRevisionError,
    KeyNotFoundError,
    LeaseNotFoundError,
    StorageError,
)
from petcd.storage.keyindex import Revision, TreeIndex
from petcd.storage.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResult,
    Event,
    EventType,
    KeyValue,
    PutRequest,
    PutResult,
    RangeRequest,
    RangeResult,
    RequestOp,
    ResponseOp,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResult,
)
from petcd.storage.lessor import NO_LEASE, Lessor

_REV = struct.Struct(">QQ")
_KV_HEAD = struct.Struct(">qqqqI")  # create_revision, mod_revision, version, lease, len(key)
_TOMBSTONE = b"t"
_T = TypeVar("_T")
_SORT_KEYS = {
    SortTarget.KEY: lambda kv: kv.key,
    SortTarget.VERSION: lambda kv: kv.version,
    SortTarget.CREATE: lambda kv: kv.create_revision,
    SortTarget.MOD: lambda kv: kv.mod_revision,
    SortTarget.VALUE: lambda kv: kv.value,
}


def encode_revision(rev: Revision, tombstone: bool = False) -> bytes:
    raw = _REV.pack(rev[0], rev[1])
    return raw + _TOMBSTONE if tombstone else raw


def decode_revision(raw: bytes) -> tuple[Revision, bool]:
    main, sub = _REV.unpack_from(raw)
    return (main, sub), len(raw) > _REV.size


def encode_kv(kv: KeyValue) -> bytes:
    head = _KV_HEAD.pack(kv.create_revision, kv.mod_revision, kv.version, kv.lease, len(kv.key))
    return head + kv.key + kv.value


def decode_kv(raw: bytes) -> KeyValue:
    create, mod, version, lease, klen = _KV_HEAD.unpack_from(raw)
    start = _KV_HEAD.size
    return KeyValue(raw[start : start + klen], create, mod, version, raw[start + klen :], lease)


@dataclass(slots=True)
class HashKV:
    hash: int
    compact_revision: int
    hash_revision: int


class MVCCStore:
    def __init__(self, backend: Backend, lessor: Lessor | None = None) -> None:
        self.backend = backend
        self.lessor = lessor if lessor is not None else Lessor()
        self._batch: WriteBatch | None = None
        self._restore()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        min_lease_ttl: int = 2,
        sync: bool = True,
        map_size: int = DEFAULT_MAP_SIZE,
    ) -> MVCCStore:
        """`map_size` bounds the file (LMDB maps it whole): keep it well above the backend quota."""
        return cls(Backend(path, sync=sync, map_size=map_size), Lessor(min_lease_ttl))

    def close(self) -> None:
        self.backend.close()

    # ---- state -------------------------------------------------------------------------------------

    @property
    def current_revision(self) -> int:
        return self._current

    @property
    def compact_revision(self) -> int:
        """The last compaction's revision; -1 before the first compaction (as etcd)."""
        return self._compact

    @property
    def consistent_index(self) -> int:
        return self._consistent_index

    @property
    def term(self) -> int:
        return self._term

    def key_count(self) -> int:
        """Keys that exist now (etcd_debugging_mvcc_keys_total)."""
        return sum(1 for _ in self._index.range(b"\x00", b"\x00", self._current))

    def _restore(self) -> None:
        """Rebuild the in-memory index and lease table from the backend."""
        b = self.backend
        self._index = TreeIndex()
        latest_lease: dict[bytes, int] = {}
        with b.read() as txn:
            self._consistent_index = b.get_meta_int(txn, CONSISTENT_INDEX)
            self._term = b.get_meta_int(txn, TERM)
            self._current = b.get_meta_int(txn, CURRENT_REVISION, 1)
            self._compact = b.get_meta_int(txn, COMPACT_REVISION, -1)
            head = _KV_HEAD.size
            for raw_rev, raw_kv in txn.cursor(db=b.key_db):
                rev, tombstone = decode_revision(raw_rev)
                create, _, version, lease, klen = _KV_HEAD.unpack_from(raw_kv)
                key = raw_kv[head : head + klen]  # values are not needed to rebuild the index
                if tombstone:
                    self._index.restore_tombstone(key, rev)
                    latest_lease.pop(key, None)
                else:
                    self._index.restore_put(key, rev, create, version)
                    latest_lease[key] = lease
            self._index.finish_restore()
            self.lessor.load(b, txn)
        for key, lease_id in latest_lease.items():
            if lease_id != NO_LEASE:
                self.lessor.attach(lease_id, key)
        scheduled = self._scheduled_compaction()
        if scheduled > self._compact:  # a compaction was interrupted: finish it (etcd does the same)
            with self.batch() as batch:
                batch.compact(scheduled)

    def _scheduled_compaction(self) -> int:
        with self.backend.read() as txn:
            return self.backend.get_meta_int(txn, SCHEDULED_COMPACT_REVISION, -1)

    # ---- reads -------------------------------------------------------------------------------------

    def _read_txn(self) -> Any:
        return _Borrowed(self._batch.lmdb_txn) if self._batch is not None else self.backend.read()

    def range(self, req: RangeRequest) -> RangeResult:
        with self._read_txn() as txn:
            return _range(self, txn, req, self._current)

    def get(self, key: bytes, revision: int = 0) -> KeyValue | None:
        """The key's KeyValue now (or at `revision`), or None."""
        kvs = self.range(RangeRequest(key, revision=revision)).kvs
        return kvs[0] if kvs else None

    def kv_at(self, key: bytes, revision: int) -> KeyValue | None:
        """The key as of `revision`, or None if absent or compacted away (watch prev_kv)."""
        if revision < self._compact or revision <= 0:
            return None
        got = self._index.get(key, revision)
        if got is None:
            return None
        with self._read_txn() as txn:
            raw = txn.get(encode_revision(got[0]), db=self.backend.key_db)
        return None if raw is None else decode_kv(raw)

    def history(self, start_revision: int, end_revision: int, max_events: int) -> tuple[list[Event], int]:
        """Events of revisions start..end (inclusive), in order, about `max_events` at most (a revision is
        never split). Returns the events and the next revision to read."""
        events: list[Event] = []
        nxt = start_revision
        with self._read_txn() as txn:
            cur = txn.cursor(db=self.backend.key_db)
            if not cur.set_range(_REV.pack(max(start_revision, 0), 0)):
                return events, max(nxt, end_revision + 1)
            for raw_rev, raw_kv in cur:
                (main, _), tombstone = decode_revision(raw_rev)
                if main > end_revision or (len(events) >= max_events and main != nxt - 1):
                    return events, main if main <= end_revision else end_revision + 1
                kv = decode_kv(raw_kv)
                if tombstone:
                    events.append(Event(EventType.DELETE, KeyValue(kv.key, mod_revision=main)))
                else:
                    events.append(Event(EventType.PUT, kv))
                nxt = main + 1
        return events, end_revision + 1

    def hash_kv(self, revision: int = 0) -> HashKV:
        """CRC-32 over the history rows up to `revision` (0 = current): equal on members at one revision."""
        rev = self._current if revision <= 0 else revision
        if rev > self._current:
            raise FutureRevisionError()
        if revision > 0 and revision < self._compact:
            raise CompactedError()
        h = 0
        with self._read_txn() as txn:
            for raw_rev, raw_kv in txn.cursor(db=self.backend.key_db):
                if _REV.unpack_from(raw_rev)[0] > rev:
                    break
                h = zlib.crc32(raw_kv, zlib.crc32(raw_rev, h))
        return HashKV(h, self._compact, rev)

    # ---- writes ------------------------------------------------------------------------------------

    def batch(self) -> WriteBatch:
        return WriteBatch(self)

    def put(self, req: PutRequest) -> PutResult:
        """One write in its own batch (no Raft index): for tests and tools."""
        return self._single(lambda b: b.put(req))

    def delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResult:
        return self._single(lambda b: b.delete_range(req))

    def txn(self, req: TxnRequest) -> TxnResult:
        """A txn in its own batch; one without puts or deletes in any branch is only read (no batch),
        so a serializable read-only txn can be served outside the apply path."""
        if _writes(req):
            return self._single(lambda b: b.txn(req))
        with self._read_txn() as txn:
            path = _compare_path(self, txn, req)
            _check_txn_ops(self, req, path)
            result = _read_only_txn(self, txn, req, path, [0])
        result.revision = self._current
        return result

    def compact(self, revision: int) -> int:
        return self._single(lambda b: b.compact(revision))

    def _single(self, op: Callable[[WriteBatch], _T]) -> _T:
        with self.batch() as b:
            try:
                return op(b)
            except StorageError as err:  # raised before any write: commit the empty batch, no reload
                failure = err
        raise failure

    def restore_snapshot(self, data: bytes) -> None:
        """Replace everything with a backend snapshot (a follower receiving the leader's snapshot)."""
        self.backend.restore(data)
        self._restore()


class _Borrowed:
    """Lends the open write transaction to a reader without ending it on exit."""

    def __init__(self, txn: Any) -> None:
        self._txn = txn

    def __enter__(self) -> Any:
        return self._txn

    def __exit__(self, *exc: object) -> None:
        return None


class WriteBatch:
    """One LMDB write transaction applying many Raft entries. See the module docstring."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.events: list[Event] = []
        self.lmdb_txn: Any = None
        self._rev = 0  # main revision of the write in progress
        self._sub = 0  # changes made so far in it
        self._dirty_meta = False

    def __enter__(self) -> WriteBatch:
        if self.store._batch is not None:
            raise RuntimeError("a write batch is already open")
        self.lmdb_txn = self.store.backend.write()
        self.store._batch = self
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        store = self.store
        store._batch = None
        if exc_type is not None:
            self.lmdb_txn.abort()
            self.events = []
            store._restore()
            return
        if self._dirty_meta:
            b = store.backend
            b.put_meta_int(self.lmdb_txn, CONSISTENT_INDEX, store._consistent_index)
            b.put_meta_int(self.lmdb_txn, TERM, store._term)
            b.put_meta_int(self.lmdb_txn, CURRENT_REVISION, store._current)
        self.lmdb_txn.commit()

    # ---- applied index -----------------------------------------------------------------------------

    def applies(self, index: int) -> bool:
        """False for a Raft index that is already applied (at or below the consistent index)."""
        return index > self.store._consistent_index

    def set_applied(self, index: int, term: int) -> None:
        if index > self.store._consistent_index:
            self.store._consistent_index = index
            self.store._term = term
            self._dirty_meta = True

    # ---- one revision per write --------------------------------------------------------------------

    def _begin(self) -> None:
        self._rev = self.store._current + 1
        self._sub = 0

    def _end(self) -> int:
        """Finish the write in progress; returns the revision it produced (or the unchanged current)."""
        if self._sub:
            self.store._current = self._rev
            self._dirty_meta = True
            self._sub = 0
        return self.store._current

    def _read_revision(self) -> int:
        """Reads inside a write see its own changes."""
        return self._rev if self._sub else self.store._current

    def _put(self, key: bytes, value: bytes, lease: int) -> None:
        store = self.store
        rev = self._rev
        got = store._index.get(key, rev)
        if got is None:
            created, version = rev, 1
        else:
            created, version = got[1][0], got[2] + 1
        kv = KeyValue(key, created, rev, version, value, lease)
        idx: Revision = (rev, self._sub)
        self.lmdb_txn.put(_REV.pack(rev, self._sub), encode_kv(kv), db=store.backend.key_db)
        store._index.put(key, idx)
        self._sub += 1
        lessor = store.lessor
        old = lessor.lease_of(key)
        if old != lease:
            if old != NO_LEASE:
                lessor.detach(old, key)
            if lease != NO_LEASE:
                lessor.attach(lease, key)
        self.events.append(Event(EventType.PUT, kv))

    def _delete(self, key: bytes) -> None:
        store = self.store
        rev = self._rev
        row = _REV.pack(rev, self._sub) + _TOMBSTONE
        self.lmdb_txn.put(row, encode_kv(KeyValue(key)), db=store.backend.key_db)
        store._index.tombstone(key, (rev, self._sub))
        self._sub += 1
        old = store.lessor.lease_of(key)
        if old != NO_LEASE:
            store.lessor.detach(old, key)
        self.events.append(Event(EventType.DELETE, KeyValue(key, mod_revision=rev)))

    def _delete_range(self, key: bytes, range_end: bytes) -> int:
        keys = [k for k, _ in self.store._index.range(key, range_end, self._read_revision())]
        for k in keys:
            self._delete(k)
        return len(keys)

    # ---- requests ----------------------------------------------------------------------------------

    def range(self, req: RangeRequest) -> RangeResult:
        return _range(self.store, self.lmdb_txn, req, self.store._current)

    def put(self, req: PutRequest) -> PutResult:
        store = self.store
        if req.lease != NO_LEASE and store.lessor.lookup(req.lease) is None:
            raise LeaseNotFoundError()
        prev = self._prev_for_put(req)
        self._begin()
        self._put(req.key, *_put_value_and_lease(req, prev))
        return PutResult(self._end(), prev if req.prev_kv else None)

    def _prev_for_put(self, req: PutRequest) -> KeyValue | None:
        if not (req.prev_kv or req.ignore_value or req.ignore_lease):
            return None
        prev = self._current_kv(req.key)
        if prev is None and (req.ignore_value or req.ignore_lease):
            raise KeyNotFoundError()
        return prev

    def _current_kv(self, key: bytes) -> KeyValue | None:
        got = self.store._index.get(key, self._read_revision())
        if got is None:
            return None
        return decode_kv(self.lmdb_txn.get(encode_revision(got[0]), db=self.store.backend.key_db))

    def delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResult:
        prev = self._prev_kvs(req)
        self._begin()
        n = self._delete_range(req.key, req.range_end)
        return DeleteRangeResult(self._end(), n, prev)

    def _prev_kvs(self, req: DeleteRangeRequest) -> list[KeyValue]:
        if not req.prev_kv:
            return []
        everything = RangeRequest(req.key, req.range_end)
        return _range(self.store, self.lmdb_txn, everything, self._read_revision()).kvs

    def txn(self, req: TxnRequest) -> TxnResult:
        store = self.store
        # every compare, nested ones too, sees the state before the txn
        path = _compare_path(store, self.lmdb_txn, req)
        _check_txn_ops(store, req, path)
        self._begin()
        result = self._apply_txn(req, path, 0)[0]
        result.revision = self._end()
        return result

    def _apply_txn(self, req: TxnRequest, path: list[bool], at: int) -> tuple[TxnResult, int]:
        """Apply the chosen branch; `path[at]` is this txn's outcome. Returns the result and the next
        path position."""
        succeeded = path[at]
        at += 1
        responses: list[ResponseOp] = []
        for op in req.success if succeeded else req.failure:
            if isinstance(op, RangeRequest):
                responses.append(_range(self.store, self.lmdb_txn, op, self._read_revision()))
            elif isinstance(op, PutRequest):
                # checked before the txn began; never raise halfway (a key deleted earlier in this txn
                # is a DuplicateKey the API layer rejects, so its ignore_* flags just fall back)
                need_prev = op.prev_kv or op.ignore_value or op.ignore_lease
                prev = self._current_kv(op.key) if need_prev else None
                self._put(op.key, *_put_value_and_lease(op, prev))
                responses.append(PutResult(self._rev, prev if op.prev_kv else None))
            elif isinstance(op, DeleteRangeRequest):
                prev_kvs = self._prev_kvs(op)
                n = self._delete_range(op.key, op.range_end)
                responses.append(DeleteRangeResult(self._read_revision(), n, prev_kvs))
            else:
                nested, at = self._apply_txn(op, path, at)
                responses.append(nested)
        return TxnResult(0, succeeded, responses), at

    def compact(self, revision: int) -> int:
        """Remove history older than `revision` (physically, now). Returns the current revision."""
        store = self.store
        if revision <= store._compact:
            raise CompactedError()
        if revision > store._current:
            raise FutureRevisionError()
        b = store.backend
        b.put_meta_int(self.lmdb_txn, SCHEDULED_COMPACT_REVISION, revision)
        keep = store._index.compact(revision)
        cur = self.lmdb_txn.cursor(db=b.key_db)
        more = cur.first()
        while more:
            raw = cur.key()
            if not raw:  # deleting the last row leaves the cursor past the end
                break
            rev, _ = decode_revision(raw)
            if rev[0] > revision:
                break
            more = cur.next() if rev in keep else cur.delete()
        store._compact = revision
        b.put_meta_int(self.lmdb_txn, COMPACT_REVISION, revision)
        return store._current

    # ---- leases (the key deletions of a revoke are one revision) ------------------------------------

    def lease_grant(self, lease_id: int, ttl: int, now: float) -> int:
        """Returns the granted TTL (raised to the minimum)."""
        return self.store.lessor.grant(self.store.backend, self.lmdb_txn, lease_id, ttl, now).ttl

    def lease_revoke(self, lease_id: int) -> int:
        """Delete the lease and its keys; returns the revision."""
        keys = self.store.lessor.revoke(self.store.backend, self.lmdb_txn, lease_id)
        self._begin()
        for key in keys:
            if self.store._index.get(key, self._read_revision()) is not None:
                self._delete(key)
        return self._end()

    def lease_checkpoint(self, lease_id: int, remaining_ttl: int) -> None:
        self.store.lessor.checkpoint(self.store.backend, self.lmdb_txn, lease_id, remaining_ttl)


# ---- shared helpers ------------------------------------------------------------------------------------


def _put_value_and_lease(req: PutRequest, prev: KeyValue | None) -> tuple[bytes, int]:
    value = prev.value if req.ignore_value and prev is not None else req.value
    lease = prev.lease if req.ignore_lease and prev is not None else req.lease
    return value, lease


def _range(store: MVCCStore, txn: Any, req: RangeRequest, header_revision: int) -> RangeResult:
    """etcd's Range: mvcc range (count + limit+1), then min/max filters, sort, limit/more, keys_only."""
    at = req.revision
    if at > header_revision:
        raise FutureRevisionError()
    if at <= 0:
        at = header_revision
    if at < store._compact:
        raise CompactedError()
    pairs = store._index.range(req.key, req.range_end, at)
    if req.count_only:
        return RangeResult(header_revision, [], False, sum(1 for _ in pairs))
    fetch_all = req.sort_order != SortOrder.NONE or bool(
        req.min_mod_revision or req.max_mod_revision or req.min_create_revision or req.max_create_revision
    )
    fetch = 0 if fetch_all or req.limit <= 0 else req.limit + 1
    revs: list[Revision] = []
    count = 0
    for _, rev in pairs:
        count += 1
        if not fetch or len(revs) < fetch:
            revs.append(rev)
    key_db = store.backend.key_db
    kvs = [decode_kv(txn.get(_REV.pack(r[0], r[1]), db=key_db)) for r in revs]
    kvs = _filter_revisions(kvs, req)
    order = req.sort_order
    if req.sort_target != SortTarget.KEY and order == SortOrder.NONE:
        order = SortOrder.ASCEND
    if order != SortOrder.NONE and not (req.sort_target == SortTarget.KEY and order == SortOrder.ASCEND):
        kvs.sort(key=_SORT_KEYS[SortTarget(req.sort_target)], reverse=order == SortOrder.DESCEND)
    more = False
    if req.limit > 0 and len(kvs) > req.limit:
        kvs = kvs[: req.limit]
        more = True
    if req.keys_only:
        for kv in kvs:
            kv.value = b""
    return RangeResult(header_revision, kvs, more, count)


def _filter_revisions(kvs: list[KeyValue], req: RangeRequest) -> list[KeyValue]:
    if req.max_mod_revision:
        kvs = [kv for kv in kvs if kv.mod_revision <= req.max_mod_revision]
    if req.min_mod_revision:
        kvs = [kv for kv in kvs if kv.mod_revision >= req.min_mod_revision]
    if req.max_create_revision:
        kvs = [kv for kv in kvs if kv.create_revision <= req.max_create_revision]
    if req.min_create_revision:
        kvs = [kv for kv in kvs if kv.create_revision >= req.min_create_revision]
    return kvs


def _compare_path(store: MVCCStore, txn: Any, req: TxnRequest) -> list[bool]:
    """The outcome of this txn's compares, then of each nested txn on the chosen branches, depth first."""
    ok = all(_compare(store, txn, c) for c in req.compare)
    path = [ok]
    for op in req.success if ok else req.failure:
        if isinstance(op, TxnRequest):
            path.extend(_compare_path(store, txn, op))
    return path


def _compare(store: MVCCStore, txn: Any, c: Compare) -> bool:
    kvs = _range(store, txn, RangeRequest(c.key, c.range_end), store._current).kvs
    if not kvs:
        if c.target == CompareTarget.VALUE:
            return False
        return _compare_kv(c, KeyValue(c.key))
    return all(_compare_kv(c, kv) for kv in kvs)


def _compare_kv(c: Compare, kv: KeyValue) -> bool:
    target = c.target
    left: int | bytes
    right: int | bytes = c.value
    if target == CompareTarget.VALUE:
        left = kv.value
        if not isinstance(right, bytes):
            right = b""
    else:
        left = (
            kv.version
            if target == CompareTarget.VERSION
            else kv.create_revision
            if target == CompareTarget.CREATE
            else kv.mod_revision
            if target == CompareTarget.MOD
            else kv.lease
        )
        if not isinstance(right, int):
            right = 0
    r = (left > right) - (left < right)  # type: ignore[operator]
    result = c.result
    if result == CompareResult.EQUAL:
        return r == 0
    if result == CompareResult.NOT_EQUAL:
        return r != 0
    if result == CompareResult.GREATER:
        return r > 0
    return r < 0


def _writes(req: TxnRequest) -> bool:
    """etcd's !isTxnReadonly: any put or delete in any branch, nested txns included."""
    for op in (*req.success, *req.failure):
        if isinstance(op, PutRequest | DeleteRangeRequest) or (isinstance(op, TxnRequest) and _writes(op)):
            return True
    return False


def _read_only_txn(store: MVCCStore, txn: Any, req: TxnRequest, path: list[bool], at: list[int]) -> TxnResult:
    succeeded = path[at[0]]
    at[0] += 1
    responses: list[ResponseOp] = []
    for op in req.success if succeeded else req.failure:
        if isinstance(op, RangeRequest):
            responses.append(_range(store, txn, op, store._current))
        elif isinstance(op, TxnRequest):
            responses.append(_read_only_txn(store, txn, op, path, at))
    return TxnResult(0, succeeded, responses)


def _check_txn_ops(store: MVCCStore, req: TxnRequest, path: list[bool]) -> None:
    """etcd checks the chosen branches before a txn writes anything, all puts first (leases exist,
    ignore_* keys exist), then all ranges (revisions neither compacted nor in the future)."""
    ops = list(_chosen_ops(req, path, [0]))
    for op in ops:
        if isinstance(op, PutRequest):
            if (op.ignore_value or op.ignore_lease) and store._index.get(op.key, store._current) is None:
                raise KeyNotFoundError()
            if op.lease != NO_LEASE and store.lessor.lookup(op.lease) is None:
                raise LeaseNotFoundError()
    for op in ops:
        if isinstance(op, RangeRequest) and op.revision:
            if op.revision > store._current:
                raise FutureRevisionError()
            if op.revision < store._compact:
                raise CompactedError()


def _chosen_ops(req: TxnRequest, path: list[bool], at: list[int]) -> Iterator[RequestOp]:
    succeeded = path[at[0]]
    at[0] += 1
    for op in req.success if succeeded else req.failure:
        if isinstance(op, TxnRequest):
            yield from _chosen_ops(op, path, at)
        else:
            yield op

"""A deliberately simple model of etcd's key space for property tests: the whole state at every
revision, kept as a dict. Slow and obviously right; the MVCC store must agree with it."""

from __future__ import annotations

from dataclasses import replace

from petcd.storage.errors import CompactedError, FutureRevisionError, KeyNotFoundError, LeaseNotFoundError
from petcd.storage.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResult,
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

State = dict[bytes, KeyValue]


def in_range(key: bytes, start: bytes, end: bytes) -> bool:
    if not end:
        return key == start
    return start <= key and (end == b"\x00" or key < end)


def _sort_key(target: SortTarget, kv: KeyValue) -> bytes | int:
    if target == SortTarget.KEY:
        return kv.key
    if target == SortTarget.VALUE:
        return kv.value
    if target == SortTarget.VERSION:
        return kv.version
    return kv.create_revision if target == SortTarget.CREATE else kv.mod_revision


def range_state(state: State, req: RangeRequest, header: int) -> RangeResult:
    matched = [replace(state[k]) for k in sorted(state) if in_range(k, req.key, req.range_end)]
    if req.count_only:
        return RangeResult(header, [], False, len(matched))
    fetch_all = req.sort_order != SortOrder.NONE or any(
        (req.min_mod_revision, req.max_mod_revision, req.min_create_revision, req.max_create_revision)
    )
    kvs = matched if fetch_all or req.limit <= 0 else matched[: req.limit + 1]
    kvs = [
        kv
        for kv in kvs
        if (not req.max_mod_revision or kv.mod_revision <= req.max_mod_revision)
        and (not req.min_mod_revision or kv.mod_revision >= req.min_mod_revision)
        and (not req.max_create_revision or kv.create_revision <= req.max_create_revision)
        and (not req.min_create_revision or kv.create_revision >= req.min_create_revision)
    ]
    order = req.sort_order
    if req.sort_target != SortTarget.KEY and order == SortOrder.NONE:
        order = SortOrder.ASCEND
    if order != SortOrder.NONE:
        kvs = sorted(kvs, key=lambda kv: _sort_key(req.sort_target, kv), reverse=order == SortOrder.DESCEND)
    more = req.limit > 0 and len(kvs) > req.limit
    if req.limit > 0:
        kvs = kvs[: req.limit]
    if req.keys_only:
        kvs = [replace(kv, value=b"") for kv in kvs]
    return RangeResult(header, kvs, more, len(matched))


class Model:
    def __init__(self, leases: set[int]) -> None:
        self.revision = 1
        self.compacted = -1
        self.states: dict[int, State] = {1: {}}
        self.leases = leases

    @property
    def state(self) -> State:
        return self.states[self.revision]

    def _check_revision(self, rev: int) -> int:
        if rev > self.revision:
            raise FutureRevisionError()
        at = self.revision if rev <= 0 else rev
        if at < self.compacted:
            raise CompactedError()
        return at

    def range(self, req: RangeRequest) -> RangeResult:
        at = self._check_revision(req.revision)
        return range_state(self.states[at], req, self.revision)

    def _commit(self, new: State, changed: bool) -> int:
        if changed:
            self.revision += 1
            self.states[self.revision] = new
        return self.revision

    def _apply_put(self, work: State, req: PutRequest, rev: int) -> KeyValue | None:
        prev = work.get(req.key)
        value = prev.value if req.ignore_value and prev else req.value
        lease = prev.lease if req.ignore_lease and prev else req.lease
        if prev is None:
            work[req.key] = KeyValue(req.key, rev, rev, 1, value, lease)
        else:
            work[req.key] = KeyValue(req.key, prev.create_revision, rev, prev.version + 1, value, lease)
        return prev

    def _check_put(self, state: State, req: PutRequest) -> None:
        if (req.ignore_value or req.ignore_lease) and req.key not in state:
            raise KeyNotFoundError()
        if req.lease and req.lease not in self.leases:
            raise LeaseNotFoundError()

    def put(self, req: PutRequest) -> PutResult:
        if req.lease and req.lease not in self.leases:
            raise LeaseNotFoundError()
        self._check_put(self.state, req)
        work = dict(self.state)
        prev = self._apply_put(work, req, self.revision + 1)
        return PutResult(self._commit(work, True), replace(prev) if req.prev_kv and prev else None)

    def delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResult:
        work = dict(self.state)
        gone = [work.pop(k) for k in sorted(self.state) if in_range(k, req.key, req.range_end)]
        rev = self._commit(work, bool(gone))
        return DeleteRangeResult(rev, len(gone), gone if req.prev_kv else [])

    def _compare(self, state: State, c: Compare) -> bool:
        kvs = [state[k] for k in sorted(state) if in_range(k, c.key, c.range_end)]
        if not kvs:
            if c.target == CompareTarget.VALUE:
                return False
            kvs = [KeyValue(c.key)]
        for kv in kvs:
            if c.target == CompareTarget.VALUE:
                left: int | bytes = kv.value
                right: int | bytes = c.value if isinstance(c.value, bytes) else b""
            else:
                left = {
                    CompareTarget.VERSION: kv.version,
                    CompareTarget.CREATE: kv.create_revision,
                    CompareTarget.MOD: kv.mod_revision,
                    CompareTarget.LEASE: kv.lease,
                }[c.target]
                right = c.value if isinstance(c.value, int) else 0
            ok = {
                CompareResult.EQUAL: left == right,
                CompareResult.NOT_EQUAL: left != right,
                CompareResult.GREATER: left > right,  # type: ignore[operator]
                CompareResult.LESS: left < right,  # type: ignore[operator]
            }[c.result]
            if not ok:
                return False
        return True

    def _branch(self, state: State, req: TxnRequest) -> tuple[bool, list[RequestOp]]:
        ok = all(self._compare(state, c) for c in req.compare)
        return ok, req.success if ok else req.failure

    def _chosen(self, state: State, req: TxnRequest) -> list[RequestOp]:
        ops: list[RequestOp] = []
        for op in self._branch(state, req)[1]:
            ops.extend(self._chosen(state, op) if isinstance(op, TxnRequest) else [op])
        return ops

    def _check(self, state: State, req: TxnRequest) -> None:
        ops = self._chosen(state, req)
        for op in ops:
            if isinstance(op, PutRequest):
                self._check_put(state, op)
        for op in ops:
            # etcd's checkRequestRange compares the raw revision: inside a txn a negative one is
            # "compacted" once anything was compacted (a plain Range treats it as "now")
            if isinstance(op, RangeRequest) and op.revision:
                if op.revision > self.revision:
                    raise FutureRevisionError()
                if op.revision < self.compacted:
                    raise CompactedError()

    def txn(self, req: TxnRequest) -> TxnResult:
        before = self.state
        self._check(before, req)
        work = dict(before)
        rev = self.revision + 1
        changes = [0]
        result = self._txn(before, work, req, rev, changes)
        result.revision = self._commit(work, changes[0] > 0)
        return result

    def _txn(self, before: State, work: State, req: TxnRequest, rev: int, changes: list[int]) -> TxnResult:
        ok, ops = self._branch(before, req)  # nested compares also see the state before the txn
        responses: list[ResponseOp] = []
        for op in ops:
            read_rev = rev if changes[0] else self.revision
            if isinstance(op, RangeRequest):
                state = work if op.revision <= 0 else self.states[op.revision]
                responses.append(range_state(state, op, read_rev))
            elif isinstance(op, PutRequest):
                prev = self._apply_put(work, op, rev)
                changes[0] += 1
                responses.append(PutResult(rev, replace(prev) if op.prev_kv and prev else None))
            elif isinstance(op, DeleteRangeRequest):
                gone = [work.pop(k) for k in sorted(work) if in_range(k, op.key, op.range_end)]
                changes[0] += len(gone)
                after = rev if changes[0] else self.revision
                responses.append(DeleteRangeResult(after, len(gone), gone if op.prev_kv else []))
            else:
                responses.append(self._txn(before, work, op, rev, changes))
        return TxnResult(0, ok, responses)

    def compact(self, rev: int) -> int:
        if rev <= self.compacted:
            raise CompactedError()
        if rev > self.revision:
            raise FutureRevisionError()
        self.compacted = rev
        return self.revision

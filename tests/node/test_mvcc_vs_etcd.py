"""Differential: one random op sequence replayed on petcd's MVCC store and on a real etcd 3.4.

Every answer is compared: header revisions, kvs (create/mod revision, version, value, lease), more,
count, txn outcomes with nested responses, prev_kv(s), compaction, and etcd's exact error messages.
etcd is driven through its v3 JSON gateway. PETCD_MVCC_VS_ETCD_OPS raises the op count (default 300),
PETCD_MVCC_VS_ETCD_SEED picks the sequence.
"""

from __future__ import annotations

import base64
import json
import os
import random
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from harness import IMPLEMENTATIONS, Sandbox
from petcd.storage.errors import StorageError
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
    prefix_range_end,
)
from petcd.storage.mvcc import MVCCStore
from petcd.storage.watch import WatchCreate, WatchHub

KEYS = [b"\x00", b"\x00" * 8, b"a", b"ab", b"abc", b"b", b"ba", b"c", b"\xff", b"\xff\xff", b"k/1", b"k/2"]
LEASES = (1, 2)
OPS = int(os.environ.get("PETCD_MVCC_VS_ETCD_OPS", "300"))
SEED = int(os.environ.get("PETCD_MVCC_VS_ETCD_SEED", "20261124"))
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---- the etcd side: JSON gateway ---------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


class Gateway:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        try:
            with _NO_PROXY.open(req, timeout=10) as resp:
                result: dict[str, Any] = json.loads(resp.read())
                return result
        except urllib.error.HTTPError as err:
            payload = json.loads(err.read())
            raise GatewayError(payload.get("error") or payload.get("message")) from None


class GatewayError(Exception):
    pass


def _drop_defaults(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (0, False, "", None)}


def range_json(r: RangeRequest) -> dict[str, Any]:
    return _drop_defaults(
        {
            "key": b64(r.key),
            "range_end": b64(r.range_end),
            "limit": r.limit,
            "revision": r.revision,
            "sort_order": int(r.sort_order),
            "sort_target": int(r.sort_target),
            "keys_only": r.keys_only,
            "count_only": r.count_only,
            "min_mod_revision": r.min_mod_revision,
            "max_mod_revision": r.max_mod_revision,
            "min_create_revision": r.min_create_revision,
            "max_create_revision": r.max_create_revision,
        }
    )


def put_json(p: PutRequest) -> dict[str, Any]:
    return _drop_defaults(
        {
            "key": b64(p.key),
            "value": b64(p.value),
            "lease": p.lease,
            "prev_kv": p.prev_kv,
            "ignore_value": p.ignore_value,
            "ignore_lease": p.ignore_lease,
        }
    )


def delete_json(d: DeleteRangeRequest) -> dict[str, Any]:
    return _drop_defaults({"key": b64(d.key), "range_end": b64(d.range_end), "prev_kv": d.prev_kv})


_TARGET_FIELD = {
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create_revision",
    CompareTarget.MOD: "mod_revision",
    CompareTarget.VALUE: "value",
    CompareTarget.LEASE: "lease",
}


def compare_json(c: Compare) -> dict[str, Any]:
    value = b64(c.value) if isinstance(c.value, bytes) else c.value
    body = _drop_defaults({"key": b64(c.key), "range_end": b64(c.range_end), _TARGET_FIELD[c.target]: value})
    return body | {"target": int(c.target), "result": int(c.result)}


def op_json(op: RequestOp) -> dict[str, Any]:
    if isinstance(op, RangeRequest):
        return {"request_range": range_json(op)}
    if isinstance(op, PutRequest):
        return {"request_put": put_json(op)}
    if isinstance(op, DeleteRangeRequest):
        return {"request_delete_range": delete_json(op)}
    return {"request_txn": txn_json(op)}


def txn_json(t: TxnRequest) -> dict[str, Any]:
    return {
        "compare": [compare_json(c) for c in t.compare],
        "success": [op_json(o) for o in t.success],
        "failure": [op_json(o) for o in t.failure],
    }


def _get(j: dict[str, Any], name: str) -> Any:
    """A field by its proto name or grpc-gateway's camelCase name."""
    if name in j:
        return j[name]
    parts = name.split("_")
    return j.get(parts[0] + "".join(p.title() for p in parts[1:]))


def _rev(j: dict[str, Any]) -> int:
    return int((_get(j, "header") or {}).get("revision", 0))


def kv_from(j: dict[str, Any]) -> KeyValue:
    return KeyValue(
        unb64(j.get("key")),
        int(_get(j, "create_revision") or 0),
        int(_get(j, "mod_revision") or 0),
        int(j.get("version", 0)),
        unb64(j.get("value")),
        int(j.get("lease", 0)),
    )


def range_from(j: dict[str, Any]) -> RangeResult:
    kvs = [kv_from(k) for k in j.get("kvs", [])]
    return RangeResult(_rev(j), kvs, bool(j.get("more")), int(j.get("count", 0)))


def put_from(j: dict[str, Any]) -> PutResult:
    prev = _get(j, "prev_kv")
    return PutResult(_rev(j), kv_from(prev) if prev else None)


def delete_from(j: dict[str, Any]) -> DeleteRangeResult:
    prev = [kv_from(k) for k in _get(j, "prev_kvs") or []]
    return DeleteRangeResult(_rev(j), int(j.get("deleted", 0)), prev)


def txn_from(j: dict[str, Any]) -> TxnResult:
    responses: list[ResponseOp] = []
    for r in j.get("responses", []):
        if _get(r, "response_range") is not None:
            responses.append(range_from(_get(r, "response_range")))
        elif _get(r, "response_put") is not None:
            responses.append(put_from(_get(r, "response_put")))
        elif _get(r, "response_delete_range") is not None:
            responses.append(delete_from(_get(r, "response_delete_range")))
        else:
            responses.append(txn_from(_get(r, "response_txn")))
    return TxnResult(_rev(j), bool(j.get("succeeded")), responses)


def event_from(j: dict[str, Any]) -> Event:
    prev = _get(j, "prev_kv")
    kind = EventType.DELETE if j.get("type") in ("DELETE", 1) else EventType.PUT
    return Event(kind, kv_from(j.get("kv", {})), kv_from(prev) if prev else None)


class EtcdSide:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def range(self, r: RangeRequest) -> RangeResult:
        return range_from(self.gw.call("/v3/kv/range", range_json(r)))

    def put(self, p: PutRequest) -> PutResult:
        return put_from(self.gw.call("/v3/kv/put", put_json(p)))

    def delete_range(self, d: DeleteRangeRequest) -> DeleteRangeResult:
        return delete_from(self.gw.call("/v3/kv/deleterange", delete_json(d)))

    def txn(self, t: TxnRequest) -> TxnResult:
        return txn_from(self.gw.call("/v3/kv/txn", txn_json(t)))

    def compact(self, rev: int) -> int:
        return _rev(self.gw.call("/v3/kv/compaction", {"revision": rev, "physical": True}))

    def revoke(self, lease_id: int) -> int:
        """Revoke (deleting the lease's keys in one revision), then grant the ID again."""
        rev = _rev(self.gw.call("/v3/lease/revoke", {"ID": lease_id}))
        self.gw.call("/v3/lease/grant", {"ID": lease_id, "TTL": 3600})
        return rev

    def watch_history(self, start: int, until: int) -> list[Event]:
        """Every event of the whole key space from `start`, read from a gateway watch stream until
        revision `until` arrived (or the stream stays quiet for a few seconds)."""
        create = {"key": b64(b"\x00"), "range_end": b64(b"\x00"), "start_revision": start, "prev_kv": True}
        body = json.dumps({"create_request": create}).encode()
        req = urllib.request.Request(self.gw.url + "/v3/watch", body, {"Content-Type": "application/json"})
        events: list[Event] = []
        with _NO_PROXY.open(req, timeout=5) as resp:
            try:
                for line in resp:
                    result = json.loads(line).get("result", {})
                    events.extend(event_from(e) for e in result.get("events", []))
                    if events and events[-1].kv.mod_revision >= until:
                        break
            except TimeoutError:
                pass
        return events


# ---- the op sequence -------------------------------------------------------------------------------------


class Ops:
    """Random requests etcd's API layer accepts (no empty keys, no duplicate keys within a txn)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.revision = 1

    def key(self) -> bytes:
        return self.rng.choice(KEYS)

    def range_end(self, key: bytes) -> bytes:
        choice = self.rng.randrange(4)
        return [b"", b"\x00", prefix_range_end(key), self.key()][choice]

    def range(self) -> RangeRequest:
        r = self.rng
        key = self.key()
        return RangeRequest(
            key,
            self.range_end(key),
            limit=r.choice([0, 0, 1, 2, 3]),
            revision=r.choice([0, 0, 0, r.randint(-1, self.revision + 1)]),
            sort_order=r.choice(list(SortOrder)),
            sort_target=r.choice(list(SortTarget)),
            keys_only=r.random() < 0.2,
            count_only=r.random() < 0.15,
            min_mod_revision=r.choice([0, 0, 0, r.randint(1, self.revision + 1)]),
            max_mod_revision=r.choice([0, 0, 0, r.randint(1, self.revision + 1)]),
            min_create_revision=r.choice([0, 0, 0, r.randint(1, self.revision + 1)]),
            max_create_revision=r.choice([0, 0, 0, r.randint(1, self.revision + 1)]),
        )

    def put(self, key: bytes | None = None) -> PutRequest:
        r = self.rng
        ignore_value = r.random() < 0.1
        ignore_lease = r.random() < 0.1
        return PutRequest(
            key if key is not None else self.key(),
            b"" if ignore_value else r.randbytes(r.randint(0, 5)),
            lease=0 if ignore_lease else r.choice([0, 0, 0, 1, 2, 3]),
            prev_kv=r.random() < 0.4,
            ignore_value=ignore_value,
            ignore_lease=ignore_lease,
        )

    def delete(self) -> DeleteRangeRequest:
        key = self.key()
        return DeleteRangeRequest(key, self.range_end(key), prev_kv=self.rng.random() < 0.5)

    def compare(self) -> Compare:
        r = self.rng
        target = r.choice(list(CompareTarget))
        value: int | bytes = r.randint(0, 8)
        if target == CompareTarget.VALUE:
            value = r.randbytes(r.randint(0, 3))
        key = self.key()
        range_end = r.choice([b"", b"", self.range_end(key)])
        return Compare(key, target, r.choice(list(CompareResult)), value, range_end)

    def txn(self, depth: int = 0, used: set[bytes] | None = None) -> TxnRequest:
        used = set() if used is None else used  # keys written anywhere in the txn: kept unique
        return TxnRequest(
            [self.compare() for _ in range(self.rng.randint(0, 2))],
            self.branch(depth, used),
            self.branch(depth, used),
        )

    def branch(self, depth: int, used: set[bytes]) -> list[RequestOp]:
        ops: list[RequestOp] = []
        for _ in range(self.rng.randint(0, 3)):
            kind = self.rng.randrange(4 if depth < 1 else 3)
            if kind == 0:
                ops.append(self.range())
            elif kind == 1:
                free = [k for k in KEYS if k not in used]
                if free:
                    key = self.rng.choice(free)
                    used.add(key)
                    ops.append(self.put(key))
            elif kind == 2:
                key = self.rng.choice(KEYS)
                if key not in used:  # a single-key delete that no put of this txn touches
                    used.add(key)
                    ops.append(DeleteRangeRequest(key, prev_kv=self.rng.random() < 0.5))
            else:
                ops.append(self.txn(depth + 1, used))
        return ops

    def next(self) -> tuple[str, Any]:
        x = self.rng.random()
        if x < 0.35:
            return "put", self.put()
        if x < 0.6:
            return "range", self.range()
        if x < 0.72:
            return "delete_range", self.delete()
        if x < 0.96:
            return "txn", self.txn()
        if x < 0.98:
            return "revoke", self.rng.choice(LEASES)
        return "compact", self.rng.randint(max(1, self.revision - 40), self.revision + 1)


class StoreSide:
    """The MVCC store with the same calls as EtcdSide."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.range = store.range
        self.put = store.put
        self.delete_range = store.delete_range
        self.txn = store.txn
        self.compact = store.compact

    def revoke(self, lease_id: int) -> int:
        with self.store.batch() as b:
            rev = b.lease_revoke(lease_id)
            b.lease_grant(lease_id, 3600, now=0.0)
        return rev


def answer(fn: Any, arg: Any) -> Any:
    try:
        return fn(arg)
    except (StorageError, GatewayError) as err:
        return f"error: {err}"


def compare_watch_history(store: MVCCStore, etcd: EtcdSide) -> None:
    """The whole key space's history from the compaction point on: same events, same prev_kvs."""
    start = max(store.compact_revision, 1)
    hub = WatchHub(store, catch_up_events=50)
    sid = hub.open_stream()
    hub.create(sid, WatchCreate(b"\x00", b"\x00", start_revision=start, prev_kv=True))
    ours: list[Event] = []
    while hub.has_unsynced:
        ours.extend(e for r in hub.catch_up().get(sid, []) for e in r.events)
    theirs = etcd.watch_history(start, store.current_revision)
    assert ours == theirs, f"watch from {start}"


@pytest.mark.timeout(300)
def test_mvcc_matches_etcd(sandbox: Sandbox, tmp_path: Path) -> None:
    etcd34 = IMPLEMENTATIONS["etcd34"]
    etcd34.require()
    cluster = sandbox.static_cluster(etcd34, 1)
    etcd = EtcdSide(Gateway(cluster.members[0].client_url))
    store = MVCCStore.open(tmp_path / "db", sync=False)
    try:
        for lease_id in LEASES:
            etcd.gw.call("/v3/lease/grant", {"ID": lease_id, "TTL": 3600})
            with store.batch() as b:
                b.lease_grant(lease_id, 3600, now=0.0)
        ops = Ops(random.Random(SEED))
        ours = StoreSide(store)
        for step in range(OPS):
            name, arg = ops.next()
            want = answer(getattr(etcd, name), arg)
            got = answer(getattr(ours, name), arg)
            assert got == want, f"step {step}: {name} {arg}\npetcd: {got}\n etcd: {want}"
            ops.revision = store.current_revision
            if step % 100 == 99:
                compare_watch_history(store, etcd)
        everything = RangeRequest(b"\x00", b"\x00")
        assert store.range(everything) == etcd.range(everything)
        compare_watch_history(store, etcd)
    finally:
        store.close()

"""v2 key requests: parsed from HTTP forms as etcd parses them, encoded for the Raft log, applied.

A mutating request (PUT, POST, DELETE, a quorum GET "QGET", and the leader's expiry "SYNC") is
encoded with `encode`, carried through the Raft log, and every member calls
`apply(store, request, now_ns)` in log order. TTLs travel as absolute expiry times chosen by the
member that parsed the request, so applying is deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

from petcd.v2 import errors
from petcd.v2.errors import V2Error
from petcd.v2.events import Event
from petcd.v2.paths import clean
from petcd.v2.store import V2Store

CODEC_VERSION = 1
_MAGIC = b"v2req"
_NS = 1_000_000_000
_MAX_UINT64 = 2**64 - 1
# The methods that go through Raft; GET and HEAD read the local store.
LOGGED_METHODS = frozenset({"PUT", "POST", "DELETE", "QGET", "SYNC"})


@dataclass(frozen=True)
class V2Request:
    """etcd's etcdserverpb.Request, restricted to what the v2 key API uses."""

    method: str
    path: str = "/"
    value: str = ""
    dir: bool = False
    prev_value: str = ""
    prev_index: int = 0
    prev_exist: bool | None = None
    expiration_ns: int = 0  # absolute expiry in Unix ns; 0: no TTL
    wait: bool = False
    since: int = 0
    recursive: bool = False
    sorted: bool = False
    quorum: bool = False
    stream: bool = False
    refresh: bool | None = None
    time_ns: int = 0  # SYNC: expire everything at or before this time

    @classmethod
    def sync(cls, now_ns: int) -> V2Request:
        """The leader's periodic request that expires TTL keys on every member."""
        return cls(method="SYNC", time_ns=now_ns)

    @property
    def effective_method(self) -> str:
        """etcd turns a GET with quorum=true into QGET (a read through Raft)."""
        return "QGET" if self.method == "GET" and self.quorum else self.method

    @property
    def goes_through_raft(self) -> bool:
        return self.effective_method in LOGGED_METHODS

    @property
    def is_watch(self) -> bool:
        """A long poll; etcd serves wait=true&quorum=true as a plain quorum read instead."""
        return self.wait and self.effective_method == "GET"


def encode(request: V2Request) -> bytes:
    """Versioned, self-describing bytes for the Raft log (JSON after a magic and a version byte)."""
    body = json.dumps(asdict(request), separators=(",", ":"), sort_keys=True).encode()
    return _MAGIC + bytes([CODEC_VERSION]) + body


def decode(data: bytes) -> V2Request:
    if not data.startswith(_MAGIC) or len(data) <= len(_MAGIC):
        raise ValueError("not an encoded v2 request")
    version = data[len(_MAGIC)]
    if version != CODEC_VERSION:
        raise ValueError(f"unsupported v2 request encoding version {version}")
    raw = json.loads(data[len(_MAGIC) + 1:])
    known = {f.name for f in fields(V2Request)}
    return V2Request(**{k: v for k, v in raw.items() if k in known})


def apply(store: V2Store, request: V2Request, now_ns: int) -> Event | V2Error | None:
    """Apply one logged request (etcd's applierV2). SYNC answers None; failures come back as V2Error."""
    method = request.effective_method
    try:
        if method == "SYNC":
            store.delete_expired(request.time_ns)
            return None
        if method == "POST":
            return store.create(request.path, request.dir, request.value, True,
                                request.expiration_ns, now_ns=now_ns)
        if method == "PUT":
            return _put(store, request, now_ns)
        if method == "DELETE":
            if request.prev_index > 0 or request.prev_value:
                return store.compare_and_delete(request.path, request.prev_value, request.prev_index,
                                                now_ns=now_ns)
            return store.delete(request.path, request.dir, request.recursive, now_ns=now_ns)
        if method in ("QGET", "GET", "HEAD"):
            return store.get(request.path, request.recursive, request.sorted, now_ns=now_ns)
    except V2Error as err:
        return err
    return V2Error(errors.RAFT_INTERNAL, "etcdserver: unknown method", 0)


def _put(store: V2Store, r: V2Request, now_ns: int) -> Event:
    refresh = bool(r.refresh)
    if r.prev_exist is True:
        if r.prev_index == 0 and r.prev_value == "":
            return store.update(r.path, r.value, r.expiration_ns, refresh, now_ns=now_ns)
        return store.compare_and_swap(r.path, r.prev_value, r.prev_index, r.value, r.expiration_ns,
                                      refresh, now_ns=now_ns)
    if r.prev_exist is False:
        return store.create(r.path, r.dir, r.value, False, r.expiration_ns, now_ns=now_ns)
    if r.prev_index > 0 or r.prev_value:
        return store.compare_and_swap(r.path, r.prev_value, r.prev_index, r.value, r.expiration_ns,
                                      refresh, now_ns=now_ns)
    return store.set(r.path, r.dir, r.value, r.expiration_ns, refresh, now_ns=now_ns)


# ---- parsing HTTP forms (etcd's parseKeyRequest) -------------------------------------------------

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_go_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(text)


def parse_go_uint64(text: str) -> int:
    """Go's strconv.ParseUint(text, 10, 64)."""
    if not text or not text.isascii() or not text.isdigit() or int(text) > _MAX_UINT64:
        raise ValueError(text)
    return int(text)


Form = Mapping[str, Sequence[str]]


def _first(form: Form, key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def _bool(form: Form, key: str, code: int = errors.INVALID_FIELD, cause: str | None = None) -> bool:
    raw = _first(form, key)
    if raw is None:
        return False
    try:
        return parse_go_bool(raw)
    except ValueError:
        raise V2Error(code, cause if cause is not None else f'invalid value for "{key}"') from None


def _uint(form: Form, key: str, code: int) -> int:
    raw = _first(form, key)
    if raw is None:
        return 0
    try:
        return parse_go_uint64(raw)
    except ValueError:
        raise V2Error(code, f'invalid value for "{key}"') from None


@dataclass(frozen=True)
class ParsedKeyRequest:
    request: V2Request
    no_value_on_success: bool


def parse_key_request(method: str, key_path: str, form: Form, now_ns: int) -> ParsedKeyRequest:
    """Validate a /v2/keys request the way etcd does; `key_path` is the URL path after /v2/keys.

    `form` maps each field to its values, body values first (Go's Request.Form). Raises V2Error
    (index 0) with etcd's code and cause on the first invalid field.
    """
    prev_index = _uint(form, "prevIndex", errors.INDEX_NAN)
    wait_index = _uint(form, "waitIndex", errors.INDEX_NAN)
    recursive = _bool(form, "recursive")
    sorted_ = _bool(form, "sorted")
    wait = _bool(form, "wait")
    dir_ = _bool(form, "dir")
    quorum = _bool(form, "quorum")
    stream = _bool(form, "stream")
    if wait and method != "GET":
        raise V2Error(errors.INVALID_FIELD, '"wait" can only be used with GET requests')
    prev_value = _first(form, "prevValue")
    if prev_value == "":
        raise V2Error(errors.PREV_VALUE_REQUIRED, '"prevValue" cannot be empty')
    no_value = _bool(form, "noValueOnSuccess")
    ttl: int | None = None
    if _first(form, "ttl"):
        ttl = _uint(form, "ttl", errors.TTL_NAN)
    prev_exist: bool | None = None
    if "prevExist" in form:
        prev_exist = _bool(form, "prevExist", cause="invalid value for prevExist")
    refresh: bool | None = None
    value = _first(form, "value") or ""
    if "refresh" in form:
        refresh = _bool(form, "refresh", cause="invalid value for refresh")
        if refresh:
            if "value" in form and value != "":
                raise V2Error(errors.REFRESH_VALUE, "A value was provided on a refresh")
            if ttl is None:
                raise V2Error(errors.REFRESH_TTL_REQUIRED, "No TTL value set")
    request = V2Request(
        method=method, path=clean(key_path), value=value, dir=dir_, prev_value=prev_value or "",
        prev_index=prev_index, prev_exist=prev_exist, wait=wait, since=wait_index, recursive=recursive,
        sorted=sorted_, quorum=quorum, stream=stream, refresh=refresh,
        expiration_ns=now_ns + ttl * _NS if ttl is not None else 0,
    )
    return ParsedKeyRequest(request, no_value)

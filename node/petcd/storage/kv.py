"""Plain data types of the key space, mirroring etcd's mvccpb and etcdserverpb KV messages.

Field names are protobuf's, so `petcd.api` converts field by field. Keys and values are arbitrary
bytes. A request's `range_end` follows etcd: empty = the single key, b"\\x00" = every key >= key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EventType(enum.IntEnum):
    PUT = 0
    DELETE = 1


class SortOrder(enum.IntEnum):
    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(enum.IntEnum):
    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class CompareResult(enum.IntEnum):
    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


class CompareTarget(enum.IntEnum):
    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


@dataclass(slots=True)
class KeyValue:
    key: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    value: bytes = b""
    lease: int = 0


@dataclass(slots=True)
class Event:
    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


# ---- requests ------------------------------------------------------------------------------------


@dataclass(slots=True)
class RangeRequest:
    key: bytes
    range_end: bytes = b""
    limit: int = 0
    revision: int = 0
    sort_order: SortOrder = SortOrder.NONE
    sort_target: SortTarget = SortTarget.KEY
    serializable: bool = False
    keys_only: bool = False
    count_only: bool = False
    min_mod_revision: int = 0
    max_mod_revision: int = 0
    min_create_revision: int = 0
    max_create_revision: int = 0


@dataclass(slots=True)
class PutRequest:
    key: bytes
    value: bytes = b""
    lease: int = 0
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


@dataclass(slots=True)
class DeleteRangeRequest:
    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False


@dataclass(slots=True)
class Compare:
    """One txn guard. `value` holds the target_union operand: an int, or bytes for VALUE."""

    key: bytes
    target: CompareTarget = CompareTarget.VERSION
    result: CompareResult = CompareResult.EQUAL
    value: int | bytes = 0
    range_end: bytes = b""


@dataclass(slots=True)
class TxnRequest:
    compare: list[Compare] = field(default_factory=list)
    success: list[RequestOp] = field(default_factory=list)
    failure: list[RequestOp] = field(default_factory=list)


RequestOp = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest


# ---- results (the header revision is the store revision the request saw or produced) --------------


@dataclass(slots=True)
class RangeResult:
    revision: int
    kvs: list[KeyValue]
    more: bool
    count: int


@dataclass(slots=True)
class PutResult:
    revision: int
    prev_kv: KeyValue | None = None


@dataclass(slots=True)
class DeleteRangeResult:
    revision: int
    deleted: int
    prev_kvs: list[KeyValue] = field(default_factory=list)


@dataclass(slots=True)
class TxnResult:
    revision: int
    succeeded: bool
    responses: list[ResponseOp] = field(default_factory=list)


ResponseOp = RangeResult | PutResult | DeleteRangeResult | TxnResult


def prefix_range_end(prefix: bytes) -> bytes:
    """etcd's GetPrefixRangeEnd: the smallest key greater than every key starting with `prefix`."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\x00"  # every byte was 0xff (or the prefix was empty): all keys >= prefix

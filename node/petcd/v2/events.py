"""What the v2 store answers: events (`action`, `node`, `prevNode`) with etcd's JSON shapes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

GET = "get"
CREATE = "create"
SET = "set"
UPDATE = "update"
DELETE = "delete"
COMPARE_AND_SWAP = "compareAndSwap"
COMPARE_AND_DELETE = "compareAndDelete"
EXPIRE = "expire"

_NS = 1_000_000_000


def rfc3339nano(unix_ns: int) -> str:
    """Go's time.Time JSON form in UTC: RFC 3339 with the fraction's trailing zeros removed."""
    seconds, nanos = divmod(unix_ns, _NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def parse_rfc3339nano(text: str) -> int:
    """The inverse of rfc3339nano (for the UTC form it writes)."""
    main, _, frac = text.rstrip("Z").partition(".")
    seconds = int(datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
    return seconds * _NS + int((frac + "000000000")[:9])


def ttl_seconds(expire_ns: int, now_ns: int) -> int:
    """Seconds left, rounded up the way etcd does it (Go's truncating division, then +1 on a remainder)."""
    left = expire_ns - now_ns
    whole = abs(left) // _NS * (1 if left >= 0 else -1)
    if left - whole * _NS > 0:
        whole += 1
    return whole


@dataclass
class NodeExtern:
    """A node as clients see it; `key` "/" (the root) is written without a key, as etcd does."""

    key: str
    value: str | None = None
    dir: bool = False
    expiration_ns: int = 0
    ttl: int = 0
    nodes: list[NodeExtern] | None = None
    modified_index: int = 0
    created_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.key and self.key != "/":
            out["key"] = self.key
        if self.value is not None:
            out["value"] = self.value
        if self.dir:
            out["dir"] = True
        if self.expiration_ns:
            out["expiration"] = rfc3339nano(self.expiration_ns)
        if self.ttl:
            out["ttl"] = self.ttl
        if self.nodes:
            out["nodes"] = [n.to_dict() for n in self.nodes]
        if self.modified_index:
            out["modifiedIndex"] = self.modified_index
        if self.created_index:
            out["createdIndex"] = self.created_index
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeExtern:
        return cls(
            key=d.get("key", "/"),
            value=d.get("value"),
            dir=bool(d.get("dir", False)),
            expiration_ns=parse_rfc3339nano(d["expiration"]) if "expiration" in d else 0,
            ttl=int(d.get("ttl", 0)),
            nodes=[cls.from_dict(n) for n in d["nodes"]] if "nodes" in d else None,
            modified_index=int(d.get("modifiedIndex", 0)),
            created_index=int(d.get("createdIndex", 0)),
        )


@dataclass
class Event:
    """One store answer. `etcd_index` is the store index sent as X-Etcd-Index (not in the body)."""

    action: str
    node: NodeExtern
    prev_node: NodeExtern | None = None
    etcd_index: int = 0
    # A TTL refresh: kept in the history but skipped by watchers, never written to clients.
    refresh: bool = False

    @property
    def index(self) -> int:
        return self.node.modified_index

    def is_created(self) -> bool:
        """201 Created: a create, or a set that found no previous node."""
        return self.action == CREATE or (self.action == SET and self.prev_node is None)

    def to_dict(self, no_value_on_success: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        if no_value_on_success and self.action in (SET, COMPARE_AND_SWAP, CREATE, UPDATE):
            return out
        out["node"] = self.node.to_dict()
        if self.prev_node is not None:
            out["prevNode"] = self.prev_node.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], etcd_index: int = 0) -> Event:
        prev = d.get("prevNode")
        return cls(
            action=d["action"],
            node=NodeExtern.from_dict(d["node"]),
            prev_node=NodeExtern.from_dict(prev) if prev is not None else None,
            etcd_index=etcd_index,
            refresh=bool(d.get("refresh", False)),
        )

    def with_etcd_index(self, etcd_index: int) -> Event:
        return replace(self, etcd_index=etcd_index, refresh=False)

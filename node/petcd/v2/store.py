"""The etcd v2 key store: a tree of directories and keys, replicated as a deterministic state machine.

Pure and single-threaded: every operation takes the time it should consider "now" (in Unix
nanoseconds) and only uses it to render TTLs; expiry times themselves come in with the requests,
so every member that applies the same requests holds the same tree. Behaviour follows etcd 3.4's
v2store (error codes, causes, indices, hidden `_` keys, in-order keys, the 1000-event history).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from petcd.v2 import errors
from petcd.v2.errors import V2Error
from petcd.v2.events import (
    COMPARE_AND_DELETE,
    COMPARE_AND_SWAP,
    CREATE,
    DELETE,
    EXPIRE,
    GET,
    SET,
    UPDATE,
    Event,
    NodeExtern,
    ttl_seconds,
)
from petcd.v2.paths import clean, join, split
from petcd.v2.watch import Watcher, WatcherHub

# Expiry times before 2000-01-01T00:00:00Z mean "no TTL" (etcd's minExpireTime).
MIN_EXPIRE_NS = 946_684_800 * 1_000_000_000
SNAPSHOT_VERSION = 1

STAT_NAMES = (
    "getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail",
    "updateSuccess", "updateFail", "createSuccess", "createFail", "compareAndSwapSuccess",
    "compareAndSwapFail", "compareAndDeleteSuccess", "compareAndDeleteFail", "expireCount",
)
_STAT_OF_ACTION = {
    GET: "gets", SET: "sets", DELETE: "delete", UPDATE: "update", CREATE: "create",
    COMPARE_AND_SWAP: "compareAndSwap", COMPARE_AND_DELETE: "compareAndDelete",
}


@dataclass(eq=False)
class _Node:
    path: str
    created_index: int
    modified_index: int
    expire_ns: int = 0  # 0: permanent
    value: str = ""
    children: dict[str, _Node] | None = None  # None for a key, a dict for a directory
    parent: _Node | None = field(default=None, repr=False)

    @property
    def is_dir(self) -> bool:
        return self.children is not None

    @property
    def name(self) -> str:
        return split(self.path)[1]

    @property
    def hidden(self) -> bool:
        return self.name.startswith("_")

    def expiration_and_ttl(self, now_ns: int) -> tuple[int, int]:
        if not self.expire_ns:
            return 0, 0
        return self.expire_ns, ttl_seconds(self.expire_ns, now_ns)

    def repr(self, recursive: bool, sorted_: bool, now_ns: int) -> NodeExtern:
        """etcd's node.Repr: a key with its value, or a directory (with children when recursive)."""
        expiration, ttl = self.expiration_and_ttl(now_ns)
        out = NodeExtern(key=self.path, expiration_ns=expiration, ttl=ttl,
                         modified_index=self.modified_index, created_index=self.created_index)
        if self.children is None:
            out.value = self.value
            return out
        out.dir = True
        if recursive:
            out.nodes = self.list_children(recursive, sorted_, now_ns)
        return out

    def list_children(self, recursive: bool, sorted_: bool, now_ns: int) -> list[NodeExtern]:
        assert self.children is not None
        nodes = [c.repr(recursive, sorted_, now_ns) for c in self.children.values() if not c.hidden]
        if sorted_:
            nodes.sort(key=lambda n: n.key)
        return nodes

    def compare(self, prev_value: str, prev_index: int) -> str | None:
        """None when both given conditions hold, else etcd's cause text."""
        index_ok = prev_index == 0 or self.modified_index == prev_index
        value_ok = prev_value == "" or self.value == prev_value
        if index_ok and value_ok:
            return None
        if index_ok:
            return f"[{prev_value} != {self.value}]"
        if value_ok:
            return f"[{prev_index} != {self.modified_index}]"
        return f"[{prev_value} != {self.value}] [{prev_index} != {self.modified_index}]"

    def walk(self) -> Iterator[_Node]:
        yield self
        for child in (self.children or {}).values():
            yield from child.walk()


class V2Store:
    """The v2 tree. `index` is the store index (X-Etcd-Index), bumped once per successful write."""

    def __init__(self) -> None:
        self.root = _Node("/", 0, 0, children={})
        self.index = 0
        self.hub = WatcherHub()
        self.stats: dict[str, int] = dict.fromkeys(STAT_NAMES, 0)
        self._ttl_nodes: set[_Node] = set()

    # ---- reads -------------------------------------------------------------------------------

    def get(self, path: str, recursive: bool = False, sorted_: bool = False, *, now_ns: int) -> Event:
        with self._counted(GET):
            node = self._internal_get(path)
            expiration, ttl = node.expiration_and_ttl(now_ns)
            extern = NodeExtern(key=clean(path), expiration_ns=expiration, ttl=ttl,
                                modified_index=node.modified_index, created_index=node.created_index)
            if node.is_dir:
                extern.dir = True
                extern.nodes = node.list_children(recursive, sorted_, now_ns)
            else:
                extern.value = node.value
            return Event(GET, extern, etcd_index=self.index)

    def watch(self, path: str, recursive: bool = False, stream: bool = False,
              since_index: int = 0) -> Watcher:
        """A watcher for the first event at or after `since_index` (0: the next one)."""
        key = clean(path)
        if since_index == 0:
            since_index = self.index + 1
        return self.hub.watch(key, recursive, stream, since_index, self.index)

    def has_ttl_keys(self) -> bool:
        return bool(self._ttl_nodes)

    def stats_json(self) -> dict[str, int]:
        return {**self.stats, "watchers": self.hub.count}

    # ---- writes ------------------------------------------------------------------------------

    def create(self, path: str, dir_: bool = False, value: str = "", unique: bool = False,
               expire_ns: int = 0, *, now_ns: int) -> Event:
        with self._counted(CREATE):
            event = self._internal_create(path, dir_, value, unique, False, expire_ns, CREATE, now_ns)
            event.etcd_index = self.index
            self.hub.notify(event)
            return event

    def set(self, path: str, dir_: bool = False, value: str = "", expire_ns: int = 0,
            refresh: bool = False, *, now_ns: int) -> Event:
        with self._counted(SET):
            existing: _Node | None = None
            missing: V2Error | None = None
            try:
                existing = self._internal_get(path)
            except V2Error as err:
                if err.code != errors.KEY_NOT_FOUND:
                    raise
                missing = err
            if refresh:
                if existing is None:
                    assert missing is not None
                    raise missing
                value = existing.value
            event = self._internal_create(path, dir_, value, False, True, expire_ns, SET, now_ns)
            event.etcd_index = self.index
            if existing is not None:
                prev = NodeExtern(key=clean(path), modified_index=existing.modified_index,
                                  created_index=existing.created_index)
                prev.expiration_ns, prev.ttl = existing.expiration_and_ttl(now_ns)
                prev.value = existing.value
                event.prev_node = prev
            self._publish(event, refresh)
            return event

    def update(self, path: str, value: str = "", expire_ns: int = 0, refresh: bool = False,
               *, now_ns: int) -> Event:
        with self._counted(UPDATE):
            path = clean(path)
            self._check_writable(path)
            node = self._internal_get(path)
            if node.is_dir and value:
                raise V2Error(errors.NOT_FILE, path, self.index)
            if refresh:
                value = node.value
            next_index = self.index + 1
            event = self._change_event(UPDATE, path, node, next_index, now_ns)
            if node.is_dir:
                # etcd 3.4 leaves a directory's modifiedIndex alone on update (only its TTL changes).
                event.node.dir = True
            else:
                node.value = value
                node.modified_index = next_index
                event.node.value = value
            self._update_ttl(node, expire_ns)
            event.node.expiration_ns, event.node.ttl = node.expiration_and_ttl(now_ns)
            self._publish(event, refresh)
            self.index = next_index
            return event

    def compare_and_swap(self, path: str, prev_value: str = "", prev_index: int = 0, value: str = "",
                         expire_ns: int = 0, refresh: bool = False, *, now_ns: int) -> Event:
        with self._counted(COMPARE_AND_SWAP):
            path = clean(path)
            self._check_writable(path)
            node = self._compared_key(path, prev_value, prev_index)
            if refresh:
                value = node.value
            self.index += 1
            event = self._change_event(COMPARE_AND_SWAP, path, node, self.index, now_ns)
            node.value = value
            node.modified_index = self.index
            self._update_ttl(node, expire_ns)
            event.node.value = value
            event.node.expiration_ns, event.node.ttl = node.expiration_and_ttl(now_ns)
            self._publish(event, refresh)
            return event

    def delete(self, path: str, dir_: bool = False, recursive: bool = False, *, now_ns: int) -> Event:
        with self._counted(DELETE):
            path = clean(path)
            self._check_writable(path)
            dir_ = dir_ or recursive
            node = self._internal_get(path)
            next_index = self.index + 1
            event = self._change_event(DELETE, path, node, next_index, now_ns, with_dir=True)
            self._remove(node, dir_, recursive, self._deleted_callback(event))
            self.index = next_index
            self.hub.notify(event)
            return event

    def compare_and_delete(self, path: str, prev_value: str = "", prev_index: int = 0,
                           *, now_ns: int) -> Event:
        with self._counted(COMPARE_AND_DELETE):
            path = clean(path)
            node = self._compared_key(path, prev_value, prev_index)
            self.index += 1
            event = self._change_event(COMPARE_AND_DELETE, path, node, self.index, now_ns)
            self._remove(node, False, False, self._deleted_callback(event))
            self.hub.notify(event)
            return event

    def delete_expired(self, cutoff_ns: int) -> list[Event]:
        """Remove every node whose expiry is at or before `cutoff_ns`, one `expire` event each."""
        expired: list[Event] = []
        while self._ttl_nodes:
            node = min(self._ttl_nodes, key=lambda n: (n.expire_ns, n.path))
            if node.expire_ns > cutoff_ns:
                break
            self.index += 1
            event = self._change_event(EXPIRE, node.path, node, self.index, cutoff_ns, with_dir=True)
            self._ttl_nodes.discard(node)
            self._remove(node, True, True, self._deleted_callback(event))
            self.stats["expireCount"] += 1
            self.hub.notify(event)
            expired.append(event)
        return expired

    # ---- snapshots ---------------------------------------------------------------------------

    def save(self) -> bytes:
        """The tree, the index and the event history (watchers are not saved), as JSON."""
        state = {
            "version": SNAPSHOT_VERSION,
            "index": self.index,
            "root": _save_node(self.root),
            "history": [_save_event(e) for e in self.hub.history.events],
        }
        return json.dumps(state, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def restore(cls, data: bytes) -> V2Store:
        store = cls()
        store.recover(data)
        return store

    def recover(self, data: bytes) -> None:
        """Replace the tree, index and history with a snapshot's, in place (etcd's Recovery):
        watchers stay registered and see the events applied after the snapshot."""
        state = json.loads(data)
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported v2 store snapshot version {state.get('version')!r}")
        self.index = int(state["index"])
        self.root = _load_node(state["root"], None)
        self._ttl_nodes = {n for n in self.root.walk() if n.expire_ns}
        self.hub.history.events.clear()
        for raw in state["history"]:
            self.hub.history.add(_load_event(raw))

    # ---- internals ---------------------------------------------------------------------------

    class _Counter:
        def __init__(self, store: V2Store, action: str) -> None:
            self.store, self.prefix = store, _STAT_OF_ACTION[action]

        def __enter__(self) -> None:
            return None

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            self.store.stats[self.prefix + ("Fail" if exc is not None else "Success")] += 1

    def _counted(self, action: str) -> V2Store._Counter:
        return V2Store._Counter(self, action)

    def _compared_key(self, path: str, prev_value: str, prev_index: int) -> _Node:
        """The key at `path` when it passes the compare-and-swap/delete conditions."""
        node = self._internal_get(path)
        if node.is_dir:
            raise V2Error(errors.NOT_FILE, path, self.index)
        cause = node.compare(prev_value, prev_index)
        if cause is not None:
            raise V2Error(errors.TEST_FAILED, cause, self.index)
        return node

    @staticmethod
    def _change_event(action: str, path: str, node: _Node, index: int, now_ns: int,
                      with_dir: bool = False) -> Event:
        """An event about an existing node: its new indices, and the node as it was (prevNode)."""
        extern = NodeExtern(key=path, dir=with_dir and node.is_dir, modified_index=index,
                            created_index=node.created_index)
        return Event(action, extern, prev_node=node.repr(False, False, now_ns), etcd_index=index)

    def _publish(self, event: Event, refresh: bool) -> None:
        if refresh:
            event.refresh = True
            self.hub.add(event)
        else:
            self.hub.notify(event)

    def _deleted_callback(self, event: Event) -> Callable[[str], None]:
        return lambda path: self.hub.notify_watchers(event, path, True)

    def _check_writable(self, path: str) -> None:
        if path == "/":
            raise V2Error(errors.ROOT_READ_ONLY, "/", self.index)

    def _internal_get(self, path: str) -> _Node:
        current = self.root
        for name in clean(path).split("/")[1:]:
            if not name:
                break
            if current.children is None:
                raise V2Error(errors.NOT_DIR, current.path, self.index)
            child = current.children.get(name)
            if child is None:
                raise V2Error(errors.KEY_NOT_FOUND, join(current.path, name), self.index)
            current = child
        return current

    def _ensure_dirs(self, dir_path: str) -> _Node:
        """Walk `dir_path`, creating missing directories (etcd's checkDir)."""
        current = self.root
        for name in dir_path.split("/")[1:]:
            if not name:
                break
            assert current.children is not None
            child = current.children.get(name)
            if child is None:
                child = _Node(join(current.path, name), self.index + 1, self.index + 1,
                              children={}, parent=current)
                current.children[name] = child
            elif not child.is_dir:
                raise V2Error(errors.NOT_DIR, child.path, self.index)
            current = child
        return current

    def _internal_create(self, path: str, dir_: bool, value: str, unique: bool, replace: bool,
                         expire_ns: int, action: str, now_ns: int) -> Event:
        next_index = self.index + 1
        if unique:
            path += f"/{next_index:020d}"
        path = clean(path)
        self._check_writable(path)
        if expire_ns < MIN_EXPIRE_NS:
            expire_ns = 0
        dir_name, name = split(path)
        try:
            parent = self._ensure_dirs(dir_name)
        except V2Error:
            # etcd counts a failed walk as a failed set as well, whatever the action.
            self.stats["setsFail"] += 1
            raise
        assert parent.children is not None
        event = Event(action, NodeExtern(key=path, modified_index=next_index, created_index=next_index))
        existing = parent.children.get(name)
        if existing is not None:
            if not replace:
                raise V2Error(errors.NODE_EXIST, path, self.index)
            if existing.is_dir:
                raise V2Error(errors.NOT_FILE, path, self.index)
            event.prev_node = existing.repr(False, False, now_ns)
            self._remove(existing, False, False, None)
        node = _Node(path, next_index, next_index, expire_ns, parent=parent)
        if dir_:
            node.children = {}
            event.node.dir = True
        else:
            node.value = value
            event.node.value = value
        parent.children[name] = node
        if expire_ns:
            self._ttl_nodes.add(node)
            event.node.expiration_ns, event.node.ttl = node.expiration_and_ttl(now_ns)
        self.index = next_index
        return event

    def _remove(self, node: _Node, dir_: bool, recursive: bool,
                callback: Callable[[str], None] | None) -> None:
        if node.children is not None:
            if not dir_:
                raise V2Error(errors.NOT_FILE, node.path, self.index)
            if node.children and not recursive:
                raise V2Error(errors.DIR_NOT_EMPTY, node.path, self.index)
            for child in list(node.children.values()):
                self._remove(child, True, True, callback)
        parent = node.parent
        if parent is not None and parent.children is not None and parent.children.get(node.name) is node:
            del parent.children[node.name]
            if callback is not None:
                callback(node.path)
        self._ttl_nodes.discard(node)

    def _update_ttl(self, node: _Node, expire_ns: int) -> None:
        if expire_ns < MIN_EXPIRE_NS:
            expire_ns = 0
        node.expire_ns = expire_ns
        if expire_ns:
            self._ttl_nodes.add(node)
        else:
            self._ttl_nodes.discard(node)


def _save_node(node: _Node) -> dict[str, Any]:
    out: dict[str, Any] = {"p": node.path, "c": node.created_index, "m": node.modified_index}
    if node.expire_ns:
        out["e"] = node.expire_ns
    if node.children is None:
        out["v"] = node.value
    else:
        out["d"] = [_save_node(c) for c in node.children.values()]
    return out


def _load_node(raw: dict[str, Any], parent: _Node | None) -> _Node:
    node = _Node(raw["p"], int(raw["c"]), int(raw["m"]), int(raw.get("e", 0)),
                 value=raw.get("v", ""), parent=parent)
    if "d" in raw:
        node.children = {}
        for child_raw in raw["d"]:
            child = _load_node(child_raw, node)
            node.children[child.name] = child
    return node


def _save_extern(n: NodeExtern) -> dict[str, Any]:
    out: dict[str, Any] = {"k": n.key, "m": n.modified_index, "c": n.created_index}
    if n.value is not None:
        out["v"] = n.value
    if n.dir:
        out["d"] = True
    if n.expiration_ns:
        out["e"] = n.expiration_ns
        out["t"] = n.ttl
    return out


def _load_extern(raw: dict[str, Any]) -> NodeExtern:
    return NodeExtern(key=raw["k"], value=raw.get("v"), dir=bool(raw.get("d", False)),
                      expiration_ns=int(raw.get("e", 0)), ttl=int(raw.get("t", 0)),
                      modified_index=int(raw["m"]), created_index=int(raw["c"]))


def _save_event(e: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"a": e.action, "n": _save_extern(e.node), "i": e.etcd_index}
    if e.prev_node is not None:
        out["p"] = _save_extern(e.prev_node)
    if e.refresh:
        out["r"] = True
    return out


def _load_event(raw: dict[str, Any]) -> Event:
    prev = raw.get("p")
    return Event(raw["a"], _load_extern(raw["n"]), _load_extern(prev) if prev is not None else None,
                 etcd_index=int(raw["i"]), refresh=bool(raw.get("r", False)))

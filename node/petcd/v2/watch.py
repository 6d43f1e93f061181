"""v2 watches: the event history (last 1000 events) and the hub that hands events to watchers.

Pure: a watcher collects events in a queue; the HTTP shell registers `on_event` to be woken.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from petcd.v2 import errors
from petcd.v2.errors import V2Error
from petcd.v2.events import DELETE, EXPIRE, Event
from petcd.v2.paths import clean

HISTORY_CAPACITY = 1000
# etcd gives each watcher a channel of 100 events; a watcher that falls that far behind is dropped.
WATCHER_BUFFER = 100


class EventHistory:
    def __init__(self, capacity: int = HISTORY_CAPACITY) -> None:
        self.events: deque[Event] = deque(maxlen=capacity)

    @property
    def start_index(self) -> int:
        return self.events[0].index if self.events else 0

    @property
    def last_index(self) -> int:
        return self.events[-1].index if self.events else 0

    def add(self, event: Event) -> None:
        self.events.append(event)

    def scan(self, key: str, recursive: bool, index: int) -> Event | None:
        """The first event at or after `index` that concerns `key`; V2Error 401 when it was dropped."""
        if index < self.start_index:
            raise V2Error(
                errors.EVENT_INDEX_CLEARED,
                f"the requested history has been cleared [{self.start_index}/{index}]",
                0,
            )
        if index > self.last_index:
            return None
        prefix = clean(key)
        if not prefix.endswith("/"):
            prefix += "/"
        for event in self.events:
            if event.index < index or event.refresh:
                continue
            hit = event.node.key == key or (recursive and event.node.key.startswith(prefix))
            prev = event.prev_node
            if event.action in (DELETE, EXPIRE) and prev is not None and prev.dir:
                hit = hit or key.startswith(prev.key)
            if hit:
                return event
        return None


class Watcher:
    def __init__(self, hub: WatcherHub | None, key: str, recursive: bool, stream: bool,
                 since_index: int, start_index: int) -> None:
        self.hub = hub
        self.key = key
        self.recursive = recursive
        self.stream = stream
        self.since_index = since_index
        # The store index when the watch began: the watch response's X-Etcd-Index.
        self.start_index = start_index
        self.events: deque[Event] = deque()
        self.removed = False
        # Set when the watcher fell behind and was dropped; the shell ends the response.
        self.overflowed = False
        self.on_event: Callable[[], None] | None = None

    def deliver(self, event: Event) -> None:
        if len(self.events) >= WATCHER_BUFFER:
            self.overflowed = True
            self.remove()
        else:
            self.events.append(event)
        if self.on_event is not None:
            self.on_event()

    def notify(self, event: Event, original_path: bool, deleted: bool) -> bool:
        if (self.recursive or original_path or deleted) and event.index >= self.since_index:
            self.deliver(event)
            return True
        return False

    def remove(self) -> None:
        if not self.removed and self.hub is not None:
            self.hub.forget(self)
        self.removed = True


def _is_hidden(watch_path: str, key_path: str) -> bool:
    """Whether `key_path` is hidden from a watcher at `watch_path` (a `_` component below it)."""
    if len(watch_path) > len(key_path):
        return False
    return "/_" in clean("/" + key_path[len(watch_path):])


class WatcherHub:
    def __init__(self, capacity: int = HISTORY_CAPACITY) -> None:
        self.history = EventHistory(capacity)
        self.watchers: dict[str, list[Watcher]] = {}

    @property
    def count(self) -> int:
        return sum(len(ws) for ws in self.watchers.values())

    def watch(self, key: str, recursive: bool, stream: bool, index: int, store_index: int) -> Watcher:
        try:
            event = self.history.scan(key, recursive, index)
        except V2Error as err:
            err.index = store_index
            raise
        if event is not None:
            watcher = Watcher(None, key, recursive, stream, index, store_index)
            watcher.events.append(event.with_etcd_index(store_index))
            watcher.removed = True
            return watcher
        watcher = Watcher(self, key, recursive, stream, index, store_index)
        self.watchers.setdefault(key, []).append(watcher)
        return watcher

    def forget(self, watcher: Watcher) -> None:
        ws = self.watchers.get(watcher.key)
        if ws is not None and watcher in ws:
            ws.remove(watcher)
            if not ws:
                del self.watchers[watcher.key]

    def add(self, event: Event) -> None:
        """Record an event without waking anyone (TTL refreshes)."""
        self.history.add(event)

    def notify(self, event: Event) -> None:
        self.history.add(event)
        key = event.node.key
        self.notify_watchers(event, "/", False)
        for i in range(1, len(key)):
            if key[i] == "/":
                self.notify_watchers(event, key[:i], False)
        if len(key) > 1:
            self.notify_watchers(event, key, False)

    def notify_watchers(self, event: Event, path: str, deleted: bool) -> None:
        for watcher in list(self.watchers.get(path, ())):
            original = event.node.key == path
            visible = original or not _is_hidden(path, event.node.key)
            if visible and watcher.notify(event, original, deleted) and not watcher.stream:
                watcher.remove()

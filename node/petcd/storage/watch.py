"""The watch hub: etcd's watchable store and watch streams, as a pure object.

No I/O and no asyncio: every call returns the WatchResponses to send, keyed by stream ID, and the
shell writes them to the streams in that order. Feeding:

- `create`, `cancel`, `request_progress` for a stream's requests;
- `notify(events)` after each committed write batch (the batch's `events`);
- `catch_up()` while `has_unsynced` — watchers that start in the past read the history in bounded
  batches (call it after create and after notify; yield to the event loop between calls);
- `progress_tick()` on the progress-notify interval.

A watcher is *synced* once it has seen every revision up to the current one; live events go only to
synced watchers, and a watcher never gets a revision twice (`next_rev` guards it).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass, field

from petcd.storage.kv import Event, EventType
from petcd.storage.mvcc import MVCCStore

AUTO_WATCH_ID = 0
INVALID_WATCH_ID = -1
DEFAULT_FRAGMENT_SIZE = 1572864 + 512 * 1024  # MaxRequestBytes + 512 KiB, etcd's threshold
ERR_COMPACTED = "etcdserver: mvcc: required revision has been compacted"
ERR_EMPTY_RANGE = "mvcc: watcher range is empty"
ERR_DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream"
_EVENT_OVERHEAD = 32  # bytes of protobuf framing per event and KeyValue, roughly


class FilterType(enum.IntEnum):
    NOPUT = 0
    NODELETE = 1


@dataclass(slots=True)
class WatchCreate:
    key: bytes
    range_end: bytes = b""
    start_revision: int = 0
    progress_notify: bool = False
    filters: tuple[FilterType, ...] = ()
    prev_kv: bool = False
    watch_id: int = AUTO_WATCH_ID
    fragment: bool = False


@dataclass(slots=True)
class WatchResponse:
    watch_id: int
    revision: int  # the response header's revision
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
    fragment: bool = False
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Watcher:
    id: int
    stream: int
    key: bytes
    range_end: bytes  # b"" single key; b"\x00" every key >= key
    next_rev: int  # the first revision not yet delivered
    prev_kv: bool
    no_put: bool
    no_delete: bool
    fragment: bool
    progress_notify: bool
    synced: bool
    had_events: bool = False

    def covers(self, key: bytes) -> bool:
        if not self.range_end:
            return key == self.key
        return self.key <= key and (self.range_end == b"\x00" or key < self.range_end)

    def wants(self, event: Event) -> bool:
        if event.type == EventType.PUT:
            return not self.no_put
        return not self.no_delete


@dataclass(slots=True)
class _Stream:
    watchers: dict[int, _Watcher] = field(default_factory=dict)
    next_id: int = 0
    progress_pending: bool = False


Outbox = dict[int, list[WatchResponse]]


class WatchHub:
    def __init__(
        self, store: MVCCStore, *, fragment_size: int = DEFAULT_FRAGMENT_SIZE, catch_up_events: int = 1000
    ) -> None:
        self.store = store
        self.fragment_size = fragment_size
        self.catch_up_events = catch_up_events
        self._streams: dict[int, _Stream] = {}
        self._next_stream = 1
        self._by_key: dict[bytes, set[_Watcher]] = defaultdict(set)  # synced single-key watchers
        self._ranges: set[_Watcher] = set()  # synced range watchers
        self._unsynced: set[_Watcher] = set()

    # ---- streams -------------------------------------------------------------------------------------

    def open_stream(self) -> int:
        sid = self._next_stream
        self._next_stream += 1
        self._streams[sid] = _Stream()
        return sid

    def close_stream(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            for w in stream.watchers.values():
                self._forget(w)

    @property
    def has_unsynced(self) -> bool:
        return bool(self._unsynced)

    def watcher_count(self) -> int:
        return sum(len(s.watchers) for s in self._streams.values())

    # ---- requests ------------------------------------------------------------------------------------

    def create(self, stream_id: int, req: WatchCreate) -> list[WatchResponse]:
        stream = self._streams[stream_id]
        current = self.store.current_revision
        key = req.key or b"\x00"
        range_end = req.range_end
        if req.start_revision < 0:
            return [WatchResponse(INVALID_WATCH_ID, current, True, True, cancel_reason=ERR_COMPACTED)]
        if range_end not in (b"", b"\x00") and key >= range_end:
            return [WatchResponse(INVALID_WATCH_ID, current, True, True, cancel_reason=ERR_EMPTY_RANGE)]
        wid = req.watch_id
        if wid == AUTO_WATCH_ID:
            while stream.next_id in stream.watchers:
                stream.next_id += 1
            wid = stream.next_id
            stream.next_id += 1
        elif wid in stream.watchers:
            return [WatchResponse(INVALID_WATCH_ID, current, True, True, cancel_reason=ERR_DUPLICATE_ID)]
        start = req.start_revision
        synced = start == 0 or start > current
        w = _Watcher(
            id=wid,
            stream=stream_id,
            key=key,
            range_end=range_end,
            next_rev=current + 1 if start == 0 else start,
            prev_kv=req.prev_kv,
            no_put=FilterType.NOPUT in req.filters,
            no_delete=FilterType.NODELETE in req.filters,
            fragment=req.fragment,
            progress_notify=req.progress_notify,
            synced=synced,
        )
        stream.watchers[wid] = w
        if synced:
            self._add_synced(w)
        else:
            self._unsynced.add(w)
        return [WatchResponse(wid, current, created=True)]

    def cancel(self, stream_id: int, watch_id: int) -> list[WatchResponse]:
        stream = self._streams[stream_id]
        w = stream.watchers.pop(watch_id, None)
        if w is None:
            return []
        self._forget(w)
        return [WatchResponse(watch_id, self.store.current_revision, canceled=True)]

    def request_progress(self, stream_id: int) -> list[WatchResponse]:
        """A WatchProgressRequest: answered (watch_id -1) once every watcher of the stream is synced."""
        stream = self._streams[stream_id]
        if not stream.watchers:
            return []
        if all(w.synced for w in stream.watchers.values()):
            return [WatchResponse(INVALID_WATCH_ID, self.store.current_revision)]
        stream.progress_pending = True
        return []

    # ---- feeding -------------------------------------------------------------------------------------

    def notify(self, events: list[Event]) -> Outbox:
        """Live events of committed revisions (in order) to the synced watchers: one response per watcher
        per revision, as etcd sends them."""
        out: Outbox = defaultdict(list)
        i = 0
        while i < len(events):
            rev = events[i].kv.mod_revision
            j = i
            while j < len(events) and events[j].kv.mod_revision == rev:
                j += 1
            per_watcher: dict[_Watcher, list[Event]] = {}
            for ev in events[i:j]:
                for w in self._watchers_of(ev.kv.key):
                    if w.next_rev <= rev:
                        per_watcher.setdefault(w, []).append(ev)
            for w, evs in sorted(per_watcher.items(), key=_watcher_order):
                w.next_rev = rev + 1
                self._deliver(w, evs, rev, out)
            i = j
        return dict(out)

    def catch_up(self) -> Outbox:
        """Send history to unsynced watchers: at most about `catch_up_events` events in total per call."""
        out: Outbox = defaultdict(list)
        store = self.store
        budget = self.catch_up_events
        for w in sorted(self._unsynced, key=lambda w: (w.stream, w.id)):
            if budget <= 0:
                break
            current = store.current_revision
            if w.next_rev < store.compact_revision:
                self._compacted(w, out)
                continue
            events, nxt = store.history(w.next_rev, current, budget)
            budget -= max(len(events), 1)
            w.next_rev = nxt
            self._deliver(w, [e for e in events if w.covers(e.kv.key)], current, out)
            if nxt > current:
                self._unsynced.discard(w)
                w.synced = True
                self._add_synced(w)
                self._answer_pending_progress(w.stream, out)
        return dict(out)

    def progress_tick(self) -> Outbox:
        """The periodic progress notification for synced watchers with progress_notify and no events."""
        out: Outbox = defaultdict(list)
        current = self.store.current_revision
        for sid, stream in self._streams.items():
            for w in stream.watchers.values():
                if w.progress_notify and w.synced and not w.had_events:
                    out[sid].append(WatchResponse(w.id, current))
                w.had_events = False
        return dict(out)

    # ---- internals -----------------------------------------------------------------------------------

    def _watchers_of(self, key: bytes) -> list[_Watcher]:
        found = list(self._by_key.get(key, ()))
        found.extend(w for w in self._ranges if w.covers(key))
        return found

    def _add_synced(self, w: _Watcher) -> None:
        if w.range_end:
            self._ranges.add(w)
        else:
            self._by_key[w.key].add(w)

    def _forget(self, w: _Watcher) -> None:
        self._unsynced.discard(w)
        self._ranges.discard(w)
        watchers = self._by_key.get(w.key)
        if watchers is not None:
            watchers.discard(w)
            if not watchers:
                del self._by_key[w.key]

    def _compacted(self, w: _Watcher, out: Outbox) -> None:
        stream = self._streams[w.stream]
        stream.watchers.pop(w.id, None)
        self._forget(w)
        compacted = WatchResponse(w.id, 0, canceled=True, compact_revision=self.store.compact_revision)
        out[w.stream].append(compacted)

    def _answer_pending_progress(self, stream_id: int, out: Outbox) -> None:
        stream = self._streams[stream_id]
        if stream.progress_pending and all(w.synced for w in stream.watchers.values()):
            stream.progress_pending = False
            out[stream_id].append(WatchResponse(INVALID_WATCH_ID, self.store.current_revision))

    def _deliver(self, w: _Watcher, events: list[Event], revision: int, out: Outbox) -> None:
        events = [e for e in events if w.wants(e)]
        if not events:
            return
        if w.prev_kv:
            events = [self._with_prev(e) for e in events]
        w.had_events = True
        for chunk, more in self._fragments(w, events):
            out[w.stream].append(WatchResponse(w.id, revision, fragment=more, events=chunk))

    def _with_prev(self, e: Event) -> Event:
        kv = e.kv
        if e.type == EventType.PUT and kv.create_revision == kv.mod_revision:
            return e  # a create has no previous version
        return Event(e.type, kv, self.store.kv_at(kv.key, kv.mod_revision - 1))

    def _fragments(self, w: _Watcher, events: list[Event]) -> list[tuple[list[Event], bool]]:
        sizes = [_event_size(e) for e in events]
        if not w.fragment or len(events) < 2 or sum(sizes) < self.fragment_size:
            return [(events, False)]
        chunks: list[tuple[list[Event], bool]] = []
        cur: list[Event] = []
        cur_size = 0
        for e, size in zip(events, sizes, strict=True):
            if cur and cur_size + size >= self.fragment_size:
                chunks.append((cur, True))
                cur, cur_size = [], 0
            cur.append(e)
            cur_size += size
        chunks.append((cur, False))
        return chunks


def _watcher_order(item: tuple[_Watcher, list[Event]]) -> tuple[int, int]:
    return item[0].stream, item[0].id


def _event_size(e: Event) -> int:
    size = _EVENT_OVERHEAD + len(e.kv.key) + len(e.kv.value)
    if e.prev_kv is not None:
        size += _EVENT_OVERHEAD + len(e.prev_kv.key) + len(e.prev_kv.value)
    return size

"""Checks of recorded watch streams over every key (pure).

Every revision after the first is one write, so a watcher of every key must receive every revision
in order: no gap, no duplicate, all events of one revision in one response, a resumed stream
starting right after the last revision received (or at the compact revision after a compaction),
progress notifications never ahead of the events delivered, and the same events at each revision
for every watcher, matching what the writers were told.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .anomalies import Anomaly
from .watcher import Event, Session


@dataclass(frozen=True)
class Write:
    """An acknowledged write: the revision its response named, and what it did to which key."""

    revision: int
    kind: str  # "PUT" or "DELETE"
    key: str
    value: str = ""


@dataclass
class _Stream:
    """One watcher's events by revision, and where each revision was delivered."""

    name: str
    events: dict[int, list[Event]] = field(default_factory=dict)
    delivered_in: dict[int, tuple[int, int]] = field(default_factory=dict)  # (session, response)
    anomalies: list[Anomaly] = field(default_factory=list)

    def report(self, description: str) -> None:
        self.anomalies.append(Anomaly("watch", f"{self.name}: {description}"))


def check_stream(name: str, sessions: Sequence[Session], first_revision: int) -> _Stream:
    stream = _Stream(name)
    last = first_revision - 1  # the last revision known to be delivered
    restart_at = first_revision  # where the next session must start
    for s, session in enumerate(sessions):
        if session.start_revision != restart_at:
            stream.report(f"session {s} resumed at {session.start_revision}, not at {restart_at}")
        for r, response in enumerate(session.responses):
            if response.kind == "canceled" and response.compact_revision:
                last = max(last, response.compact_revision - 1)  # compacted away: an allowed gap
            elif response.kind == "progress" and response.revision > last:
                stream.report(
                    f"progress notification at {response.revision} in session {s} but events "
                    f"delivered only up to {last}"
                )
            for event in response.events:
                last = _deliver(stream, event, last, (s, r))
        restart_at = last + 1
    return stream


def _deliver(stream: _Stream, event: Event, last: int, where: tuple[int, int]) -> int:
    """Record one event; report how it breaks the order; return the new last revision."""
    seen_here = stream.events.get(event.revision, [])
    duplicate = any(e.key == event.key for e in seen_here)
    if duplicate:
        stream.report(f"duplicate event {event} (session {where[0]})")
        return max(last, event.revision)
    if event.revision < last:
        stream.report(f"event {event} after revision {last} (out of order)")
    elif event.revision == last and stream.delivered_in.get(event.revision, where) != where:
        stream.report(f"revision {event.revision} split across responses ({event})")
    elif event.revision > last + 1:
        stream.report(f"gap: revisions {last + 1}..{event.revision - 1} never delivered (next {event})")
    stream.events.setdefault(event.revision, []).append(event)
    stream.delivered_in.setdefault(event.revision, where)
    return max(last, event.revision)


def _summary(events: list[Event]) -> list[tuple[str, str, str]]:
    return sorted((e.kind, e.key, e.value) for e in events)


def check_watches(
    watchers: Sequence[Sequence[Session]], first_revision: int, writes: Sequence[Write]
) -> list[Anomaly]:
    """Every anomaly of the watchers' streams, of their agreement, and against acknowledged writes."""
    streams = [check_stream(f"watcher {n}", sessions, first_revision) for n, sessions in enumerate(watchers)]
    anomalies = [a for stream in streams for a in stream.anomalies]
    reference: dict[int, tuple[str, list[tuple[str, str, str]]]] = {}
    for stream in streams:
        for revision, events in stream.events.items():
            mine = _summary(events)
            other = reference.setdefault(revision, (stream.name, mine))
            if other[1] != mine:
                anomalies.append(
                    Anomaly(
                        "watch", f"revision {revision}: {other[0]} got {other[1]}, {stream.name} got {mine}"
                    )
                )
    for write in writes:
        expected = (write.kind, write.key, write.value)
        for stream in streams:
            delivered = stream.events.get(write.revision)
            if delivered is not None and expected not in _summary(delivered):
                anomalies.append(
                    Anomaly(
                        "watch", f"{stream.name}: acknowledged {write} missing from revision {write.revision}"
                    )
                )
    return anomalies

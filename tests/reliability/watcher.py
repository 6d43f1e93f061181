"""Watch streams over every key, recorded response by response, resumed after each disconnect.

A watcher asks for progress notifications and resumes, after a broken, refused or silent stream,
at the revision after the last one it knows it has (the last event's, or the last progress
notification's), as etcd's clientv3 does; after a compaction it restarts at the compact revision.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from petcd.proto import kv_pb2, rpc_pb2

from .client import REQUIRE_LEADER, Connections
from .workload import Worker

ALL_KEYS = b"\0"  # key and range end "\0": every key


@dataclass(frozen=True)
class Event:
    revision: int
    kind: str  # "PUT" or "DELETE"
    key: str
    value: str


@dataclass(frozen=True)
class Response:
    kind: str  # "created", "events", "progress" or "canceled"
    revision: int  # the header's revision
    events: tuple[Event, ...] = ()
    compact_revision: int = 0


@dataclass
class Session:
    """One watch stream: where it started, what it answered, why it ended."""

    member: str
    start_revision: int
    responses: list[Response] = field(default_factory=list)
    end: str = ""


def decode(response: rpc_pb2.WatchResponse) -> Response:
    events = tuple(
        Event(
            e.kv.mod_revision,
            "DELETE" if e.type == kv_pb2.Event.DELETE else "PUT",
            e.kv.key.decode(),
            e.kv.value.decode(),
        )
        for e in response.events
    )
    if response.created:
        kind = "created"
    elif response.canceled:
        kind = "canceled"
    elif events:
        kind = "events"
    else:
        kind = "progress"
    return Response(kind, response.header.revision, events, response.compact_revision)


def resume_revision(session: Session, default: int) -> int:
    """Where the next stream starts after `session` (which started at or after `default`)."""
    known = session.start_revision - 1
    for response in session.responses:
        if response.kind == "canceled" and response.compact_revision:
            return response.compact_revision
        if response.kind == "events":
            known = max(known, response.events[-1].revision)
        elif response.kind == "progress":
            known = max(known, response.revision)
    return max(known + 1, default)


class WatchRecorder(Worker):
    """Watches every key from `start_revision` on, one session per stream, until stopped."""

    def __init__(
        self,
        number: int,
        connections: Connections,
        start_revision: int,
        stop: threading.Event,
        silent_after: float = 5.0,
    ):
        super().__init__(f"watch-{number}", connections, seed=30_000 + number, stop=stop)
        self.next_revision = start_revision
        self.silent_after = silent_after  # seconds without a response: the member is gone
        self.sessions: list[Session] = []

    def step(self) -> None:
        session = Session(self.stubs.target, self.next_revision)
        self.sessions.append(session)
        self.watch(session)
        self.next_revision = resume_revision(session, self.next_revision)
        self.failed_over()
        # back off while streams keep ending before the server even accepted the watch
        accepted = any(r.kind == "created" for r in session.responses)
        self.errors_in_a_row = 0 if accepted else self.errors_in_a_row + 1
        self.stop.wait(min(1.0, 0.1 * (1 + self.errors_in_a_row)))

    def watch(self, session: Session) -> None:
        create = rpc_pb2.WatchCreateRequest(
            key=ALL_KEYS, range_end=ALL_KEYS, start_revision=session.start_revision, progress_notify=True
        )
        requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        requests.put(rpc_pb2.WatchRequest(create_request=create))

        def outgoing() -> Iterator[rpc_pb2.WatchRequest]:
            while (request := requests.get()) is not None:
                yield request

        stream = self.stubs.watch.Watch(outgoing(), metadata=REQUIRE_LEADER)
        heard = [time.monotonic()]
        finished = threading.Event()

        def watchdog() -> None:
            while not finished.wait(0.25):
                if self.stop.is_set() or time.monotonic() - heard[0] > self.silent_after:
                    stream.cancel()
                    return

        guard = threading.Thread(target=watchdog, name=f"{self.name}-watchdog", daemon=True)
        guard.start()
        try:
            for raw in stream:
                heard[0] = time.monotonic()
                response = decode(raw)
                session.responses.append(response)
                self.counts[f"{response.kind} responses"] += 1
                self.counts["events"] += len(response.events)
                if response.kind == "canceled":
                    session.end = "canceled"
                    break
            else:
                session.end = "closed by the server"
        except grpc.RpcError as error:
            call = error if isinstance(error, grpc.Call) else None
            code = call.code().name if call else "error"
            session.end = f"{code}: {call.details() if call else error}"
            self.counts[f"end {code}"] += 1
        finally:
            finished.set()
            requests.put(None)
            stream.cancel()
            guard.join(timeout=5)

"""etcdserverpb.Watch: one bidirectional stream multiplexing many watchers (etcd's watchServer)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from petcd.api import convert, errors
from petcd.api.rpc import Context, requires_leader
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc
from petcd.storage.watch import FilterType, WatchCreate, WatchResponse

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer
    from petcd.server.watch_stream import WatchDispatcher

NO_LEADER_CHECK_SECONDS = 1.0


def create_from_pb(c: pb.WatchCreateRequest) -> WatchCreate:
    return WatchCreate(
        key=c.key,
        range_end=c.range_end,
        start_revision=c.start_revision,
        progress_notify=c.progress_notify,
        filters=tuple(FilterType(f) for f in c.filters if f in (0, 1)),
        prev_kv=c.prev_kv,
        watch_id=c.watch_id,
        fragment=c.fragment,
    )


class WatchService(rpc_pb2_grpc.WatchServicer):
    def __init__(self, server: EtcdServer, dispatcher: WatchDispatcher) -> None:
        self.server = server
        self.dispatcher = dispatcher

    def _to_pb(self, r: WatchResponse) -> pb.WatchResponse:
        return pb.WatchResponse(
            header=self.server.header(r.revision),
            watch_id=r.watch_id,
            created=r.created,
            canceled=r.canceled,
            compact_revision=r.compact_revision,
            cancel_reason=r.cancel_reason,
            fragment=r.fragment,
            events=[convert.event_to_pb(e) for e in r.events],
        )

    async def Watch(
        self, request_iterator: AsyncIterator[pb.WatchRequest], context: Context
    ) -> AsyncIterator[pb.WatchResponse]:
        if requires_leader(context) and self.server.leader_id == 0:
            await errors.abort_with(context, errors.NO_LEADER)
        if self.server.is_learner:
            await errors.abort_with(context, errors.NOT_SUPPORTED_FOR_LEARNER)
        sid, queue = self.dispatcher.open()
        reader = asyncio.get_running_loop().create_task(self._read(sid, request_iterator))
        leader_required = requires_leader(context)
        get: asyncio.Future[WatchResponse] | None = None
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {get, reader}, timeout=NO_LEADER_CHECK_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                if get in done:
                    yield self._to_pb(get.result())
                    continue
                get.cancel()
                if reader in done:
                    return  # the client closed its side
                if leader_required and self.server.leader_id == 0:
                    await errors.abort_with(context, errors.NO_LEADER)
        finally:
            # The client going away cancels this generator inside asyncio.wait: the pending get
            # must not be left to the garbage collector ("Task was destroyed but it is pending").
            if get is not None:
                get.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self.dispatcher.close(sid)

    async def _read(self, sid: int, requests: AsyncIterator[pb.WatchRequest]) -> None:
        async for req in requests:
            which = req.WhichOneof("request_union")
            if which == "create_request":
                self.dispatcher.create(sid, create_from_pb(req.create_request))
            elif which == "cancel_request":
                self.dispatcher.cancel(sid, req.cancel_request.watch_id)
            elif which == "progress_request":
                self.dispatcher.request_progress(sid)

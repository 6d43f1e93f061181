"""Start a member from a validated Config and serve until SIGTERM/SIGINT (etcd's embed.StartEtcd).

Order: open the backend (LMDB), recover Raft's log from the snapshot + WAL (or bootstrap a new one),
build the RawNode and the server, start the peer transport and the Ready loop, then the client
listeners; READY=1 to systemd once clients are served. SIGTERM stops the listeners, the loop, the
transport, and closes the WAL and the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlsplit

import uvloop
from aiohttp import web

from petcd import notify
from petcd.api import errors
from petcd.api import http as client_http
from petcd.api.errors import EtcdError
from petcd.api.grpc_server import build_grpc_server
from petcd.api.mux import ClientListener
from petcd.cancellation import cancel_and_wait
from petcd.config import Config, ConfigError
from petcd.log import get_logger
from petcd.metrics import Metrics
from petcd.proto import rpc_pb2 as pb
from petcd.raft.node import Config as RaftConfig
from petcd.raft.node import RawNode
from petcd.raft.storage import MemoryStorage
from petcd.raft.types import ConfState, Message, MessageType, Role, Snapshot, SnapshotMetadata
from petcd.security.setup import client_port_tls
from petcd.server import bootstrap, snapshot_data
from petcd.server.apply import StateMachine
from petcd.server.background import Background
from petcd.server.compactor import AutoCompactor
from petcd.server.etcdserver import CLUSTER_VERSION, SERVER_VERSION, EtcdServer, ServerSettings
from petcd.server.membership import Membership
from petcd.server.raft_loop import RaftLoop
from petcd.server.v2_backend import ServerV2Backend
from petcd.server.watch_stream import WatchDispatcher
from petcd.storage.disk import RaftDisk
from petcd.storage.mvcc import MVCCStore
from petcd.storage.wal import WalMetadata
from petcd.storage.watch import WatchHub
from petcd.transport.listener import PeerListener
from petcd.transport.peer_http import (
    ClusterInfoError,
    MemberInfo,
    PromoteError,
    build_peer_app,
    promote_on_peer,
)
from petcd.transport.transport import Transport
from petcd.v2.http import add_v2_routes
from petcd.v2.store import V2Store

log = get_logger("server")

SNAPSHOT_CATCH_UP_ENTRIES = 5000  # etcd keeps this many entries behind a snapshot for slow followers
METRICS_REFRESH_SECONDS = 1.0


def settings_from(config: Config, member: int) -> ServerSettings:
    return ServerSettings(
        name=config.name,
        member_id=member,
        client_urls=tuple(config.advertise_client_urls),
        heartbeat_seconds=config.heartbeat_interval / 1000,
        election_seconds=config.election_timeout / 1000,
        max_request_bytes=config.max_request_bytes,
        max_txn_ops=config.max_txn_ops,
        quota_backend_bytes=config.effective_quota_backend_bytes,
    )


def grpc_socket_path(cfg: Config) -> str:
    """The private unix socket the client port splices gRPC into, named after this process: a name
    built from the client URL collided when members listening on the same 0.0.0.0:2379 in different
    network namespaces of one host (the test kubelet's pods) shared /tmp, and every client port then
    spliced into the last member's gRPC server. Not in the data dir, which tools copy as files.
    uvloop cannot connect to abstract sockets, hence a file; a clean stop removes it."""
    return os.path.join(tempfile.gettempdir(), f"petcd-{os.getuid()}-{os.getpid()}.grpc.sock")


def min_lease_ttl(cfg: Config) -> int:
    """etcd: ceil(1.5 × election timeout) in seconds."""
    return max(1, -(-(3 * cfg.election_timeout) // 2000))


class _Health:
    """What petcd.api.http asks the server (its HealthSource)."""

    def __init__(self, member: Member) -> None:
        self._m = member

    def leader_id(self) -> int:
        return self._m.server.leader_id

    def alarms(self) -> Sequence[str]:
        return [pb.AlarmType.Name(a.alarm) for a in self._m.server.state.alarm_list()]

    def is_learner(self) -> bool:
        return self._m.server.member_id in self._m.server.conf_state.learners

    async def read_probe(self, serializable: bool) -> None:
        try:
            await self._m.server.range(pb.RangeRequest(key=b"health", keys_only=True, limit=1,
                                                       serializable=serializable))
        except EtcdError as exc:
            raise RuntimeError(exc.message) from None

    def versions(self) -> tuple[str, str]:
        return SERVER_VERSION, CLUSTER_VERSION


class _PeerInfo:
    """What the peer port's /members and /version ask."""

    def __init__(self, member: Member) -> None:
        self._m = member

    def cluster_id(self) -> int:
        return self._m.server.cluster_id

    def members(self) -> Sequence[MemberInfo]:
        return [
            MemberInfo(m.id, m.peer_urls, m.name, m.client_urls, m.is_learner)
            for m in self._m.server.state.membership.sorted_members()
        ]

    def versions(self) -> tuple[str, str]:
        return SERVER_VERSION, CLUSTER_VERSION


class Member:
    """One running member: every part, started and stopped in order."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics(SERVER_VERSION)
        self.stopped = asyncio.Event()
        self._client_listeners: list[ClientListener] = []
        self._peer_listeners: list[PeerListener] = []
        self._runners: list[web.AppRunner] = []
        self._metrics_listeners: client_http.MetricsListeners | None = None
        self.grpc_socket = grpc_socket_path(config)
        self._snapshot_index = 0
        self._background = Background()
        self.exit_code = 0
        self._founders: tuple[int, ...] = ()  # set when this start founds a new cluster
        self._grpc_started = False

    # ---- recovery / bootstrap ---------------------------------------------------------------------

    async def _open_state(self) -> tuple[StateMachine, MemoryStorage, int]:
        """Returns the state machine, Raft's storage and the applied index Raft restarts from."""
        cfg = self.config
        # Decided before anything is written: a refused start leaves the data dir as it was.
        founding = None if RaftDisk.exists(cfg.wal_path) else await bootstrap.plan(cfg)
        self.store = MVCCStore.open(cfg.snap_path / "db", min_lease_ttl=min_lease_ttl(cfg), sync=False)
        state = StateMachine(
            self.store, Membership(0), 0, lambda rev: self.server.header(rev), time.monotonic
        )
        if founding is None:
            return self._restart(state)
        return self._found(state, founding)

    def _restart(self, state: StateMachine) -> tuple[StateMachine, MemoryStorage, int]:
        cfg = self.config
        self.disk, rec = RaftDisk.open(cfg.wal_path, cfg.snap_path)
        if not state.load():
            raise ConfigError(f"member data in {cfg.effective_data_dir} has a WAL but no membership")
        state.member_id = rec.metadata.node_id
        initial = state.initial_conf_state()
        raft_storage = MemoryStorage(initial)
        applied = 0
        if rec.snapshot is not None:
            raft_storage.apply_snapshot(rec.snapshot)
            v2_data = snapshot_data.unpack(rec.snapshot.data).v2_store
            if v2_data:
                state.v2 = V2Store.restore(v2_data)
            applied = self._snapshot_index = rec.snapshot.metadata.index
            initial = rec.snapshot.metadata.conf_state
        entries, hard_state = rec.entries, rec.hard_state
        if cfg.force_new_cluster:
            entries, appended, hard_state = bootstrap.force_new_cluster(
                initial, entries, hard_state, state.member_id
            )
            self.disk.save(hard_state, appended, True)
            entries = [*entries, *appended]
            log.warn("forcing restart member", **{"member-id": f"{state.member_id:x}",
                                                  "commit-index": hard_state.commit})
        raft_storage.set_hard_state(hard_state)
        raft_storage.append(entries)
        log.info("restarting member", **{"member-id": f"{state.member_id:x}",
                                          "commit-index": hard_state.commit,
                                          "applied-index": self.store.consistent_index})
        return state, raft_storage, applied

    def _found(self, state: StateMachine, founding: bootstrap.Plan
               ) -> tuple[StateMachine, MemoryStorage, int]:
        """A member with no data: record its membership; the founders' configuration goes into the
        log with RawNode.bootstrap once the node exists (a joining member learns it from the log)."""
        cfg = self.config
        state.membership = founding.membership
        state.member_id = me = founding.member_id
        self._founders = founding.founders
        with self.store.batch() as batch:
            state.save_membership(batch)
            state.save_initial_conf_state(batch, ConfState())
        self.disk = RaftDisk.create(cfg.wal_path, cfg.snap_path, WalMetadata(me, state.membership.cluster_id))
        log.info("bootstrapping member", **{"member-id": f"{me:x}",
                                            "cluster-id": f"{state.membership.cluster_id:x}"})
        return state, MemoryStorage(), 0

    # ---- start / stop -----------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        state, raft_storage, applied = await self._open_state()
        member = state.member_id
        node = RawNode(
            RaftConfig(
                id=member,
                storage=raft_storage,
                applied=applied,
                election_tick=cfg.election_ticks,
                heartbeat_tick=1,
                pre_vote=cfg.pre_vote,
                check_quorum=True,
                rng=random.Random(member ^ time.time_ns()),
            )
        )
        if self._founders:
            node.bootstrap(self._founders, bootstrap.founding_contexts(state.membership))
        self.server = EtcdServer(settings_from(cfg, member), node, raft_storage, state)
        self.hub = WatchDispatcher(WatchHub(self.store), cfg.experimental_watch_progress_notify_interval)
        self.server.on_events = self.hub.on_events
        self.server.on_removed = self._removed
        self.server.on_membership_changed = self._sync_peers
        self.server.on_leader_change = lambda leader: self.metrics.leader_changes_seen.inc()
        self.server.forward_promote = self._forward_promote
        self.transport = Transport(member, state.membership.cluster_id, self, metrics=self.metrics)
        self.server.is_peer_active = self.transport.is_active
        self._sync_peers()
        self.loop = RaftLoop(node, raft_storage, self.disk, self._send, self.server, self._persist_snapshot,
                             cfg.heartbeat_interval / 1000, after_round=self._after_round,
                             on_failure=self._failed)
        self.server.poke = self.loop.poke
        await self._start_peer_listeners()
        self.hub.start()
        self.loop.start()
        self.server.start()
        if self._founders == (member,):
            node.campaign()  # a lone voter need not wait out an election timeout
            self.loop.poke()
        self._background.spawn(self._serve_clients_once_published())
        self._background.spawn(self._metrics_loop())
        mode, retention = cfg.auto_compaction
        if retention > 0:
            compactor = AutoCompactor(mode, retention, lambda: self.store.current_revision,
                                      lambda: self.server.role == Role.LEADER, self._compact)
            self._background.spawn(compactor.run())

    async def _serve_clients_once_published(self) -> None:
        """etcd serves clients only once the member has published itself through Raft (ReadyNotify):
        a member that cannot reach a quorum of its cluster (e.g. a stranger with another cluster ID)
        must not answer clients with its own view of the cluster."""
        await self.server.published.wait()
        try:
            await self._start_client_listeners()
        except OSError as exc:
            log.error("failed to serve client requests", error=str(exc))
            self.exit_code = 1
            self.stopped.set()
            return
        with contextlib.suppress(OSError):
            notify.ready(dict(os.environ))
        log.info("ready to serve client requests", name=self.config.name)

    async def _start_peer_listeners(self) -> None:
        runner = web.AppRunner(build_peer_app(_PeerInfo(self), self._promote_for_peer), access_log=None)
        await runner.setup()
        self._runners.append(runner)
        for url in self.config.listen_peer_urls:
            parts = urlsplit(url)
            listener = PeerListener(self.transport, parts.hostname or "", parts.port or 2380, runner.server)
            await listener.start()
            self._peer_listeners.append(listener)

    async def _start_client_listeners(self) -> None:
        cfg = self.config
        self.server.state.auth.configure(cfg.bcrypt_cost, cfg.auth_token_ttl)
        tls = client_port_tls(cfg)
        self.grpc = build_grpc_server(
            self.server, self.hub, cfg.max_request_bytes, tls.identities, tls.client_cert_auth
        )
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.grpc_socket)  # left behind by a killed predecessor
        self.grpc.add_insecure_port(f"unix:{self.grpc_socket}")
        await self.grpc.start()
        self._grpc_started = True
        app = web.Application()
        client_http.add_routes(app, _Health(self), self.metrics)
        if cfg.enable_v2:
            v2 = ServerV2Backend(self.server)
            add_v2_routes(app, v2)
            self._background.spawn(v2.sync_loop())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        assert runner.server is not None
        for url in cfg.listen_client_urls:
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port or 2379
            listener = ClientListener(
                host, port, self.grpc_socket, runner.server, tls.for_url(url), tls.identities
            )
            await listener.start()
            self._client_listeners.append(listener)
        if cfg.listen_metrics_urls:
            self._metrics_listeners = client_http.MetricsListeners(
                client_http.build_app(_Health(self), self.metrics), cfg.listen_metrics_urls
            )
            await self._metrics_listeners.start()

    async def stop(self) -> None:
        await self._background.stop()
        for listener in self._client_listeners:
            await listener.stop()
        if self._metrics_listeners is not None:
            await self._metrics_listeners.stop()
        if self._grpc_started:
            await self.grpc.stop(1.0)
        await self.server.stop()
        await self.hub.stop()
        await self.loop.stop()
        for peer_listener in self._peer_listeners:
            await peer_listener.stop()
        await self.transport.stop()
        for runner in self._runners:
            await runner.cleanup()
        self.disk.close()
        self.store.backend.sync()
        self.store.close()
        with contextlib.suppress(OSError):
            os.unlink(self.grpc_socket)

    async def _forward_promote(self, learner_id: int) -> list[pb.Member]:
        """A follower's MemberPromote: the leader decides, asked over its peer port (etcd's way)."""
        leader = self.server.state.membership.members.get(self.server.leader_id)
        if leader is None:
            raise errors.NO_LEADER
        try:
            infos = await promote_on_peer(leader.peer_urls, learner_id)
        except PromoteError as exc:
            raise errors.by_message(exc.message) from None
        except ClusterInfoError:
            raise errors.TIMEOUT from None
        return [
            pb.Member(ID=i.id, name=i.name, peerURLs=i.peer_urls, clientURLs=i.client_urls,
                      isLearner=i.is_learner)
            for i in infos
        ]

    async def _promote_for_peer(self, learner_id: int) -> Sequence[MemberInfo]:
        """The leader's side of a forwarded MemberPromote (404 unknown member, 412 refused)."""
        if self.server.role != Role.LEADER:
            raise PromoteError(412, errors.NOT_LEADER.message)
        try:
            members = await self.server.promote_as_leader(learner_id)
        except errors.EtcdError as exc:
            raise PromoteError(404 if exc == errors.MEMBER_NOT_FOUND else 412, exc.message) from None
        return [
            MemberInfo(m.ID, tuple(m.peerURLs), m.name, tuple(m.clientURLs), m.isLearner) for m in members
        ]

    def _failed(self, exc: BaseException) -> None:
        """A failed fsync or apply leaves the member's state unknown: stop, as etcd panics."""
        self.exit_code = 1
        self.stopped.set()

    def _removed(self) -> None:
        log.warn("the member has been permanently removed from the cluster")
        data_dir = str(self.config.effective_data_dir)
        log.warn("data-dir used by this member must be removed", **{"data-dir": data_dir})
        asyncio.get_running_loop().call_later(1.0, self.stopped.set)

    # ---- transport Handler ------------------------------------------------------------------------

    def process(self, message: Message) -> None:
        self.loop.step(message)

    def report_unreachable(self, peer_id: int) -> None:
        self.server.node.report_unreachable(peer_id)

    def report_snapshot(self, peer_id: int, ok: bool) -> None:
        self.server.node.report_snapshot(peer_id, ok)
        self.loop.poke()

    def is_removed(self, peer_id: int) -> bool:
        return peer_id in self.server.state.membership.removed

    def removed_from_cluster(self) -> None:
        self._removed()

    def _sync_peers(self) -> None:
        membership = self.server.state.membership
        for m in membership.members.values():
            if m.id != self.server.member_id:
                self.transport.add_peer(m.id, m.peer_urls)
        for peer_id in list(self.transport.peers):
            if peer_id not in membership.members:
                self.transport.remove_peer(peer_id)

    # ---- sending, snapshots -----------------------------------------------------------------------

    def _send(self, messages: Sequence[Message]) -> None:
        out = []
        for m in messages:
            if m.type == MessageType.MsgSnap and m.snapshot is not None:
                # A follower too far behind gets the whole backend, described as applied now (index,
                # term, configuration), as etcd's merged snapshot message: the stored snapshot's
                # configuration predates members added since, and they would refuse it.
                state = self.server.state
                store = self.store
                metadata = SnapshotMetadata(store.consistent_index, store.term, self.server.conf_state)
                data = snapshot_data.SnapshotData(state.membership.to_json(), state.v2.save(),
                                                  store.backend.snapshot_bytes())
                m = replace(m, snapshot=Snapshot(metadata, snapshot_data.pack(data)))
            out.append(m)
        self.transport.send(out)

    def _persist_snapshot(self, snap: Snapshot) -> Snapshot:
        """A snapshot from the leader: install its backend, then record it; returns the local copy."""
        data = snapshot_data.unpack(snap.data)
        if data.backend:
            self.store.restore_snapshot(data.backend)
            self.server.state.load()
            self.hub.hub.store = self.store
        self.server.state.v2 = V2Store.restore(data.v2_store) if data.v2_store else V2Store()
        local = replace(snap, data=snapshot_data.pack(replace(data, backend=b"")))
        self.disk.save_snapshot(local)
        self._snapshot_index = snap.metadata.index
        return local

    async def _after_round(self) -> None:
        applied = self.server.applied.index
        if applied - self._snapshot_index <= self.config.snapshot_count:
            return
        self.store.backend.sync()  # the WAL below this index goes away: the backend must be durable
        state = self.server.state
        data = snapshot_data.SnapshotData(state.membership.to_json(), state.v2.save())
        snap = self.loop.storage.create_snapshot(applied, self.server.conf_state, snapshot_data.pack(data))
        self.disk.save_snapshot(snap)
        self._snapshot_index = applied
        compact_to = applied - SNAPSHOT_CATCH_UP_ENTRIES
        if compact_to > self.loop.storage.first_index():
            self.loop.storage.compact(compact_to)
        log.info("saved snapshot", **{"snapshot-index": applied})

    async def _compact(self, revision: int) -> None:
        await self.server.compact(pb.CompactionRequest(revision=revision))

    async def _metrics_loop(self) -> None:
        m = self.metrics
        backend = self.store.backend
        while True:
            m.has_leader.set(1 if self.server.leader_id else 0)
            m.is_leader.set(1 if self.server.role == Role.LEADER else 0)
            m.proposals_committed.set(self.server.committed_index)
            m.proposals_applied.set(self.server.applied.index)
            m.db_total_size.set(backend.size())
            m.current_revision.set(self.store.current_revision)
            m.compact_revision.set(max(self.store.compact_revision, 0))
            m.watchers.set(self.hub.hub.watcher_count())
            await asyncio.sleep(METRICS_REFRESH_SECONDS)


async def serve(config: Config) -> int:
    member = Member(config)
    await member.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, member.stopped.set)
    await member.stopped.wait()
    with contextlib.suppress(OSError):
        notify.stopping(dict(os.environ))
    log.info("stopping member", name=config.name)
    await member.stop()
    # Anything a part left running is cancelled here within a bound: the event loop's own shutdown
    # cancels once and then waits without limit.
    current = asyncio.current_task()
    await cancel_and_wait(t for t in asyncio.all_tasks() if t is not current)
    return member.exit_code


def run(config: Config) -> int:
    # uvloop: the client port's splice into gRPC costs next to nothing on it (about half of a
    # request's server CPU on the default loop; see tests/node/clients/mux_cost.py).
    return uvloop.run(serve(config))

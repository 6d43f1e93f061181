"""Applying committed Raft entries to the state machine (etcd's applierV3), deterministically.

One LMDB write batch per Ready: every entry's effect, the consistent index, membership and alarms
commit together, so a restart neither loses nor re-applies an entry. A client error (lease not found,
compacted, ...) is the entry's result, not a failure: the entry is still applied.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from petcd.api import convert, errors
from petcd.auth.apply import apply_auth, is_auth_request
from petcd.auth.checks import check_applied
from petcd.auth.store import AuthStore
from petcd.log import get_logger
from petcd.proto import raft_internal_pb2 as ipb
from petcd.proto import rpc_pb2 as pb
from petcd.raft.types import ConfChange, ConfChangeType, ConfState, Entry, EntryType, decode_conf_change
from petcd.server.membership import Member, Membership
from petcd.storage.errors import StorageError
from petcd.storage.kv import Event
from petcd.storage.mvcc import MVCCStore, WriteBatch
from petcd.v2 import request as v2request
from petcd.v2.store import V2Store

log = get_logger("server")

MEMBERSHIP_KEY = b"membership"
INITIAL_CONF_KEY = b"initial_conf_state"
ALARMS_KEY = b"alarms"

HeaderFactory = Callable[[int], pb.ResponseHeader]


@dataclass(slots=True)
class Outcome:
    """What applying one entry produced for the member that proposed it."""

    request_id: int
    result: Any  # a response message, or an EtcdError


@dataclass(slots=True)
class ApplyBatchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    conf_state: ConfState | None = None
    removed_self: bool = False


class StateMachine:
    def __init__(
        self,
        store: MVCCStore,
        membership: Membership,
        member_id: int,
        header: HeaderFactory,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.membership = membership
        self.member_id = member_id
        self._header = header
        self._clock = clock
        self.alarms: set[tuple[int, int]] = set()  # (member ID, AlarmType)
        # The v2 store lives in memory: rebuilt from the Raft snapshot plus every later entry.
        self.v2 = V2Store()
        self.auth = AuthStore(store.backend, clock)

    # ---- persisted membership and alarms -------------------------------------------------------------

    def load(self) -> bool:
        """Read membership and alarms from the backend; False if the backend has none (a new member)."""
        backend = self.store.backend
        with backend.read() as txn:
            raw_members = txn.get(MEMBERSHIP_KEY, db=backend.db("members"))
            raw_alarms = txn.get(ALARMS_KEY, db=backend.db("alarm"))
        if raw_alarms is not None:
            self.alarms = {(m, a) for m, a in json.loads(raw_alarms)}
        self.auth.load()
        if raw_members is None:
            return False
        self.membership = Membership.from_json(raw_members)
        return True

    def save_membership(self, batch: WriteBatch) -> None:
        batch.lmdb_txn.put(MEMBERSHIP_KEY, self.membership.to_json(), db=self.store.backend.db("members"))

    def save_initial_conf_state(self, batch: WriteBatch, conf: ConfState) -> None:
        """Raft's configuration as of index 0, needed to replay the log when there is no snapshot."""
        raw = json.dumps({"voters": list(conf.voters), "learners": list(conf.learners)}).encode()
        batch.lmdb_txn.put(INITIAL_CONF_KEY, raw, db=self.store.backend.db("members"))

    def initial_conf_state(self) -> ConfState:
        backend = self.store.backend
        with backend.read() as txn:
            raw = txn.get(INITIAL_CONF_KEY, db=backend.db("members"))
        if raw is None:
            return ConfState(voters=self.membership.voters(), learners=self.membership.learners())
        conf = json.loads(raw)
        return ConfState(voters=tuple(conf["voters"]), learners=tuple(conf["learners"]))

    def _save_alarms(self, batch: WriteBatch) -> None:
        raw = json.dumps(sorted(self.alarms)).encode()
        batch.lmdb_txn.put(ALARMS_KEY, raw, db=self.store.backend.db("alarm"))

    def has_alarm(self, alarm: int) -> bool:
        return any(a == alarm for _, a in self.alarms)

    # ---- entries ---------------------------------------------------------------------------------------

    def apply(
        self, entries: Sequence[Entry], apply_conf_change: Callable[[ConfChange], ConfState]
    ) -> ApplyBatchResult:
        out = ApplyBatchResult()
        with self.store.batch() as batch:
            for entry in entries:
                if not batch.applies(entry.index):
                    # Already in the backend; what is not persisted with it is replayed.
                    if entry.type == EntryType.CONF_CHANGE:
                        out.conf_state = apply_conf_change(decode_conf_change(entry.data))
                    elif entry.data:
                        self._replay_v2(entry)
                    continue
                if entry.type == EntryType.CONF_CHANGE:
                    self._apply_conf_change(batch, entry, apply_conf_change, out)
                elif entry.data:
                    self._apply_request(batch, entry, out)
                batch.set_applied(entry.index, entry.term)
            out.events = batch.events
        return out

    def _apply_request(self, batch: WriteBatch, entry: Entry, out: ApplyBatchResult) -> None:
        req = ipb.InternalRaftRequest()
        try:
            req.ParseFromString(entry.data)
        except Exception:  # not ours: never acknowledged to anyone, skip but stay in step
            log.error("skipped an undecodable entry", index=entry.index)
            return
        try:
            result: Any = self._dispatch(batch, req, entry.index)
        except (StorageError, errors.EtcdError) as exc:
            result = exc if isinstance(exc, errors.EtcdError) else errors.from_storage(exc)
        out.outcomes.append(Outcome(req.header.ID or req.ID, result))

    def _replay_v2(self, entry: Entry) -> None:
        req = ipb.InternalRaftRequest()
        with contextlib.suppress(Exception):
            req.ParseFromString(entry.data)
        if req.WhichOneof("request") == "v2":
            v2request.apply(self.v2, v2request.decode(req.v2), time.time_ns())

    def _guard_writes(self) -> None:
        if self.has_alarm(pb.CORRUPT):
            raise errors.CORRUPT

    def lease_keys(self, lease_id: int) -> list[bytes]:
        lease = self.store.lessor.lookup(lease_id)
        return sorted(lease.keys) if lease is not None else []

    def _dispatch(self, batch: WriteBatch, req: ipb.InternalRaftRequest, index: int) -> Any:
        which = req.WhichOneof("request")
        h = self._header
        # Permissions are checked again here, against the user and auth revision the entry carries.
        check_applied(self.auth, req, self.lease_keys)
        if is_auth_request(req):
            return apply_auth(self.auth, batch.lmdb_txn, req, index, lambda: h(self.store.current_revision))
        if which == "put":
            self._guard_writes()
            if self.has_alarm(pb.NOSPACE):
                raise errors.NO_SPACE
            res = batch.put(convert.put_from_pb(req.put))
            return convert.put_to_pb(res, h(res.revision))
        if which == "delete_range":
            self._guard_writes()
            dres = batch.delete_range(convert.delete_from_pb(req.delete_range))
            return convert.delete_to_pb(dres, h(dres.revision))
        if which == "txn":
            self._guard_writes()
            if self.has_alarm(pb.NOSPACE) and _txn_writes(req.txn):
                raise errors.NO_SPACE
            tres = batch.txn(convert.txn_from_pb(req.txn))
            return convert.txn_to_pb(tres, h(tres.revision))
        if which == "range":
            rres = batch.range(convert.range_from_pb(req.range))
            return convert.range_to_pb(rres, h(rres.revision))
        if which == "compaction":
            self._guard_writes()
            rev = batch.compact(req.compaction.revision)
            return pb.CompactionResponse(header=h(rev))
        if which == "lease_grant":
            self._guard_writes()
            if self.has_alarm(pb.NOSPACE):
                raise errors.NO_SPACE
            g = req.lease_grant
            ttl = batch.lease_grant(g.ID, g.TTL, self._clock())
            return pb.LeaseGrantResponse(header=h(self.store.current_revision), ID=g.ID, TTL=ttl)
        if which == "lease_revoke":
            self._guard_writes()
            rev = batch.lease_revoke(req.lease_revoke.ID)
            return pb.LeaseRevokeResponse(header=h(rev))
        if which == "lease_checkpoint":
            for cp in req.lease_checkpoint.checkpoints:
                batch.lease_checkpoint(cp.ID, cp.remaining_TTL)
            return pb.LeaseCheckpointResponse(header=h(self.store.current_revision))
        if which == "alarm":
            return self._apply_alarm(batch, req.alarm)
        if which == "cluster_member_attr_set":
            attrs = req.cluster_member_attr_set
            self.membership.set_attributes(
                attrs.member_ID, attrs.member_attributes.name, list(attrs.member_attributes.client_urls)
            )
            self.save_membership(batch)
            return None
        if which == "cluster_version_set":
            return None
        if which == "v2":
            return v2request.apply(self.v2, v2request.decode(req.v2), time.time_ns())
        raise errors.EtcdError(errors.C.UNIMPLEMENTED, f"petcd: cannot apply {which}")

    def _apply_alarm(self, batch: WriteBatch, a: pb.AlarmRequest) -> pb.AlarmResponse:
        resp = pb.AlarmResponse(header=self._header(self.store.current_revision))
        key = (a.memberID, int(a.alarm))
        if a.action == pb.AlarmRequest.ACTIVATE and a.alarm != pb.NONE:
            if key not in self.alarms:
                self.alarms.add(key)
                self._save_alarms(batch)
            resp.alarms.add(memberID=a.memberID, alarm=a.alarm)
        elif a.action == pb.AlarmRequest.DEACTIVATE and key in self.alarms:
            self.alarms.discard(key)
            self._save_alarms(batch)
            resp.alarms.add(memberID=a.memberID, alarm=a.alarm)
        return resp

    def alarm_list(self) -> list[pb.AlarmMember]:
        return [pb.AlarmMember(memberID=m, alarm=a) for m, a in sorted(self.alarms)]  # type: ignore[arg-type]

    # ---- conf changes ------------------------------------------------------------------------------

    def _apply_conf_change(
        self,
        batch: WriteBatch,
        entry: Entry,
        apply_conf_change: Callable[[ConfChange], ConfState],
        out: ApplyBatchResult,
    ) -> None:
        cc = decode_conf_change(entry.data)
        ctx = ipb.ConfChangeContext()
        if cc.context:
            ctx.ParseFromString(cc.context)
        m = ctx.member
        if cc.type in (ConfChangeType.ADD_NODE, ConfChangeType.ADD_LEARNER_NODE):
            current = self.membership.members.get(cc.node_id)
            if current is not None and current.is_learner and cc.type == ConfChangeType.ADD_NODE:
                self.membership.promote(cc.node_id)
            elif current is None and cc.node_id not in self.membership.removed:
                self.membership.add(
                    Member(
                        id=cc.node_id,
                        name=m.name,
                        peer_urls=tuple(m.peerURLs),
                        client_urls=tuple(m.clientURLs),
                        is_learner=cc.type == ConfChangeType.ADD_LEARNER_NODE,
                    )
                )
        elif cc.type == ConfChangeType.REMOVE_NODE:
            self.membership.remove(cc.node_id)
            out.removed_self = out.removed_self or cc.node_id == self.member_id
        elif cc.type == ConfChangeType.UPDATE_NODE:
            self.membership.update_peer_urls(cc.node_id, list(m.peerURLs))
        out.conf_state = apply_conf_change(cc)
        self.save_membership(batch)
        if ctx.request_id:
            out.outcomes.append(Outcome(ctx.request_id, self.members_pb()))

    def members_pb(self) -> list[pb.Member]:
        return [
            pb.Member(
                ID=m.id,
                name=m.name,
                peerURLs=list(m.peer_urls),
                clientURLs=list(m.client_urls),
                isLearner=m.is_learner,
            )
            for m in self.membership.sorted_members()
        ]


def _txn_writes(t: pb.TxnRequest) -> bool:
    for op in (*t.success, *t.failure):
        which = op.WhichOneof("request")
        if which == "request_put":  # the quota counts puts only; deletes free space
            return True
        if which == "request_txn" and _txn_writes(op.request_txn):
            return True
    return False

"""The one module that talks to etcd members: petcd's own generated gRPC stubs, etcd's wire protocol.

Works the same against petcd and upstream etcd. Every call has a deadline; calls that etcd would
refuse because they already happened (adding a listed peer URL, removing an unknown member) are
treated as done, so a retried step is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from petcd.proto import rpc_pb2, rpc_pb2_grpc

from petcd_operator.state import MemberObs, MembersObs

CALL_TIMEOUT_SECONDS = 3.0


class MembershipError(Exception):
    """A membership call failed; `retry` says whether trying again later may succeed."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class LearnerNotReady(MembershipError):
    """etcd refused MemberPromote: the learner has not caught up yet."""


@dataclass(frozen=True)
class Endpoints:
    """gRPC targets ("host:port") by the peer URL of the member they serve."""

    by_peer_url: Mapping[str, str]

    def all(self, excluding: str | None = None) -> list[str]:
        return [target for url, target in sorted(self.by_peer_url.items()) if url != excluding]


def _cluster(channel: grpc.Channel) -> Any:
    return rpc_pb2_grpc.ClusterStub(channel)  # type: ignore[no-untyped-call]


def _maintenance(channel: grpc.Channel) -> Any:
    return rpc_pb2_grpc.MaintenanceStub(channel)  # type: ignore[no-untyped-call]


def _channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(target, options=[("grpc.enable_retries", 0)])


def _details(error: grpc.RpcError) -> str:
    details = error.details() if hasattr(error, "details") else None
    return str(details or error)


class MemberClient:
    def __init__(self, timeout: float = CALL_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout

    # --- reads -----------------------------------------------------------------------------------
    def member_list(self, targets: Sequence[str]) -> tuple[rpc_pb2.MemberListResponse, str] | None:
        for target in targets:
            with _channel(target) as channel:
                try:
                    response = _cluster(channel).MemberList(
                        rpc_pb2.MemberListRequest(linearizable=True), timeout=self.timeout
                    )
                except grpc.RpcError:
                    continue
                return response, target
        return None

    def status(self, target: str) -> rpc_pb2.StatusResponse | None:
        with _channel(target) as channel:
            try:
                response: rpc_pb2.StatusResponse = _maintenance(channel).Status(
                    rpc_pb2.StatusRequest(), timeout=self.timeout
                )
                return response
            except grpc.RpcError:
                return None

    def observe(self, endpoints: Endpoints) -> MembersObs | None:
        """The member list joined by member ID with each member's own Status answer."""
        found = self.member_list(endpoints.all())
        if found is None:
            return None
        listing, _ = found
        statuses: dict[int, rpc_pb2.StatusResponse] = {}
        for member in listing.members:
            target = next(
                (endpoints.by_peer_url[u] for u in member.peerURLs if u in endpoints.by_peer_url), None
            )
            answer = self.status(target) if target else None
            if answer is not None and answer.header.member_id == member.ID:
                statuses[member.ID] = answer
        leaders = [s.leader for s in statuses.values() if s.leader]
        leader_id = max(set(leaders), key=leaders.count) if leaders else 0
        members = []
        for member in listing.members:
            answer = statuses.get(member.ID)
            healthy = answer is not None and answer.leader != 0 and not list(answer.errors)
            members.append(
                MemberObs(
                    id=member.ID,
                    name=member.name,
                    peer_urls=tuple(member.peerURLs),
                    client_urls=tuple(member.clientURLs),
                    learner=member.isLearner,
                    healthy=healthy,
                    raft_index=answer.raftIndex if answer else 0,
                    version=answer.version if answer else "",
                )
            )
        return MembersObs(tuple(members), cluster_id=listing.header.cluster_id, leader_id=leader_id)

    # --- membership changes ----------------------------------------------------------------------
    def _cluster_call(self, targets: Sequence[str], method: str, request: object) -> object:
        last: grpc.RpcError | None = None
        for target in targets:
            with _channel(target) as channel:
                try:
                    return getattr(_cluster(channel), method)(request, timeout=self.timeout)
                except grpc.RpcError as error:
                    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                        last = error
                        continue
                    raise
        raise MembershipError(f"{method}: no member answered ({_details(last) if last else 'no endpoints'})")

    def _listed_id(self, targets: Sequence[str], peer_url: str) -> int | None:
        found = self.member_list(targets)
        if found is None:
            return None
        return next((int(m.ID) for m in found[0].members if peer_url in m.peerURLs), None)

    def add_learner(self, endpoints: Endpoints, peer_url: str) -> int:
        """MemberAdd as a learner, unless the peer URL is already listed; the member's ID."""
        targets = endpoints.all(excluding=peer_url)
        listed = self._listed_id(targets, peer_url)
        if listed is not None:
            return listed  # added by an earlier attempt: resume
        try:
            response = self._cluster_call(
                targets, "MemberAdd", rpc_pb2.MemberAddRequest(peerURLs=[peer_url], isLearner=True)
            )
        except grpc.RpcError as error:
            # "Peer URLs already exists" / "member ID already exist": a concurrent or lost earlier add.
            listed = self._listed_id(targets, peer_url) if "already exist" in _details(error) else None
            if listed is not None:
                return listed
            raise MembershipError(f"MemberAdd {peer_url}: {_details(error)}") from error
        assert isinstance(response, rpc_pb2.MemberAddResponse)
        return int(response.member.ID)

    def promote(self, endpoints: Endpoints, member_id: int, peer_url: str) -> None:
        targets = endpoints.all(excluding=peer_url)
        found = self.member_list(targets)
        member = next((m for m in found[0].members if member_id == m.ID), None) if found else None
        if member is not None and not member.isLearner:
            return  # promoted by an earlier attempt (etcd 3.4 would answer "not in sync" here)
        try:
            self._cluster_call(targets, "MemberPromote", rpc_pb2.MemberPromoteRequest(ID=member_id))
        except grpc.RpcError as error:
            details = _details(error)
            if "can only promote a learner member which is in sync" in details:
                raise LearnerNotReady(f"MemberPromote {member_id:x}: {details}") from error
            if "can only promote a learner member" in details:
                return  # already a voter: promoted by an earlier attempt
            raise MembershipError(f"MemberPromote {member_id:x}: {details}") from error

    def remove(self, endpoints: Endpoints, member_id: int, peer_url: str) -> None:
        """MemberRemove through the other members (never through the one being removed)."""
        try:
            self._cluster_call(
                endpoints.all(excluding=peer_url), "MemberRemove", rpc_pb2.MemberRemoveRequest(ID=member_id)
            )
        except grpc.RpcError as error:
            if "member not found" in _details(error):
                return  # removed by an earlier attempt
            raise MembershipError(f"MemberRemove {member_id:x}: {_details(error)}") from error

    def move_leader(self, leader_target: str, target_id: int) -> None:
        """MoveLeader must be sent to the current leader."""
        with _channel(leader_target) as channel:
            try:
                _maintenance(channel).MoveLeader(
                    rpc_pb2.MoveLeaderRequest(targetID=target_id), timeout=self.timeout * 3
                )
            except grpc.RpcError as error:
                raise MembershipError(f"MoveLeader to {target_id:x}: {_details(error)}") from error

"""HashKV agrees across members at the same revision: the check (pure) and the probe."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from petcd.proto import rpc_pb2

from .anomalies import Anomaly
from .client import Connections


@dataclass(frozen=True)
class MemberHash:
    member: str
    revision: int  # the revision asked for
    hash: int
    compact_revision: int


def check_hashes(hashes: Sequence[MemberHash]) -> list[Anomaly]:
    """Members hashed at one revision must agree on the hash and on the compact revision."""
    anomalies = []
    by_revision: dict[int, list[MemberHash]] = {}
    for h in hashes:
        by_revision.setdefault(h.revision, []).append(h)
    for revision, group in sorted(by_revision.items()):
        if len({(h.hash, h.compact_revision) for h in group}) > 1:
            detail = ", ".join(f"{h.member}: hash {h.hash} compacted at {h.compact_revision}" for h in group)
            anomalies.append(Anomaly("hashkv", f"members disagree at revision {revision}: {detail}"))
    return anomalies


def probe_hashes(connections: Connections, timeout: float = 10.0) -> list[MemberHash]:
    """HashKV of every member at the lowest revision any of them has reached."""
    revisions = [
        stubs.maintenance.Status(rpc_pb2.StatusRequest(), timeout=timeout).header.revision
        for stubs in connections.members
    ]
    revision = min(revisions)
    hashes = []
    for stubs in connections.members:
        try:
            answer = stubs.maintenance.HashKV(rpc_pb2.HashKVRequest(revision=revision), timeout=timeout)
        except grpc.RpcError as error:
            raise AssertionError(f"HashKV at {revision} on {stubs.target} failed: {error}") from error
        hashes.append(MemberHash(stubs.target, revision, answer.hash, answer.compact_revision))
    return hashes

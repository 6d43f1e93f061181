"""The cluster's members as the state machine knows them (pure; replicated through Raft).

Bootstrapped from --initial-cluster; changed by applied entries (member attributes published by a
starting member; conf changes add/remove/promote). Serialized into Raft snapshots as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from petcd.server.ids import cluster_id, member_id


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    name: str = ""
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False


@dataclass(slots=True)
class Membership:
    cluster_id: int
    members: dict[int, Member] = field(default_factory=dict)
    removed: set[int] = field(default_factory=set)

    @classmethod
    def bootstrap(cls, initial_cluster: dict[str, list[str]], token: str) -> Membership:
        """`initial_cluster` maps member names to their peer URLs (etcd's --initial-cluster)."""
        members = {}
        for name, urls in initial_cluster.items():
            mid = member_id(urls, token)
            members[mid] = Member(id=mid, name=name, peer_urls=tuple(urls))
        return cls(cluster_id=cluster_id(members), members=members)

    def sorted_members(self) -> list[Member]:
        return [self.members[k] for k in sorted(self.members)]

    def voters(self) -> tuple[int, ...]:
        return tuple(sorted(m.id for m in self.members.values() if not m.is_learner))

    def learners(self) -> tuple[int, ...]:
        return tuple(sorted(m.id for m in self.members.values() if m.is_learner))

    def set_attributes(self, mid: int, name: str, client_urls: list[str]) -> None:
        current = self.members.get(mid)
        if current is None:
            return  # a removed member's late publish
        self.members[mid] = replace(current, name=name, client_urls=tuple(client_urls))

    def add(self, member: Member) -> None:
        self.members[member.id] = member

    def remove(self, mid: int) -> None:
        self.members.pop(mid, None)
        self.removed.add(mid)

    def promote(self, mid: int) -> None:
        current = self.members.get(mid)
        if current is not None:
            self.members[mid] = replace(current, is_learner=False)

    def update_peer_urls(self, mid: int, peer_urls: list[str]) -> None:
        current = self.members.get(mid)
        if current is not None:
            self.members[mid] = replace(current, peer_urls=tuple(peer_urls))

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "cluster_id": self.cluster_id,
                "members": [
                    {
                        "id": m.id,
                        "name": m.name,
                        "peer_urls": list(m.peer_urls),
                        "client_urls": list(m.client_urls),
                        "is_learner": m.is_learner,
                    }
                    for m in self.sorted_members()
                ],
                "removed": sorted(self.removed),
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Membership:
        raw = json.loads(data)
        members = {
            m["id"]: Member(
                id=m["id"],
                name=m["name"],
                peer_urls=tuple(m["peer_urls"]),
                client_urls=tuple(m["client_urls"]),
                is_learner=m["is_learner"],
            )
            for m in raw["members"]
        }
        return cls(cluster_id=raw["cluster_id"], members=members, removed=set(raw["removed"]))

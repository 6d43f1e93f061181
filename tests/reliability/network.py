"""Members in network namespaces, each wired to two bridges: one for clients, one for peers.

Clients (this test process) reach every member over the client bridge, which carries the host's
gateway address. Raft traffic uses the peer bridges only, so a partition cuts members off from each
other while clients can still talk to a member on the minority side (the case that exposes stale
reads). A partition moves members' peer veths onto separate bridges ("detached from the bridge");
healing puts them all back on the first one. No iptables, no tc.

The index, bridge and namespace names come from the Kubernetes test environment's network
(tests/testenv/network.py), so that a crashed run's leftovers are found and removed the same way
and parallel runs never share a subnet. Client addresses are in the lower half of the /24, peer
addresses in the upper half (a /25 of its own inside each namespace).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from testenv.network import ClusterNetwork, PodNetworkLayout, ip

_PEER_HALF = 128
_MAX_GROUPS = 8


@dataclass(frozen=True)
class MemberNetwork:
    """Where member number `index` (0-based) lives: pure names and addresses."""

    layout: PodNetworkLayout
    index: int

    @property
    def uid(self) -> str:
        return f"rel{self.index:02d}"

    @property
    def netns(self) -> str:
        return self.layout.netns_name(self.uid)

    @property
    def client_ip(self) -> str:
        return str(self.layout.subnet.network_address + 10 + self.index)

    @property
    def peer_ip(self) -> str:
        return str(self.layout.subnet.network_address + _PEER_HALF + 10 + self.index)

    @property
    def client_veth(self) -> str:
        return self.layout.veth_names(self.uid)[0]

    @property
    def peer_veth(self) -> str:
        """Host side of the peer link (15 characters at most, as Linux requires)."""
        return f"pk{self.layout.index}p{self.uid}"

    @property
    def wrapper(self) -> list[str]:
        """argv prefix that runs a program inside this member's namespace."""
        return ["ip", "netns", "exec", self.netns]


def peer_bridge(layout: PodNetworkLayout, group: int) -> str:
    """The bridge of partition group `group`; group 0 is where every member is when healed."""
    return f"{layout.bridge}g{group}"


class PartitionableNetwork:
    """Owns one claimed test network: its namespaces, bridges and partitions, until `release`."""

    def __init__(self, size: int):
        self._claim = ClusterNetwork()
        self.layout = self._claim.layout
        self.members = [MemberNetwork(self.layout, i) for i in range(size)]
        self._groups = 1

    def create(self) -> None:
        self._claim.create()
        for group in range(_MAX_GROUPS):  # a crashed predecessor's partition bridges
            ip("link", "delete", peer_bridge(self.layout, group), check=False)
        self._ensure_groups(1)
        client_prefix = self.layout.subnet.prefixlen
        peer_prefix = client_prefix + 1
        for member in self.members:
            ns = member.netns
            ip("netns", "add", ns)
            ip("link", "set", "lo", "up", netns=ns)
            for host_side, inside, address, prefix, bridge in (
                (member.client_veth, "eth0", member.client_ip, client_prefix, self.layout.bridge),
                (member.peer_veth, "eth1", member.peer_ip, peer_prefix, peer_bridge(self.layout, 0)),
            ):
                ip("link", "delete", host_side, check=False)  # a predecessor's, see release
                ip("link", "add", host_side, "type", "veth", "peer", "name", f"{host_side}x")
                ip("link", "set", f"{host_side}x", "netns", ns)
                ip("link", "set", f"{host_side}x", "name", inside, netns=ns)
                ip("addr", "add", f"{address}/{prefix}", "dev", inside, netns=ns)
                ip("link", "set", inside, "up", netns=ns)
                ip("link", "set", host_side, "master", bridge, "up")

    def _ensure_groups(self, count: int) -> None:
        for group in range(count):
            name = peer_bridge(self.layout, group)
            if not ip("link", "show", name, check=False).returncode:
                continue
            ip("link", "add", name, "type", "bridge")
            ip("link", "set", name, "up")
        self._groups = max(self._groups, count)

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Members (by index) in different groups can no longer reach each other; clients still
        reach all of them. Members in no group stay on group 0 with the first group."""
        if len(groups) > _MAX_GROUPS:
            raise ValueError(f"at most {_MAX_GROUPS} partition groups")
        self._ensure_groups(len(groups))
        for number, group in enumerate(groups):
            for index in group:
                ip("link", "set", self.members[index].peer_veth, "master", peer_bridge(self.layout, number))

    def heal(self) -> None:
        for member in self.members:
            ip("link", "set", member.peer_veth, "master", peer_bridge(self.layout, 0))

    def release(self) -> None:
        """Delete the veths, the namespaces and every bridge of this network. The veths go first:
        a namespace outlives `ip netns delete` while another mount namespace (one made by
        `unshare --mount` elsewhere on the machine) still holds a copy of its mount."""
        for member in self.members:
            ip("link", "delete", member.client_veth, check=False)
            ip("link", "delete", member.peer_veth, check=False)
        self._claim.remove_leftovers()
        for group in range(self._groups):
            ip("link", "delete", peer_bridge(self.layout, group), check=False)
        self._claim.release()

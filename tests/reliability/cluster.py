"""A cluster of any registered implementation with each member in its own network namespace."""

from __future__ import annotations

from collections.abc import Sequence

from harness import Cluster, Implementation, MemberAddress, Sandbox, static_flags

from .network import PartitionableNetwork

CLIENT_PORT = 2379
PEER_PORT = 2380


def member_flags(
    sandbox: Sandbox, network: PartitionableNetwork, names: Sequence[str], index: int, token: str
) -> list[str]:
    """The seed article's static bootstrap flags, with peer URLs on the peer network and client
    URLs on the client network."""
    peers = [
        MemberAddress(name, member.peer_ip, CLIENT_PORT, PEER_PORT)
        for name, member in zip(names, network.members, strict=True)
    ]
    client_url = f"http://{network.members[index].client_ip}:{CLIENT_PORT}"
    flags = static_flags(peers[index], sandbox.data_dir(peers[index]), peers, token=token)
    client_flags = ("--listen-client-urls=", "--advertise-client-urls=")
    return [
        *(f for f in flags if not f.startswith(client_flags)),
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
    ]


def start_cluster(
    sandbox: Sandbox,
    implementation: Implementation,
    network: PartitionableNetwork,
    *,
    extra_flags: Sequence[str] = (),
    token: str = "reliability",
) -> Cluster:
    """Start one member per namespace of `network` (already created) and wait until all are healthy."""
    names = [f"etcd{i + 1:02d}" for i in range(len(network.members))]
    members = []
    for index, (name, where) in enumerate(zip(names, network.members, strict=True)):
        address = MemberAddress(name, where.client_ip, CLIENT_PORT, PEER_PORT)
        flags = [*member_flags(sandbox, network, names, index, token), *extra_flags]
        members.append(sandbox.member(implementation, address, flags, wrapper=where.wrapper))
    cluster = Cluster(implementation, members, token)
    cluster.wait_healthy(timeout=60)
    return cluster

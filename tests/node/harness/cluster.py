"""Clusters of members on 127.0.0.x, and the per-test sandbox that owns and cleans up all of them."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from .addresses import free_ports, loopback_hosts
from .etcdctl import Result, etcdctl
from .implementations import Implementation
from .members import Member, MemberAddress, flags_as_environment, static_flags


class Cluster:
    """Members of one implementation that were bootstrapped together."""

    def __init__(self, implementation: Implementation, members: Sequence[Member], token: str):
        self.implementation = implementation
        self.members = list(members)
        self.token = token

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        for member in self.members:
            member.wait_healthy(timeout)

    def etcdctl(self, *args: str, api: str = "3", stdin: str | None = None, timeout: float = 30.0) -> Result:
        return etcdctl(args, self.endpoints, api=api, stdin=stdin, timeout=timeout)

    def member_ids(self) -> dict[str, int]:
        """Member name -> member ID, from `etcdctl member list -w json`."""
        listing = json.loads(self.etcdctl("member", "list", "-w", "json").check().stdout)
        return {m["name"]: int(m["ID"]) for m in listing["members"]}

    def cluster_id(self) -> int:
        listing = json.loads(self.etcdctl("member", "list", "-w", "json").check().stdout)
        return int(listing["header"]["cluster_id"])

    def leader(self, timeout: float = 30.0) -> Member:
        """The member every running member names as leader (Status.leader), once they agree (an
        election may be under way), bounded by `timeout`."""
        names = {member_id: name for name, member_id in self.member_ids().items()}
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            running = [m.client_url for m in self.members if m.running()]
            status = etcdctl(["endpoint", "status", "-w", "json"], running)
            if status.returncode == 0:
                leaders = {s["Status"].get("leader", 0) for s in json.loads(status.stdout)}  # 0 is omitted
                if len(leaders) == 1 and (leader := leaders.pop()) in names:
                    return self.member(names[leader])
            seen = status.stdout + status.stderr
            time.sleep(0.1)
        raise AssertionError(f"no leader all running members agree on after {timeout} s: {seen}")

    def move_leader(self, to: Member, timeout: float = 30.0) -> None:
        """Make `to` the leader (etcdctl move-leader sent to the current leader), bounded by `timeout`."""
        deadline = time.monotonic() + timeout
        target = f"{self.member_ids()[to.name]:x}"
        while time.monotonic() < deadline:
            current = self.leader()
            if current is to:
                return
            etcdctl(["move-leader", target], [current.client_url])
            time.sleep(0.1)
        raise AssertionError(f"{to.name} did not become leader in {timeout} s")


class Sandbox:
    """Everything one test starts: addresses, data dirs, logs; `close` kills every process it started."""

    def __init__(self, root: Path):
        self.root = root
        self.log_dir = root / "logs"
        self.started: list[Member] = []

    def addresses(self, names: Sequence[str]) -> list[MemberAddress]:
        """One fresh 127.0.0.x address per name, each with a free client and peer port."""
        hosts = loopback_hosts(len(names))
        result = []
        for name, host in zip(names, hosts, strict=True):
            client_port, peer_port = free_ports(host, 2)
            result.append(MemberAddress(name, host, client_port, peer_port))
        return result

    def data_dir(self, member: MemberAddress | str) -> Path:
        """A data dir of its own for the member at an address (or simply named; not created: the
        server creates it). Addresses keep two clusters with the same member names apart."""
        name = member.slug if isinstance(member, MemberAddress) else member
        return self.root / "data" / f"{name}.etcd"

    def member(
        self,
        implementation: Implementation,
        address: MemberAddress,
        flags: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
        start: bool = True,
    ) -> Member:
        """A member owned by this sandbox (started unless `start` is False)."""
        member = Member(implementation, address, flags, self.log_dir, env=env, wrapper=wrapper)
        self.started.append(member)
        return member.start() if start else member

    def static_cluster(
        self,
        implementation: Implementation,
        size: int = 3,
        *,
        names: Sequence[str] | None = None,
        token: str = "etcd-cluster-1",
        extra_flags: Sequence[str] = (),
        as_environment: bool = False,
        wait: bool = True,
    ) -> Cluster:
        """A new cluster bootstrapped with a static --initial-cluster, as in the seed article; with
        `as_environment` every setting is passed as an ETCD_* variable instead of a flag."""
        names = list(names or [f"etcd{i + 1:02d}" for i in range(size)])
        addresses = self.addresses(names)
        members = []
        for address in addresses:
            flags = [
                *static_flags(address, self.data_dir(address), addresses, token=token),
                *extra_flags,
            ]
            if as_environment:
                members.append(self.member(implementation, address, [], env=flags_as_environment(flags)))
            else:
                members.append(self.member(implementation, address, flags))
        cluster = Cluster(implementation, members, token)
        if wait:
            cluster.wait_healthy()
        return cluster

    def logs(self, lines: int = 60) -> str:
        """The end of every member log of this sandbox, each under a header naming the whole file."""
        return "\n".join(f"----- {m.name} ({m.log_path})\n{m.log_tail(lines)}" for m in self.started)

    def close(self) -> None:
        """Kill every process this sandbox started."""
        for member in self.started:
            member.kill()

    def discard(self) -> None:
        """Delete the data dirs and logs (etcd preallocates 64 MB per WAL file)."""
        shutil.rmtree(self.root, ignore_errors=True)

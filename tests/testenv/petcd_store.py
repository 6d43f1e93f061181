"""The API server's store as a 3-member petcd cluster on loopback (PETCD_TESTENV_STORE=petcd):
one process per member on its own 127.0.0.x address, plain http, static bootstrap."""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass
from pathlib import Path

from testenv.processes import LoggedProcess

STORE_VARIABLE = "PETCD_TESTENV_STORE"
STORES = ("etcd", "petcd")
MEMBERS = 3
# PETCD_TESTENV_EVENT_TTL (e.g. 30s) shortens the API server's --event-ttl, so a test sees an Event
# expire with its lease; unset, Events live the default hour (suites count Events minutes old).
EVENT_TTL_VARIABLE = "PETCD_TESTENV_EVENT_TTL"


def apiserver_flags() -> list[str]:
    ttl = os.environ.get(EVENT_TTL_VARIABLE)
    return [f"--event-ttl={ttl}"] if ttl else []


def store_from_environment() -> str:
    store = os.environ.get(STORE_VARIABLE, "etcd") or "etcd"
    if store not in STORES:
        raise ValueError(f"{STORE_VARIABLE}={store!r}: expected one of {', '.join(STORES)}")
    return store


@dataclass(frozen=True)
class PetcdMember:
    name: str
    host: str
    client_port: int
    peer_port: int

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def plan_members(count: int = MEMBERS) -> list[PetcdMember]:
    """Members on distinct random 127.0.0.x addresses (parallel clusters rarely share one)."""
    base = random.randrange(10, 240)
    members = []
    for i in range(count):
        host = f"127.0.{base}.{i + 2}"
        members.append(PetcdMember(f"store{i + 1}", host, _free_port(host), _free_port(host)))
    return members


def member_argv(member: PetcdMember, members: list[PetcdMember], data_dir: Path) -> list[str]:
    cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
    return [
        "petcd",
        "--name", member.name,
        "--data-dir", str(data_dir),
        "--listen-client-urls", member.client_url,
        "--advertise-client-urls", member.client_url,
        "--listen-peer-urls", member.peer_url,
        "--initial-advertise-peer-urls", member.peer_url,
        "--initial-cluster", cluster,
        "--initial-cluster-token", "testenv-store",
        "--initial-cluster-state", "new",
        "--log-level", "warn",
    ]  # fmt: skip


def start(run_dir: Path, logs: Path) -> tuple[list[PetcdMember], list[LoggedProcess]]:
    """Start the members (data under `run_dir`/etcd, which LocalCluster.stop removes); the caller waits
    for readiness through the API server's own /readyz."""
    members = plan_members()
    data = run_dir / "etcd"
    processes = [
        LoggedProcess(f"petcd-{m.name}", member_argv(m, members, data / m.name), logs / f"{m.name}.log")
        for m in members
    ]
    return members, processes

"""members.py against real etcd (Debian's): observe, learner add/promote, MoveLeader, remove, retries."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from petcd_operator.members import Endpoints, LearnerNotReady, MemberClient, MembershipError
from petcd_operator.state import MembersObs

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(shutil.which("etcd") is None, reason="needs etcd (apt-get install etcd-server)"),
]
T = TypeVar("T")


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def until(check: Callable[[], T | None], what: str, seconds: float = 30.0) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Etcd:
    def __init__(self, name: str, host: str, data: Path) -> None:
        self.name, self.host, self.data = name, host, data
        self.peer_port, self.client_port = free_port(host), free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    @property
    def target(self) -> str:
        return f"{self.host}:{self.client_port}"

    def start(self, initial_cluster: str, state: str) -> None:
        argv = [
            "etcd",
            f"--name={self.name}",
            f"--data-dir={self.data}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--listen-client-urls=http://{self.target}",
            f"--advertise-client-urls=http://{self.target}",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-state={state}",
            "--initial-cluster-token=members-test",
        ]
        log = (self.data.parent / f"{self.name}.log").open("wb")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Etcd, Etcd]]:
    a = Etcd("a", "127.0.0.1", tmp_path / "a")
    b = Etcd("b", "127.0.0.1", tmp_path / "b")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_membership_changes_against_real_etcd(pair: tuple[Etcd, Etcd]) -> None:
    a, b = pair
    client = MemberClient(timeout=2.0)
    a.start(f"a={a.peer_url}", "new")
    endpoints = Endpoints({a.peer_url: a.target, b.peer_url: b.target})

    def observed_with_leader() -> MembersObs | None:
        seen = client.observe(endpoints)
        return seen if seen and seen.leader_id else None

    first = until(observed_with_leader, "a leader")
    assert len(first.members) == 1 and first.members[0].healthy and first.cluster_id
    a_id = first.members[0].id
    assert first.leader_id == a_id

    b_id = client.add_learner(endpoints, b.peer_url)
    assert client.add_learner(endpoints, b.peer_url) == b_id  # a retried MemberAdd is harmless
    listed = until(observed_with_leader, "the learner listed")
    learner = listed.by_id(b_id)
    assert learner is not None and learner.learner and not learner.started and not learner.healthy

    with pytest.raises(LearnerNotReady):
        client.promote(endpoints, b_id, b.peer_url)

    b.start(f"a={a.peer_url},b={b.peer_url}", "existing")

    def started() -> bool:
        seen = observed_with_leader()
        member = seen.by_id(b_id) if seen else None
        return bool(member and member.started and member.healthy)

    until(started, "the learner to start")

    def promoted() -> bool:
        try:
            client.promote(endpoints, b_id, b.peer_url)
        except LearnerNotReady:
            return False
        return True

    until(promoted, "MemberPromote to be accepted")
    client.promote(endpoints, b_id, b.peer_url)  # promoting a voter again is treated as done
    voters = until(observed_with_leader, "two voters")
    assert not any(m.learner for m in voters.members)

    client.move_leader(a.target, b_id)
    until(lambda: (o := observed_with_leader()) and o.leader_id == b_id, "leadership on b")

    def removed() -> bool:
        try:
            client.remove(endpoints, a_id, a.peer_url)  # goes through b, never the removed member
        except MembershipError as error:
            # Right after a leader change etcd answers "unhealthy cluster" for about 5 s.
            assert "unhealthy cluster" in str(error)
            return False
        return True

    until(removed, "MemberRemove to be accepted")
    client.remove(endpoints, a_id, a.peer_url)  # removing twice is treated as done
    left = until(
        lambda: (o := client.observe(Endpoints({b.peer_url: b.target}))) and len(o.members) == 1 and o,
        "removal",
    )
    assert left.members[0].id == b_id and left.cluster_id == first.cluster_id


def test_observe_returns_none_when_no_member_answers() -> None:
    assert MemberClient(timeout=0.5).observe(Endpoints({"http://127.0.0.1:1": "127.0.0.1:1"})) is None

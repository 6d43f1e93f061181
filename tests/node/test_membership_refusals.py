"""A refused bootstrap leaves no trace: petcd decides before it writes anything (etcd 3.4 creates the
data dir and its backend file before it refuses; petcd is stricter, so these run on petcd only).
The messages themselves are held to etcd's by test_bootstrap.py with every implementation."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from harness import IMPLEMENTATIONS, Member, Sandbox, static_flags

PETCD = IMPLEMENTATIONS["petcd"]
REFUSAL_TIMEOUT = 30.0


def assert_refused_without_trace(member: Member, message: str, data_dir: Path) -> None:
    status = member.wait_exit(REFUSAL_TIMEOUT)
    assert status not in (None, 0), member.log_tail()
    assert member.logged(message), member.log_tail()
    assert not data_dir.exists(), sorted(str(p) for p in data_dir.rglob("*"))


def test_existing_member_never_added_writes_nothing(sandbox: Sandbox) -> None:
    PETCD.require()
    (first,) = sandbox.static_cluster(PETCD, 1, names=["e1"]).members
    (newcomer,) = sandbox.addresses(["e2"])
    data_dir = sandbox.data_dir(newcomer)
    flags = static_flags(newcomer, data_dir, [first.address, newcomer], state="existing")
    refused = sandbox.member(PETCD, newcomer, flags)
    assert_refused_without_trace(refused, "member count is unequal", data_dir)


def test_wiped_member_started_as_new_writes_nothing(sandbox: Sandbox) -> None:
    """The harness found a wiped member restarted with `new` founding a second cluster (and
    leading it); it must be refused instead, as etcd refuses it."""
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, 3)
    wiped = cluster.members[2]
    wiped_id = cluster.member_ids()[wiped.name]
    wiped.kill()
    shutil.rmtree(wiped.data_dir)
    again = sandbox.member(PETCD, wiped.address, wiped.flags)
    assert_refused_without_trace(again, f"member {wiped_id:x} has already been bootstrapped", wiped.data_dir)
    # the others keep serving (once they elected a leader, if the wiped member was leading)
    deadline = time.monotonic() + REFUSAL_TIMEOUT
    while cluster.etcdctl("put", "still", "serving").returncode != 0:
        assert time.monotonic() < deadline, "the two remaining members stopped serving"

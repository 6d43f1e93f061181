"""Bootstrap mismatches (issue 5): each refused start fails with etcd's own message and damages no
data dir; a member with a data dir ignores the initial-cluster flags and restarts from disk.

The messages are etcd's (3.4.23 and 3.5 print the same text; 3.4 logs it as `C | etcdmain: ...`, 3.5
as the "error" of a fatal JSON line), so every registered implementation is held to them.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from harness import Cluster, Implementation, Member, MemberAddress, Sandbox, etcdctl, static_flags

REFUSAL_TIMEOUT = 30.0


def fingerprint(data_dir: Path) -> dict[str, str]:
    """Every file under `data_dir` with the SHA-256 of its contents."""
    return {
        str(path.relative_to(data_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file()
    }


def wal_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "member" / "wal").glob("*.wal"))


def assert_refused(member: Member, message: str) -> None:
    """The member exits non-zero, its log carries `message`, and it wrote no WAL (so it was never
    bootstrapped: fixing the flags and starting again is enough)."""
    status = member.wait_exit(REFUSAL_TIMEOUT)
    assert status not in (None, 0), f"{member.name} did not refuse to start:\n{member.log_tail()}"
    assert member.logged(message), f"expected {message!r} in:\n{member.log_tail()}"
    assert wal_files(member.data_dir) == []


def test_name_not_in_initial_cluster(sandbox: Sandbox, implementation: Implementation) -> None:
    me, other = sandbox.addresses(["foo", "bar"])
    data_dir = sandbox.data_dir(me)
    refused = sandbox.member(implementation, me, static_flags(me, data_dir, [other]))
    assert_refused(refused, 'couldn\'t find local name "foo" in the initial cluster configuration')
    fixed = sandbox.member(implementation, me, static_flags(me, data_dir, [me]))
    fixed.wait_healthy()


def test_duplicate_name_in_initial_cluster(sandbox: Sandbox, implementation: Implementation) -> None:
    """`name=url1,name=url2` is one member with two peer URLs, which then must all be advertised."""
    me, elsewhere = sandbox.addresses(["dup", "dup"])
    refused = sandbox.member(implementation, me, static_flags(me, sandbox.data_dir(me), [me, elsewhere]))
    one, two = me.peer_url, elsewhere.peer_url
    assert_refused(
        refused,
        f"--initial-cluster has dup={two} but missing from --initial-advertise-peer-urls={one}"
        f' (len(["{one}"]) != len(["{one}" "{two}"]))',
    )


def test_existing_for_a_member_never_added(sandbox: Sandbox, implementation: Implementation) -> None:
    running = sandbox.static_cluster(implementation, 1, names=["e1"])
    (first,) = running.members
    (newcomer,) = sandbox.addresses(["e2"])
    both = [first.address, newcomer]
    flags = static_flags(newcomer, sandbox.data_dir(newcomer), both, state="existing")
    refused = sandbox.member(implementation, newcomer, flags)
    member_id = running.member_ids()["e1"]
    assert_refused(
        refused,
        f"error validating peerURLs {{ClusterID:{running.cluster_id():x} Members:[&{{ID:{member_id:x}"
        f" RaftAttributes:{{PeerURLs:[{first.address.peer_url}] IsLearner:false}}"
        f" Attributes:{{Name:e1 ClientURLs:[{first.client_url}]}}}}] RemovedMemberIDs:[]}}:"
        " member count is unequal",
    )
    assert running.member_ids() == {"e1": member_id}


def wipe_and_restart(sandbox: Sandbox, cluster: Cluster, member: Member, token: str | None = None) -> Member:
    """`member` killed, its data dir deleted, started again with `new` (and maybe another token)."""
    member.kill()
    shutil.rmtree(member.data_dir)
    peers = [m.address for m in cluster.members]
    flags = static_flags(member.address, member.data_dir, peers, token=token or cluster.token)
    return sandbox.member(member.implementation, member.address, flags)


def test_new_with_the_same_token_for_a_bootstrapped_member(
    sandbox: Sandbox, implementation: Implementation
) -> None:
    cluster = sandbox.static_cluster(implementation, 3)
    ids = cluster.member_ids()
    again = wipe_and_restart(sandbox, cluster, cluster.members[2])
    assert_refused(again, f"member {ids['etcd03']:x} has already been bootstrapped")


def test_token_keeps_clusters_apart(sandbox: Sandbox, implementation: Implementation) -> None:
    """Two clusters with the same names and token have different IDs (the peer URLs differ); a
    member re-created with another token is a stranger to its old peers: cluster ID mismatch."""
    one = sandbox.static_cluster(implementation, 3)
    two = sandbox.static_cluster(implementation, 3)
    assert one.cluster_id() != two.cluster_id()
    before = (one.cluster_id(), one.member_ids())
    stranger = wipe_and_restart(sandbox, one, one.members[2], token="another-token")
    peer = one.members[0]
    wait_for_log(peer, "cluster ID mismatch")
    wait_for_log(stranger, "cluster ID mismatch")
    survivors = [m.client_url for m in one.members[:2]]
    listing = etcdctl(["member", "list", "-w", "json"], survivors).check().stdout
    assert (one.cluster_id(), one.member_ids()) == before, listing


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what} after {timeout} s"
        time.sleep(0.2)


def wait_for_log(member: Member, text: str, timeout: float = 30.0) -> None:
    wait_until(
        lambda: member.logged(text), f"{text!r} in the log of {member.name}:\n{member.log_tail()}", timeout
    )


def serializable_get(member: Member, key: str) -> str:
    return etcdctl(["get", key, "--print-value-only", "--consistency=s"], [member.client_url]).stdout


def test_data_dir_from_another_cluster(sandbox: Sandbox, implementation: Implementation) -> None:
    """A member started on another cluster's data dir ignores --initial-cluster and restarts from
    disk as that cluster's member; its new peers refuse it (cluster ID mismatch)."""
    other = sandbox.static_cluster(implementation, 1, names=["etcd03"], token="other-cluster")
    other.etcdctl("put", "from", "other-cluster").check()
    other_id = other.cluster_id()
    other.members[0].terminate()
    addresses = sandbox.addresses(["etcd01", "etcd02", "etcd03"])
    data_dirs = {a.name: sandbox.data_dir(a) for a in addresses}
    shutil.copytree(other.members[0].data_dir, data_dirs["etcd03"])
    members = [
        sandbox.member(implementation, a, static_flags(a, data_dirs[a.name], addresses)) for a in addresses
    ]
    restarted = members[2]
    restarted.wait_healthy()
    status = etcdctl(["get", "from", "--print-value-only"], [restarted.client_url]).check()
    assert status.stdout == "other-cluster\n"
    member_list = Cluster(implementation, [restarted], "other-cluster")
    assert member_list.cluster_id() == other_id
    wait_for_log(members[0], "cluster ID mismatch")


def test_port_in_use(sandbox: Sandbox, implementation: Implementation) -> None:
    """A restart whose client port is taken fails with the listen error and leaves the data dir as it was."""
    (member,) = sandbox.static_cluster(implementation, 1).members
    member.terminate()
    data_dir = member.data_dir
    before = fingerprint(data_dir)
    address: MemberAddress = member.address
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((address.host, address.client_port))
        squatter.listen()
        member.start()
        status = member.wait_exit(REFUSAL_TIMEOUT)
        assert status not in (None, 0), member.log_tail()
    assert member.logged(f"listen tcp {address.host}:{address.client_port}: bind: address already in use")
    assert fingerprint(data_dir) == before
    member.start().wait_healthy()


def test_force_new_cluster_keeps_the_data(sandbox: Sandbox, implementation: Implementation) -> None:
    """Disaster recovery: the others are lost (kill -9), the survivor is stopped and restarted with
    --force-new-cluster: a one-member cluster with the same cluster ID and data, and it stays one
    once restarted without the flag. (The survivor is stopped with SIGTERM: after a kill -9, etcd
    may not have flushed the commit index of its last entries, and --force-new-cluster drops
    entries past the persisted commit index.)"""
    cluster = sandbox.static_cluster(implementation, 3)
    cluster.etcdctl("put", "survives", "yes").check()
    cluster_id, ids = cluster.cluster_id(), cluster.member_ids()
    survivor = cluster.members[0]
    # an acknowledged write may still be missing on a lagging member: wait until the survivor has it
    wait_until(lambda: serializable_get(survivor, "survives") == "yes\n", "etcd01 to apply the write")
    for member in cluster.members[1:]:
        member.kill()
    survivor.terminate()
    forced = sandbox.member(implementation, survivor.address, [*survivor.flags, "--force-new-cluster"])
    alone = Cluster(implementation, [forced], cluster.token)
    alone.wait_healthy()
    assert (alone.cluster_id(), alone.member_ids()) == (cluster_id, {"etcd01": ids["etcd01"]})
    assert alone.etcdctl("get", "survives", "--print-value-only").check().stdout == "yes\n"
    forced.terminate()
    again = Cluster(implementation, [sandbox.member(implementation, survivor.address, survivor.flags)], "")
    again.wait_healthy()
    assert again.member_ids() == {"etcd01": ids["etcd01"]}


def test_removed_member_stops_and_cannot_rejoin(sandbox: Sandbox, implementation: Implementation) -> None:
    cluster = sandbox.static_cluster(implementation, 3)
    removed = cluster.members[2]
    removed_id = cluster.member_ids()["etcd03"]

    # etcd refuses to remove a member until the others have been connected for a while
    # ("etcdserver: unhealthy cluster"); what this test is about starts once the removal is accepted
    def remove() -> bool:
        answer = cluster.etcdctl("member", "remove", f"{removed_id:x}")
        return (
            answer.returncode == 0 or "etcdserver: member not found" in answer.stderr
        )  # a retry after success

    wait_until(remove, "member remove")
    assert removed.wait_exit(REFUSAL_TIMEOUT) is not None, removed.log_tail()
    assert removed.logged("the member has been permanently removed from the cluster")
    before = fingerprint(removed.data_dir)
    removed.start()
    assert removed.wait_exit(REFUSAL_TIMEOUT) is not None, removed.log_tail()
    assert removed.logged("the member has been permanently removed from the cluster", since_last_start=True)
    survivors = [m.client_url for m in cluster.members[:2]]
    listing = etcdctl(["member", "list"], survivors).check().stdout
    assert f"{removed_id:x}" not in listing
    assert fingerprint(removed.data_dir).keys() == before.keys()

"""`petcd snapshot restore`: a snapshot file -> the data dir of one member of a NEW cluster.

As etcdutl's restore: the key space, its revisions, the compaction state, leases and auth are kept;
the membership is replaced by --initial-cluster, with member and cluster IDs derived as at bootstrap
(so every member restored with the same flags agrees). The Raft state is etcd's restore's: a WAL
(its metadata naming the member and the cluster) with the founders' committed ADD_NODE entries 1..n
of RawNode.bootstrap, then a Raft snapshot at index n holding the configuration, and the backend's
applied index set to n. `petcd --data-dir <dir> ...` restarts from it and forms the cluster; because
the log begins after the snapshot, a member added later is sent the whole backend (MsgSnap) instead
of replaying a log that does not hold the restored keys. Alarms are dropped:
the members they name are not in the new cluster. v2 keys are not in a backend snapshot (etcd drops
them too).

Nothing is written unless the whole snapshot checked out: the files are built in a staging directory
beside the data dir and renamed into place at the end; on failure the staging directory is removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from petcd import config
from petcd.proto import rpc_pb2 as pb
from petcd.raft.node import Config as RaftConfig
from petcd.raft.node import RawNode
from petcd.raft.storage import MemoryStorage
from petcd.raft.types import ConfState, Snapshot, SnapshotMetadata
from petcd.server import bootstrap, snapshot_data
from petcd.server.apply import StateMachine
from petcd.server.ids import member_id
from petcd.server.membership import Membership
from petcd.snapshot import snapfile
from petcd.storage.backend import CONSISTENT_INDEX, TERM
from petcd.storage.disk import RaftDisk
from petcd.storage.fsync import fsync_path
from petcd.storage.mvcc import MVCCStore
from petcd.storage.wal import WalMetadata

BACKEND_FILE = "db"
CLEARED_DATABASES = ("members", "alarm")  # the old cluster's membership, Raft configuration and alarms


class RestoreError(Exception):
    """A restore refused before anything was written; the text is etcd's where etcd has one."""


@dataclass(frozen=True)
class RestoreOptions:
    """etcdctl/etcdutl `snapshot restore` flags, with their defaults."""

    name: str = "default"
    data_dir: str = ""
    wal_dir: str = ""
    initial_cluster: str = "default=http://localhost:2380"
    initial_cluster_token: str = "etcd-cluster"
    initial_advertise_peer_urls: str = "http://localhost:2380"
    skip_hash_check: bool = False

    def member_config(self) -> config.Config:
        """The bootstrap settings as a member Config: its data dir layout and bootstrap checks are the
        server's own. Raises RestoreError for a malformed URL."""
        try:
            peer_urls = config.parse_urls(self.initial_advertise_peer_urls)
            config.parse_initial_cluster(self.initial_cluster)
        except ValueError as exc:
            raise RestoreError(str(exc)) from None
        return config.Config(name=self.name, data_dir=self.data_dir, wal_dir=self.wal_dir,
                             initial_cluster=self.initial_cluster,
                             initial_cluster_token=self.initial_cluster_token,
                             initial_advertise_peer_urls=peer_urls)


@dataclass(frozen=True)
class Restored:
    member_id: int
    cluster_id: int
    data_dir: Path
    wal_dir: Path
    snap_dir: Path


def _check_targets(cfg: config.Config) -> None:
    data_dir = Path(cfg.effective_data_dir)
    if data_dir.exists():
        raise RestoreError(f'data-dir "{data_dir}" exists')
    if cfg.wal_dir and Path(cfg.wal_dir).exists():
        raise RestoreError(f'wal-dir "{cfg.wal_dir}" exists')


def _new_membership(cfg: config.Config) -> tuple[Membership, int]:
    members = {name: list(urls) for name, urls in cfg.initial_cluster_members.items()}
    membership = Membership.bootstrap(members, cfg.initial_cluster_token)
    return membership, member_id(cfg.initial_advertise_peer_urls, cfg.initial_cluster_token)


def write_raft_state(wal_dir: Path, snap_dir: Path, membership: Membership, me: int) -> SnapshotMetadata:
    """The founders' bootstrap entries (what RawNode.bootstrap's first Ready persists, the same on
    every member restored with the same flags), then a Raft snapshot at the last of them."""
    node = RawNode(RaftConfig(id=me, storage=MemoryStorage()))
    node.bootstrap(membership.voters(), bootstrap.founding_contexts(membership))
    ready = node.ready()
    last = ready.entries[-1]
    conf = ConfState(voters=membership.voters())
    metadata = SnapshotMetadata(index=last.index, term=last.term, conf_state=conf)
    data = snapshot_data.pack(snapshot_data.SnapshotData(membership.to_json()))
    disk = RaftDisk.create(wal_dir, snap_dir, WalMetadata(me, membership.cluster_id))
    try:
        disk.save(ready.hard_state, ready.entries, must_sync=True)
        disk.save_snapshot(Snapshot(metadata=metadata, data=data))
    finally:
        disk.close()
    return metadata


def rewrite_for_new_cluster(backend_path: Path, membership: Membership, me: int,
                            applied: SnapshotMetadata) -> None:
    """Turn a copied backend into a restored member's: new membership, applied up to the Raft
    snapshot `write_raft_state` wrote, no alarms. Keys, revisions, leases and auth stay."""
    store = MVCCStore.open(backend_path)
    try:
        state = StateMachine(store, membership, me, lambda _rev: pb.ResponseHeader(), time.monotonic)
        backend = store.backend
        with store.batch() as batch:
            for name in CLEARED_DATABASES:
                batch.lmdb_txn.drop(backend.db(name), delete=False)
            state.save_membership(batch)
            state.save_initial_conf_state(batch, ConfState())
            backend.put_meta_int(batch.lmdb_txn, CONSISTENT_INDEX, applied.index)
            backend.put_meta_int(batch.lmdb_txn, TERM, applied.term)
        backend.sync()
    finally:
        store.close()


@contextmanager
def _staging(beside: Path) -> Iterator[Path]:
    """A scratch directory next to `beside` (same file system, so the final renames are atomic),
    removed whatever happens."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{beside.name}.restoring-", dir=beside.parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _move_into_place(staged: Path, target: Path) -> None:
    os.rename(staged, target)
    fsync_path(target.parent)


def restore(snapshot_path: str | os.PathLike[str], options: RestoreOptions) -> Restored:
    """Refuses (RestoreError, SnapshotError, config.ConfigError) before writing anything."""
    cfg = options.member_config()
    cfg.verify_bootstrap()
    _check_targets(cfg)
    snapshot = snapfile.verify(snapshot_path, skip_hash_check=options.skip_hash_check)
    membership, me = _new_membership(cfg)
    data_dir = Path(cfg.effective_data_dir)
    with _staging(data_dir) as staging:
        # The same layout, built under the staging directory.
        staged = replace(cfg, data_dir=str(staging / "data"),
                         wal_dir=str(staging / "wal") if cfg.wal_dir else "")
        staged.snap_path.mkdir(parents=True)
        snapfile.copy_backend(snapshot, staged.snap_path / BACKEND_FILE)
        applied = write_raft_state(staged.wal_path, staged.snap_path, membership, me)
        rewrite_for_new_cluster(staged.snap_path / BACKEND_FILE, membership, me, applied)
        if cfg.wal_dir:
            Path(cfg.wal_dir).parent.mkdir(parents=True, exist_ok=True)
            _move_into_place(staged.wal_path, Path(cfg.wal_dir))
        try:
            _move_into_place(Path(staged.effective_data_dir), data_dir)
        except OSError:
            if cfg.wal_dir:
                shutil.rmtree(cfg.wal_dir, ignore_errors=True)
            raise
    return Restored(me, membership.cluster_id, data_dir, cfg.wal_path, cfg.snap_path)


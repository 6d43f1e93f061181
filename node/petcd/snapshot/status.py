"""`petcd snapshot status`: what a snapshot file holds, computed as etcdctl computes it for etcd's.

hash: CRC-32 over every database's name, then each key and value, databases in name order (etcd uses
CRC-32C over its buckets the same way; the stdlib has only the IEEE polynomial). revision: the main
revision of the newest row of the `key` database. total keys: rows in every database. total size: the
backend's bytes (the file without its digest).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import lmdb

from petcd.snapshot.snapfile import SnapshotFile
from petcd.storage.backend import DB_NAMES
from petcd.storage.mvcc import decode_revision

KEY_DB = b"key"


@dataclass(frozen=True)
class Status:
    hash: int
    revision: int
    total_key: int
    total_size: int


def _open_read_only(snapshot: SnapshotFile) -> Any:
    """The snapshot file mapped read-only, without a lock file (nobody writes it); the digest after the
    backend's pages is outside every page LMDB reads."""
    return lmdb.open(str(snapshot.path), subdir=False, readonly=True, lock=False, max_dbs=len(DB_NAMES) + 1,
                     map_size=max(snapshot.backend_size, 1 << 20), readahead=False)


def status(snapshot: SnapshotFile) -> Status:
    """Summarise a snapshot that `snapfile.verify` accepted."""
    env = _open_read_only(snapshot)
    try:
        crc = 0
        total = 0
        revision = 0
        with env.begin() as txn:
            names = sorted(bytes(name) for name, _ in txn.cursor())
            for name in names:
                db = env.open_db(name, txn=txn, create=False)
                crc = zlib.crc32(name, crc)
                for key, value in txn.cursor(db=db):
                    crc = zlib.crc32(value, zlib.crc32(key, crc))
                    total += 1
                if name == KEY_DB:
                    cursor = txn.cursor(db=db)
                    if cursor.last():
                        revision = decode_revision(cursor.key())[0][0]
    finally:
        env.close()
    return Status(hash=crc, revision=revision, total_key=total, total_size=snapshot.backend_size)

"""The backend: one LMDB file with named databases, etcd's bbolt counterpart.

Databases: `key` (revision -> encoded KeyValue, the MVCC history), `meta` (consistent index, term,
current/compacted/scheduled-compaction revision), `lease`, `members`, `alarm`, `auth`.
Only the apply path writes, from one thread; reads may use their own read transactions.

Durability: by default every commit is fsync'd once (LMDB's metasync is off, which keeps the file
consistent and may only lose the last commit on a power cut — the WAL replays it, because the
consistent index is committed in the same transaction as the data).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb

from petcd.storage.fsync import fsync_path

DB_NAMES = ("key", "meta", "lease", "members", "alarm", "auth")
DEFAULT_MAP_SIZE = 16 << 30  # address space only; the file grows with the data
_INT = struct.Struct(">q")

# meta keys
CONSISTENT_INDEX = b"consistent_index"
TERM = b"term"
CURRENT_REVISION = b"current_rev"
COMPACT_REVISION = b"finishedCompactRev"
SCHEDULED_COMPACT_REVISION = b"scheduledCompactRev"


class Backend:
    def __init__(
        self, path: str | os.PathLike[str], *, map_size: int = DEFAULT_MAP_SIZE, sync: bool = True
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._map_size = map_size
        self._sync = sync
        self._open()

    def _open(self) -> None:
        self.env: Any = lmdb.open(
            str(self.path),
            subdir=False,
            map_size=self._map_size,
            max_dbs=len(DB_NAMES) + 1,
            sync=self._sync,
            metasync=False,
            readahead=False,
            max_readers=256,
        )
        self._dbs: dict[str, Any] = {name: self.env.open_db(name.encode()) for name in DB_NAMES}

    def db(self, name: str) -> Any:
        """The handle of one named database (see DB_NAMES)."""
        return self._dbs[name]

    @property
    def key_db(self) -> Any:
        return self._dbs["key"]

    @property
    def meta_db(self) -> Any:
        return self._dbs["meta"]

    @property
    def lease_db(self) -> Any:
        return self._dbs["lease"]

    def read(self) -> Any:
        """A read-only transaction (use as a context manager)."""
        return self.env.begin(buffers=False)

    def write(self) -> Any:
        """A write transaction (use as a context manager: commits on success, aborts on error)."""
        return self.env.begin(write=True)

    # ---- meta values -----------------------------------------------------------------------------

    def get_meta_int(self, txn: Any, name: bytes, default: int = 0) -> int:
        raw = txn.get(name, db=self._dbs["meta"])
        return default if raw is None else int(_INT.unpack(raw)[0])

    def put_meta_int(self, txn: Any, name: bytes, value: int) -> None:
        txn.put(name, _INT.pack(value), db=self._dbs["meta"])

    # ---- sizes (Status.dbSize / dbSizeInUse, the quota) -------------------------------------------

    def size(self) -> int:
        """Bytes of the file on disk."""
        return os.path.getsize(self.path)

    def size_in_use(self) -> int:
        """Bytes of pages that hold data (the rest of the file is free pages, reclaimed by defragment)."""
        stat = self.env.stat()
        psize = int(stat["psize"])
        pages = 2  # the two meta pages
        with self.env.begin() as txn:
            stats = [stat] + [txn.stat(db) for db in self._dbs.values()]
        for s in stats:
            pages += int(s["branch_pages"]) + int(s["leaf_pages"]) + int(s["overflow_pages"])
        return pages * psize

    # ---- whole-file operations ---------------------------------------------------------------------

    def sync(self) -> None:
        self.env.sync(True)

    def defragment(self) -> None:
        """Rewrite the file compactly (free pages dropped) and swap it in. No transaction may be open."""
        tmp = self.path.with_name(self.path.name + ".defrag")
        tmp.unlink(missing_ok=True)
        self.env.copy(str(tmp), compact=True)
        fsync_path(tmp)
        self.env.close()
        os.replace(tmp, self.path)
        fsync_path(self.path.parent)
        self._open()

    def snapshot(self, dest: str | os.PathLike[str]) -> None:
        """A consistent copy of the whole backend into a new file (taken in one read transaction)."""
        Path(dest).unlink(missing_ok=True)
        self.env.copy(str(dest), compact=True)
        fsync_path(Path(dest))

    def snapshot_bytes(self) -> bytes:
        """The consistent copy as bytes (for raft snapshots and the Snapshot RPC)."""
        tmp = self.path.with_name(self.path.name + ".snapshot")
        try:
            self.snapshot(tmp)
            return tmp.read_bytes()
        finally:
            tmp.unlink(missing_ok=True)

    def snapshot_chunks(self, chunk_size: int = 32 * 1024) -> Iterator[bytes]:
        """The consistent copy in chunks (etcd's Snapshot RPC sends 32 KiB blobs), without holding the
        whole file in memory. The copy is taken when the first chunk is requested."""
        tmp = self.path.with_name(f"{self.path.name}.stream-{os.getpid()}-{id(self)}")
        try:
            self.snapshot(tmp)
            with open(tmp, "rb") as f:
                while chunk := f.read(chunk_size):
                    yield chunk
        finally:
            tmp.unlink(missing_ok=True)

    def restore(self, data: bytes) -> None:
        """Replace the whole backend with a snapshot taken by `snapshot`/`snapshot_bytes`."""
        tmp = self.path.with_name(self.path.name + ".restore")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.env.close()
        os.replace(tmp, self.path)
        fsync_path(self.path.parent)
        self._open()

    def hash(self) -> int:
        """CRC-32 over every named database's keys and values (Maintenance.Hash)."""
        h = 0
        with self.env.begin() as txn:
            for name in DB_NAMES:
                h = zlib.crc32(name.encode(), h)
                for k, v in txn.cursor(db=self._dbs[name]):
                    h = zlib.crc32(v, zlib.crc32(k, h))
        return h

    def close(self) -> None:
        self.env.close()

"""The snapshot file: a consistent copy of the backend followed by the SHA-256 of that copy.

This is etcd's layout (bbolt there, LMDB here), so the bytes Maintenance.Snapshot streams are the
file, whichever client saves them (`petcd snapshot save` or `etcdctl snapshot save`). The copy is
whole pages, so a file with its digest has `size % 512 == 32` — etcd's own test for "has a digest";
a backend file copied out of a data dir has none (restore it with --skip-hash-check).

`verify` checks a file completely before anything uses it; `Receiver` writes a stream to
`<path>.part` and renames it to `<path>` only once the digest matched. See docs/snapshot-format.md.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from petcd.snapshot import lmdb_header

DIGEST_SIZE = hashlib.sha256().digest_size  # 32
DIGEST_ALIGNMENT = 512  # etcd's hasChecksum: size % 512 == 32
READ_SIZE = 1 << 20


class SnapshotError(Exception):
    """A snapshot that cannot be used; the text names the file and what is wrong with it."""


def has_digest(size: int) -> bool:
    return size % DIGEST_ALIGNMENT == DIGEST_SIZE


@dataclass(frozen=True)
class SnapshotFile:
    """A verified snapshot: where its backend bytes end, and their digest (None: a raw backend file
    accepted with --skip-hash-check)."""

    path: Path
    backend_size: int
    digest: bytes | None
    header: lmdb_header.LmdbHeader


def read_chunks(path: Path, length: int) -> Iterator[bytes]:
    """The first `length` bytes of the file, in READ_SIZE pieces."""
    with open(path, "rb") as f:
        remaining = length
        while remaining > 0:
            chunk = f.read(min(READ_SIZE, remaining))
            if not chunk:
                raise SnapshotError(f"snapshot {path} shrank while it was read")
            remaining -= len(chunk)
            yield chunk


def sha256_of(path: Path, length: int) -> bytes:
    digest = hashlib.sha256()
    for chunk in read_chunks(path, length):
        digest.update(chunk)
    return digest.digest()


def verify(path: str | os.PathLike[str], *, skip_hash_check: bool = False) -> SnapshotFile:
    """Check the whole file (digest, engine, length) and describe it; SnapshotError when unusable.
    Reads only: nothing is written, whatever the outcome."""
    file = Path(path)
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            head = f.read(lmdb_header.MAX_HEADER_BYTES)
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {file}: {exc.strerror or exc}") from None
    digest: bytes | None = None
    backend_size = size
    if has_digest(size):
        backend_size = size - DIGEST_SIZE
        with open(file, "rb") as f:
            f.seek(backend_size)
            digest = f.read(DIGEST_SIZE)
        if not skip_hash_check:
            actual = sha256_of(file, backend_size)
            if actual != digest:
                raise SnapshotError(
                    f"snapshot {file} is corrupt: the SHA-256 of its {backend_size} bytes is {actual.hex()}, "
                    f"its trailer says {digest.hex()}")
    elif not skip_hash_check:
        raise SnapshotError(
            f"snapshot {file} has no SHA-256 trailer ({size} bytes, not a multiple of {DIGEST_ALIGNMENT} "
            f"plus {DIGEST_SIZE}): it is truncated, or it is a backend file copied from a data directory "
            "(restore that with --skip-hash-check)")
    try:
        header = lmdb_header.parse(head)
    except lmdb_header.BboltFile:
        raise SnapshotError(
            f"snapshot {file} is an etcd (bbolt) snapshot: petcd keeps its data in LMDB and cannot read it; "
            "copy the keys from a running etcd with `etcdctl make-mirror` (see docs/migration.md)") from None
    except lmdb_header.HeaderError as exc:
        raise SnapshotError(f"snapshot {file} is not a petcd snapshot: {exc}") from None
    if header.required_size > backend_size:
        raise SnapshotError(
            f"snapshot {file} is truncated: its backend needs {header.required_size} bytes, "
            f"the file holds {backend_size}")
    return SnapshotFile(file, backend_size, digest if not skip_hash_check else None, header)


def copy_backend(snapshot: SnapshotFile, dest: Path) -> None:
    """Write the snapshot's backend bytes to `dest` (fsync'd), checking them against the digest again
    so a file changed since `verify` is not used."""
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        for chunk in read_chunks(snapshot.path, snapshot.backend_size):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if snapshot.digest is not None and digest.digest() != snapshot.digest:
        raise SnapshotError(f"snapshot {snapshot.path} changed while it was restored")


class Receiver:
    """Writes a snapshot stream (backend bytes, then their SHA-256) to `<path>.part`; `finish` checks the
    digest, fsyncs and renames to `path`; `abort` (or a failed `finish`) removes the part file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        self._file = open(self.part, "wb")  # noqa: SIM115 - closed by finish/abort
        os.chmod(self.part, 0o600)
        self._digest = hashlib.sha256()
        self._tail = b""  # the last DIGEST_SIZE bytes seen: the trailer, once the stream ends
        self.size = 0

    def write(self, blob: bytes) -> None:
        self._file.write(blob)
        self.size += len(blob)
        data = self._tail + blob
        self._digest.update(data[:-DIGEST_SIZE])
        self._tail = data[-DIGEST_SIZE:]

    def finish(self) -> int:
        """Returns the file's size; SnapshotError (and no file) when the stream did not end with the
        digest of what came before it."""
        try:
            if not has_digest(self.size) or self._digest.digest() != self._tail:
                raise SnapshotError(
                    f"the snapshot stream did not end with the SHA-256 of its contents ({self.size} bytes "
                    "received): the member sent an incomplete or damaged snapshot")
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.part, self.path)
        except BaseException:
            self.abort()
            raise
        return self.size

    def abort(self) -> None:
        self._file.close()
        self.part.unlink(missing_ok=True)

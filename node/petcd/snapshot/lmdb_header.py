"""The header of a backend file: LMDB's two meta pages (pure; bytes in, facts out).

A snapshot is a copy of petcd's LMDB file, so its first pages say which engine wrote it and how many
pages it must hold. Reading that before LMDB maps the file keeps a truncated copy from crashing the
reader (a page past the end of a mapped file is a SIGBUS). etcd's bbolt files put their own magic
number at the same offset, which lets petcd tell an etcd snapshot apart and say so.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LMDB_MAGIC = 0xBEEFC0DE
BBOLT_MAGIC = 0xED0CDAED
LMDB_VERSION = 1
PAGE_HEADER_SIZE = 16  # every page starts with its number, flags and bounds; the meta data follows
MAX_HEADER_BYTES = 2 * 65536  # two meta pages of the largest page size LMDB uses

# MDB_meta on a 64-bit build, as offsets from the start of a meta page.
_MAGIC_VERSION = struct.Struct("<II")  # at 16
_PAGE_SIZE = struct.Struct("<I")  # at 40: the free-page database's md_pad holds the page size
_LAST_PAGE_TXN = struct.Struct("<QQ")  # at 136: mm_last_pg, mm_txnid
_PAGE_SIZE_AT, _LAST_PAGE_AT = 40, 136
_META_END = _LAST_PAGE_AT + _LAST_PAGE_TXN.size


class HeaderError(ValueError):
    """The bytes are not a usable LMDB file; the text says what they are instead."""


class BboltFile(HeaderError):
    """The file is etcd's bbolt backend (an etcd snapshot), not petcd's LMDB."""


@dataclass(frozen=True)
class LmdbHeader:
    page_size: int
    last_page: int  # the highest page number the newest committed transaction uses
    txn_id: int

    @property
    def required_size(self) -> int:
        """Bytes the file must hold for every page the newest transaction reaches."""
        return (self.last_page + 1) * self.page_size


def _magic(head: bytes, page_start: int) -> tuple[int, int]:
    if len(head) < page_start + _META_END:
        raise HeaderError("too short to hold an LMDB header")
    magic, version = _MAGIC_VERSION.unpack_from(head, page_start + PAGE_HEADER_SIZE)
    return int(magic), int(version)


def _meta(head: bytes, page_start: int) -> tuple[int, int]:
    last_page, txn_id = _LAST_PAGE_TXN.unpack_from(head, page_start + _LAST_PAGE_AT)
    return int(last_page), int(txn_id)


def parse(head: bytes) -> LmdbHeader:
    """The newest valid meta page of the file whose first bytes are `head` (read MAX_HEADER_BYTES)."""
    if len(head) >= PAGE_HEADER_SIZE + 4:
        (first_word,) = struct.unpack_from("<I", head, PAGE_HEADER_SIZE)
        if first_word == BBOLT_MAGIC:
            raise BboltFile("an etcd (bbolt) backend")
    magic, version = _magic(head, 0)
    if magic != LMDB_MAGIC:
        raise HeaderError("no LMDB header")
    if version != LMDB_VERSION:
        raise HeaderError(f"LMDB data version {version}, petcd reads version {LMDB_VERSION}")
    (page_size,) = _PAGE_SIZE.unpack_from(head, _PAGE_SIZE_AT)
    if page_size < 512 or page_size & (page_size - 1):
        raise HeaderError(f"an LMDB header with an impossible page size {page_size}")
    metas = [_meta(head, 0)]
    if len(head) >= page_size + _META_END and _magic(head, page_size) == (LMDB_MAGIC, LMDB_VERSION):
        metas.append(_meta(head, page_size))
    last_page, txn_id = max(metas, key=lambda m: m[1])  # LMDB uses the meta page of the newer txn
    return LmdbHeader(page_size=page_size, last_page=last_page, txn_id=txn_id)

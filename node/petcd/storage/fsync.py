"""fsync of a file or a directory by path (a rename is durable only after its directory is synced)."""

from __future__ import annotations

import os


def fsync_path(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

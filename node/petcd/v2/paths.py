"""Key paths as etcd's v2 store cleans them (Go's path.Clean of path.Join("/", p))."""

from __future__ import annotations


def clean(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def split(path: str) -> tuple[str, str]:
    """Go's path.Split: everything up to and including the last slash, and the rest."""
    cut = path.rfind("/") + 1
    return path[:cut], path[cut:]


def join(parent: str, name: str) -> str:
    return clean(parent + "/" + name)

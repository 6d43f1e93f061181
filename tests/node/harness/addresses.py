"""Loopback addresses and free ports for test members (127.0.0.x, never fixed well-known ports)."""

from __future__ import annotations

import random
import socket

# 127.0.0.1 is left to the developer's own processes; tests spread over the rest of 127.0.0.0/24
# so that parallel test sessions rarely pick the same address and port.
_FIRST_HOST = 2
_LAST_HOST = 254


def loopback_hosts(count: int, rng: random.Random | None = None) -> list[str]:
    """`count` distinct consecutive 127.0.0.x addresses starting at a random x."""
    rng = rng or random.Random()
    start = rng.randint(_FIRST_HOST, _LAST_HOST - count + 1)
    return [f"127.0.0.{start + i}" for i in range(count)]


def free_port(host: str, kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port the kernel considers free on `host` right now (TCP by default)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def free_ports(host: str, count: int) -> list[int]:
    """`count` distinct free TCP ports on `host`, all held open until chosen so they differ."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()

"""systemd's sd_notify: `READY=1` (and `STOPPING=1`) to the socket named by $NOTIFY_SOCKET.

etcd tells systemd it is ready once it serves clients, so `Type=notify` units (the seed article's
etcd.service) only count it started then. A name starting with `@` is a Linux abstract-namespace
socket. Without $NOTIFY_SOCKET this does nothing; a failure to notify is reported, never fatal.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping


def socket_address(name: str) -> str | bytes:
    """$NOTIFY_SOCKET as a unix address: `@name` is the abstract socket `\\0name`."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


def notify(state: str, environ: Mapping[str, str]) -> bool:
    """Send `state` (e.g. "READY=1") as one datagram. False when there is nowhere to send it.

    Raises OSError when $NOTIFY_SOCKET is set but the datagram cannot be delivered.
    """
    name = environ.get("NOTIFY_SOCKET", "")
    if not name:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(socket_address(name))
        sock.sendall(state.encode())
    return True


def ready(environ: Mapping[str, str]) -> bool:
    return notify("READY=1", environ)


def stopping(environ: Mapping[str, str]) -> bool:
    return notify("STOPPING=1", environ)

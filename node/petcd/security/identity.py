"""What a verified client certificate says about its holder."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

# ssl's getpeercert() dictionary: {"subject": ((("commonName", "alice"),), ...), "subjectAltName": ...}
PeerCert = dict[str, Any]


def common_name(cert: PeerCert | None) -> str:
    """The subject's CN ("" when there is no certificate or no CN): the user name with
    --client-cert-auth, as etcd's AuthInfoFromTLS takes it."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def peer_allowed(cert: PeerCert | None, allowed_cn: str, allowed_hostname: str) -> bool:
    """--peer-cert-allowed-cn / --peer-cert-allowed-hostname: an empty setting allows any peer."""
    if allowed_cn and common_name(cert) != allowed_cn:
        return False
    if allowed_hostname:
        names = [v for k, v in (cert or {}).get("subjectAltName", ()) if k in ("DNS", "IP Address")]
        return allowed_hostname in names
    return True


class ClientIdentities:
    """The CN of each TLS client connection the client port splices into the gRPC server.

    gRPC sits behind a private unix socket and never sees the TLS session, so the client port binds
    each upstream connection to a unique abstract address, registered here with the client's CN;
    gRPC reports that address as the call's peer (`unix-abstract:<name>`), which `common_name_of`
    turns back into the CN for --client-cert-auth.
    """

    PEER_PREFIX = "unix-abstract:"

    def __init__(self, tag: str) -> None:
        self._tag = tag
        self._next = 0
        self._names: dict[str, str] = {}

    def register(self, common_name: str) -> str:
        """A fresh abstract socket address (with its leading NUL) for a connection of `common_name`."""
        self._next += 1
        name = f"petcd-{self._tag}-{self._next}"
        self._names[name] = common_name
        return "\0" + name

    async def connect(self, path: str, common_name: str) -> tuple[socket.socket, str]:
        """A unix socket connected to `path` from an address registered for `common_name`, and that
        address (to `forget` when the connection ends)."""
        address = self.register(common_name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(address)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, path)
        except OSError:
            sock.close()
            self.forget(address)
            raise
        return sock, address

    def forget(self, address: str) -> None:
        self._names.pop(address.lstrip("\0"), None)

    def common_name_of(self, peer: str) -> str:
        if not peer.startswith(self.PEER_PREFIX):
            return ""
        return self._names.get(peer[len(self.PEER_PREFIX) :], "")

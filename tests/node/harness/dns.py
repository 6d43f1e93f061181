"""A small authoritative DNS server on 127.0.0.x:53 (UDP), and a private /etc/resolv.conf for members.

etcd (Go) and petcd (dnspython) both read /etc/resolv.conf, which has no port field, so the server
listens on port 53 of its own loopback address and each member runs in a mount namespace where
/etc/resolv.conf is a bind mount of a file naming that address (root only; the rest of the machine
keeps its resolver).
"""

from __future__ import annotations

import os
import random
import socket
import threading
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rrset
import dns.zone

from .addresses import loopback_hosts


def can_serve_dns() -> str | None:
    """Why this process cannot run the DNS tests (port 53, mount namespaces), or None."""
    if os.geteuid() != 0:
        return "DNS tests need root (port 53 and a private /etc/resolv.conf in a mount namespace)"
    return None


class ZoneServer:
    """Answers queries for one zone from its text (RFC 1035 master-file format) until `close`."""

    def __init__(self, origin: str, zone_text: str):
        self.origin = dns.name.from_text(origin)
        self.zone = dns.zone.from_text(zone_text, origin=self.origin, relativize=False)
        self.socket = self._bind()
        self.host: str = self.socket.getsockname()[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-{origin}", daemon=True)
        self._thread.start()

    @staticmethod
    def _bind(attempts: int = 20) -> socket.socket:
        rng = random.Random()
        for _ in range(attempts):
            host = loopback_hosts(1, rng)[0]
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((host, 53))
            except OSError:
                sock.close()
                continue
            sock.settimeout(0.2)
            return sock
        raise OSError("no free 127.0.0.x:53 for the test DNS server")

    def answer(self, wire: bytes) -> bytes:
        """The authoritative answer to one query, as etcd's and dnspython's resolvers expect."""
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            if not question.name.is_subdomain(self.origin):
                response.set_rcode(dns.rcode.REFUSED)
                continue
            node = self.zone.get_node(question.name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                continue
            rdataset = node.get_rdataset(dns.rdataclass.IN, question.rdtype)
            if rdataset is not None:
                answer = dns.rrset.from_rdata_list(question.name, rdataset.ttl, list(rdataset))
                response.answer.append(answer)
        return response.to_wire()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self.socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self.socket.sendto(self.answer(wire), client)
            except (dns.exception.DNSException, OSError):
                continue  # a malformed query gets no answer, like a real server under attack

    def resolv_conf(self, directory: Path) -> Path:
        """A resolv.conf that sends every lookup to this server."""
        path = directory / "resolv.conf"
        path.write_text(f"nameserver {self.host}\noptions timeout:1 attempts:2\n")
        return path

    def close(self) -> None:
        self._stop.set()
        self.socket.close()
        self._thread.join(timeout=5)


def with_resolv_conf(resolv_conf: Path) -> list[str]:
    """An argv prefix that runs a program with `resolv_conf` mounted over /etc/resolv.conf."""
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, str(resolv_conf)]

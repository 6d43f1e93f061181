"""DNS SRV discovery (`--discovery-srv`, `--discovery-srv-name`) and the client-side SRV lookup.

As etcd 3.5+: look up `_etcd-server-ssl[-<name>]._tcp.<domain>` (https) and
`_etcd-server[-<name>]._tcp.<domain>` (http), combine what both give, and fail only when neither
gives anything. A target that resolves to the same address as one of this member's advertised
peer URLs takes this member's name; the others are named "0", "1", ...

Lookups use the system resolver configuration (/etc/resolv.conf) unless `nameserver` ("ip" or
"ip:port") is given, which tests use to point at their own DNS server.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.exception
import dns.resolver

from petcd.config import parse_initial_cluster
from petcd.discovery.errors import DiscoveryError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SRVRecord:
    target: str  # with the trailing dot, as DNS gives it
    port: int
    priority: int
    weight: int


class Lookup:
    """SRV and address lookups through one resolver (the system's, or a given nameserver)."""

    def __init__(self, nameserver: str | None = None, timeout_seconds: float = 5.0) -> None:
        self.nameserver = nameserver
        if nameserver is None:
            self.resolver = dns.resolver.Resolver(configure=True)
        else:
            self.resolver = dns.resolver.Resolver(configure=False)
            host, port = _split_host_port(nameserver, 53)
            self.resolver.nameservers = [host]
            self.resolver.port = port
        self.resolver.lifetime = timeout_seconds

    def _server(self) -> str:
        if self.nameserver is not None:
            return self.nameserver if ":" in self.nameserver else f"{self.nameserver}:53"
        servers = self.resolver.nameservers
        return f"{servers[0]}:{self.resolver.port}" if servers else "<no nameserver>"

    def srv(self, service: str, domain: str) -> list[SRVRecord]:
        """Go's net.LookupSRV(service, "tcp", domain): records ordered by priority, then weight."""
        qname = f"_{service}._tcp.{domain}"
        try:
            answer = self.resolver.resolve(qname, "SRV")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            raise OSError(f"lookup {qname} on {self._server()}: no such host") from None
        except dns.exception.DNSException as err:
            raise OSError(f"lookup {qname} on {self._server()}: {err}") from None
        records = [SRVRecord(str(r.target), int(r.port), int(r.priority), int(r.weight)) for r in answer]
        records.sort(key=lambda r: (r.priority, -r.weight))
        return records

    def tcp_addr(self, host: str, port: int) -> str:
        """Go's net.ResolveTCPAddr("tcp", host:port).String(): the first address, IPv4 first."""
        host = host.rstrip(".")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = ipaddress.ip_address(self._resolve_host(host))
        return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"

    def _resolve_host(self, host: str) -> str:
        for rdtype in ("A", "AAAA"):
            try:
                return str(self.resolver.resolve(host, rdtype)[0])
            except dns.exception.DNSException:
                continue
        # /etc/hosts and the like, as Go's resolver also consults them.
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            raise OSError(f"lookup {host} on {self._server()}: no such host") from None
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        return str(infos[0][4][0])


def _split_host_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, default_port


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def srv_service(service: str, service_name: str, scheme: str) -> str:
    """etcd's GetSRVService: `-ssl` for https, then `-<name>` when a service name is given."""
    if scheme == "https":
        service += "-ssl"
    return f"{service}-{service_name}" if service_name else service


def get_cluster(service_scheme: str, service: str, name: str, domain: str,
                advertise_peer_urls: Sequence[str], lookup: Lookup) -> list[str]:
    """etcd's srv.GetCluster: `name=scheme://target:port` for each SRV record of one service."""
    own: dict[str, str] = {}
    for url in advertise_peer_urls:
        parts = urlsplit(url)
        own[lookup.tcp_addr(parts.hostname or "", parts.port or 0)] = url
    entries: list[str] = []
    temp_name = 0
    error: Exception | None = None
    try:
        records = lookup.srv(service, domain)
    except OSError as err:
        raise DiscoveryError(f"error querying DNS SRV records for _{service} {err}") from None
    for record in records:
        try:
            addr = lookup.tcp_addr(record.target, record.port)
        except OSError as err:
            error = err
            continue
        own_url = own.get(addr)
        if own_url is not None:
            member = name
        else:
            member = str(temp_name)
            temp_name += 1
        url_host = _join_host_port(record.target.rstrip("."), record.port)
        if own_url is not None and urlsplit(own_url).scheme != service_scheme:
            error = OSError(f"bootstrap at {service_scheme}://{url_host} from DNS for {service} "
                            f"has scheme mismatch with expected peer {own_url}")
        else:
            entries.append(f"{member}={service_scheme}://{url_host}")
    if not entries:
        raise DiscoveryError(f"error querying DNS SRV records for _{service} {error}")
    return entries


def dns_cluster_names(name: str, domain: str, service_name: str, advertise_peer_urls: Sequence[str],
                      lookup: Lookup) -> tuple[list[str], list[str]]:
    """etcd 3.5's GetDNSClusterNames: (entries from both services, errors of the lookups that failed)."""
    suffix = f"-{service_name}" if service_name else ""
    entries: list[str] = []
    failures: list[str] = []
    for scheme, service in (("https", "etcd-server-ssl" + suffix), ("http", "etcd-server" + suffix)):
        try:
            found = get_cluster(scheme, service, name, domain, advertise_peer_urls, lookup)
        except DiscoveryError as err:
            failures.append(str(err))
            found = []
        entries.extend(found)
        log.info("get cluster for %s SRV service-scheme=%s discovery-srv=%s found-cluster=%s error=%s",
                 service, scheme, domain, found, failures[-1] if not found and failures else None)
    return entries, failures


def srv_initial_cluster(name: str, domain: str, service_name: str, advertise_peer_urls: Sequence[str],
                        nameserver: str | None = None) -> str:
    """The --initial-cluster that --discovery-srv gives this member (etcd's PeerURLsMapAndToken).

    A failed lookup of one of the two services is only a warning; raises DiscoveryError when
    nothing was found, or when this member is not among the records.
    """
    entries, failures = dns_cluster_names(name, domain, service_name, advertise_peer_urls,
                                          Lookup(nameserver))
    if failures:
        log.warning("failed to resolve during SRV discovery: %s", "\n".join(failures))
    if not entries:
        raise DiscoveryError("\n".join(failures))
    for entry in entries:
        log.info("got bootstrap from DNS for etcd-server node=%s", entry)
    cluster = ",".join(entries)
    if name not in parse_initial_cluster(cluster):
        raise DiscoveryError(f'cannot find local etcd member "{name}" in SRV records')
    return cluster


def client_endpoints(domain: str, service_name: str = "", nameserver: str | None = None,
                     service: str = "etcd-client") -> list[str]:
    """etcd's srv.GetClient: client URLs from `_etcd-client-ssl._tcp` (https) and `_etcd-client._tcp`."""
    lookup = Lookup(nameserver)
    urls: list[str] = []
    failures: list[str] = []
    for scheme in ("https", "http"):
        try:
            records = lookup.srv(srv_service(service, service_name, scheme), domain)
        except OSError as err:
            failures.append(str(err))
            continue
        urls.extend(f"{scheme}://{_join_host_port(r.target, r.port)}" for r in records)
    if len(failures) == 2:
        raise DiscoveryError(f"dns lookup errors: {failures[0]} and {failures[1]}")
    return urls

"""DNS SRV discovery against a real (small, authoritative) DNS server on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from petcd.config import Config
from petcd.discovery import srv
from petcd.discovery.bootstrap import initial_members
from petcd.discovery.errors import DiscoveryError

RECORDS: dict[tuple[str, str], list[str]] = {
    ("_etcd-server._tcp.example.test.", "SRV"): [
        "0 0 2380 infra0.example.test.", "0 0 2380 infra1.example.test.", "0 0 2380 infra2.example.test."],
    ("_etcd-client._tcp.example.test.", "SRV"): ["0 0 2379 infra0.example.test."],
    ("_etcd-server-ssl-prod._tcp.custom.test.", "SRV"): [
        "0 0 2380 infra0.example.test.", "0 0 2380 infra1.example.test."],
    ("_etcd-server._tcp.mixed.test.", "SRV"): [
        "0 0 2380 infra0.example.test.", "0 0 2380 infra1.example.test."],
    ("infra0.example.test.", "A"): ["127.0.0.21"],
    ("infra1.example.test.", "A"): ["127.0.0.22"],
    ("infra2.example.test.", "A"): ["127.0.0.23"],
}


class AuthoritativeServer:
    """Answers UDP queries from RECORDS: the records, NOERROR/no data, or NXDOMAIN."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text()
            rtype = dns.rdatatype.to_text(question.rdtype)
            if not any(n == name for n, _ in RECORDS):
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif (name, rtype) in RECORDS:
                response.answer.append(dns.rrset.from_text_list(
                    question.name, 60, dns.rdataclass.IN, question.rdtype, RECORDS[(name, rtype)]))
            self.sock.sendto(response.to_wire(), peer)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()


def names_and_urls(cluster: str) -> tuple[dict[str, str], set[str]]:
    """The named (self) entries, and the URLs of the others, which must be named 0, 1, ..."""
    entries = [entry.split("=", 1) for entry in cluster.split(",")]
    others = [(name, url) for name, url in entries if name.isdigit()]
    assert sorted(name for name, _ in others) == [str(i) for i in range(len(others))]
    return {name: url for name, url in entries if not name.isdigit()}, {url for _, url in others}


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    server = AuthoritativeServer()
    try:
        yield server.address
    finally:
        server.stop()


def test_http_records_bootstrap_and_self_is_recognised(nameserver: str) -> None:
    cluster = srv.srv_initial_cluster("infra1", "example.test", "", ["http://127.0.0.22:2380"], nameserver)
    # The failed _etcd-server-ssl lookup is only a warning (etcd 3.5+). Record order is DNS's own.
    assert names_and_urls(cluster) == (
        {"infra1": "http://infra1.example.test:2380"},
        {"http://infra0.example.test:2380", "http://infra2.example.test:2380"},
    )


def test_advertised_hostname_is_resolved_to_find_self(nameserver: str) -> None:
    cluster = srv.srv_initial_cluster("infra2", "example.test", "", ["http://infra2.example.test:2380"],
                                      nameserver)
    assert "infra2=http://infra2.example.test:2380" in cluster.split(",")


def test_member_missing_from_records(nameserver: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        srv.srv_initial_cluster("other", "example.test", "", ["http://127.0.0.99:2380"], nameserver)
    assert str(info.value) == 'cannot find local etcd member "other" in SRV records'


def test_both_lookups_failing_is_an_error_naming_both(nameserver: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        srv.srv_initial_cluster("a", "nothing.test", "", ["http://127.0.0.21:2380"], nameserver)
    assert str(info.value).split("\n") == [
        f"error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.nothing.test "
        f"on {nameserver}: no such host",
        f"error querying DNS SRV records for _etcd-server lookup _etcd-server._tcp.nothing.test "
        f"on {nameserver}: no such host",
    ]


def test_service_name_suffix_and_https(nameserver: str) -> None:
    cluster = srv.srv_initial_cluster("infra0", "custom.test", "prod", ["https://127.0.0.21:2380"],
                                      nameserver)
    assert names_and_urls(cluster) == ({"infra0": "https://infra0.example.test:2380"},
                                       {"https://infra1.example.test:2380"})


def test_scheme_mismatch_drops_the_own_record(nameserver: str) -> None:
    lookup = srv.Lookup(nameserver)
    entries = srv.get_cluster("http", "etcd-server", "infra0", "mixed.test", ["https://127.0.0.21:2380"],
                              lookup)
    assert entries == ["0=http://infra1.example.test:2380"]
    with pytest.raises(DiscoveryError, match=r"scheme mismatch with expected peer https://127\.0\.0\.2[12]:2380$"):
        srv.srv_initial_cluster("infra0", "mixed.test", "", ["https://127.0.0.21:2380",
                                                             "https://127.0.0.22:2380"], nameserver)


def test_client_srv(nameserver: str) -> None:
    assert srv.client_endpoints("example.test", nameserver=nameserver) == ["http://infra0.example.test.:2379"]
    with pytest.raises(DiscoveryError, match=r"^dns lookup errors: lookup _etcd-client-ssl\._tcp\.nothing"):
        srv.client_endpoints("nothing.test", nameserver=nameserver)


def test_srv_service_names() -> None:
    assert srv.srv_service("etcd-server", "", "https") == "etcd-server-ssl"
    assert srv.srv_service("etcd-server", "prod", "http") == "etcd-server-prod"
    assert srv.srv_service("etcd-client", "prod", "https") == "etcd-client-ssl-prod"


def test_bootstrap_from_srv_config(nameserver: str) -> None:
    config = Config(name="infra0", initial_cluster="", discovery_srv="example.test",
                    initial_advertise_peer_urls=("http://127.0.0.21:2380",))
    members = asyncio.run(initial_members(config, 1, nameserver=nameserver))
    assert members["infra0"] == ("http://infra0.example.test:2380",)
    assert sorted(members) == ["0", "1", "infra0"]

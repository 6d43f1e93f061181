"""The seed article, replayed step by step on loopback (127.0.0.x in place of 192.168.122.x).

Each test runs with every registered implementation, so the same steps that pass with Debian's
etcd 3.4 and with etcd 3.5 are what petcd is held to. The article's clients are Debian's etcdctl
(v2 API, as in the article) and curl.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from harness import (
    IMPLEMENTATIONS,
    Cluster,
    Implementation,
    Member,
    MemberAddress,
    Result,
    Sandbox,
    etcdctl,
    flags_as_environment,
    http_get,
    static_flags,
)
from harness.dns import ZoneServer, can_serve_dns, with_resolv_conf

ARTICLE_TOKEN = "etcd-cluster-1"
DISCOVERY_TOKEN = "6c007a14875d53d9bf0ef5a6fc0257c817f0fb83"  # the article's token
V2 = ["--enable-v2=true"]  # etcd 3.4/3.5 serve the v2 API only when asked
V2_MEMBER = re.compile(r"^([0-9a-f]+): name=(\S+) peerURLs=(\S+) clientURLs=(\S+) isLeader=(true|false)$")
V2_HEALTHY = re.compile(r"^member ([0-9a-f]+) is healthy: got healthy result from (\S+)$")


def v2(endpoints: Sequence[str], *args: str, wrapper: Sequence[str] = ()) -> Result:
    """`ETCDCTL_API=2 etcdctl ...`, the article's client."""
    return etcdctl(args, endpoints, api="2", wrapper=wrapper)


def advertised(members: Sequence[Member]) -> dict[str, tuple[str, str]]:
    return {m.name: (m.address.peer_url, m.client_url) for m in members}


def assert_article_member_list(
    members: Sequence[Member], expected: dict[str, tuple[str, str]] | None = None, wrapper: Sequence[str] = ()
) -> None:
    """`etcdctl member list` (v2) as in the article: each member once with its advertised (peer,
    client) URLs, exactly one isLeader=true."""
    output = v2([m.client_url for m in members], "member", "list", wrapper=wrapper).check().stdout
    rows = [V2_MEMBER.match(line) for line in output.splitlines()]
    assert all(rows), output
    listed = {row.group(2): (row.group(3), row.group(4)) for row in rows if row}
    assert listed == (expected or advertised(members)), output
    assert [row.group(5) for row in rows if row].count("true") == 1, output


def assert_cluster_health(
    members: Sequence[Member], expected: dict[str, tuple[str, str]] | None = None, wrapper: Sequence[str] = ()
) -> None:
    """`etcdctl cluster-health` (v2): one healthy line per member, then `cluster is healthy`."""
    output = v2([m.client_url for m in members], "cluster-health", wrapper=wrapper).check().stdout
    lines = output.splitlines()
    assert lines[-1] == "cluster is healthy", output
    healthy = [V2_HEALTHY.match(line) for line in lines[:-1]]
    assert all(healthy), output
    client_urls = sorted(client for _, client in (expected or advertised(members)).values())
    assert sorted(h.group(2) for h in healthy if h) == client_urls, output


def test_single_node_set_and_get(sandbox: Sandbox, implementation: Implementation) -> None:
    node = sandbox.static_cluster(implementation, 1, names=["default"], extra_flags=V2)
    assert v2(node.endpoints, "set", "site", "www.361way.com").check().stdout == "www.361way.com\n"
    assert v2(node.endpoints, "get", "site").check().stdout == "www.361way.com\n"


@pytest.mark.parametrize("configured_by", ["flags", "environment"])
def test_static_cluster(sandbox: Sandbox, implementation: Implementation, configured_by: str) -> None:
    """Section 4: three members with the article's flags (or its etcd.conf's ETCD_* variables)."""
    cluster = sandbox.static_cluster(
        implementation, 3, token=ARTICLE_TOKEN, extra_flags=V2, as_environment=configured_by == "environment"
    )
    assert_article_member_list(cluster.members)
    assert_cluster_health(cluster.members)
    first, _, last = cluster.members
    v2([first.client_url], "set", "site", "www.361way.com").check()
    assert v2([last.client_url], "--no-sync", "get", "site").check().stdout == "www.361way.com\n"


def test_restart_with_the_articles_etcd_conf(sandbox: Sandbox, implementation: Implementation) -> None:
    """Section 4's etcd.conf for an installed cluster: ETCD_INITIAL_CLUSTER_STATE="existing" and
    another token ("etcd-cluster2"). Members with data dirs ignore both: same cluster, same data."""
    cluster = sandbox.static_cluster(implementation, 3, token=ARTICLE_TOKEN, extra_flags=V2)
    v2(cluster.endpoints, "set", "site", "www.361way.com").check()
    cluster_id, member_ids = cluster.cluster_id(), cluster.member_ids()
    for member in cluster.members:
        member.terminate()
    addresses = [m.address for m in cluster.members]
    restarted = []
    for member in cluster.members:
        flags = static_flags(
            member.address, member.data_dir, addresses, token="etcd-cluster2", state="existing"
        )
        env = flags_as_environment([*flags, *V2])
        restarted.append(sandbox.member(implementation, member.address, [], env=env))
    again = Cluster(implementation, restarted, "etcd-cluster2")
    again.wait_healthy()
    assert (again.cluster_id(), again.member_ids()) == (cluster_id, member_ids)
    assert v2(again.endpoints, "get", "site").check().stdout == "www.361way.com\n"
    assert_article_member_list(restarted)


def curl(*args: str) -> str:
    done = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def discovery_service(sandbox: Sandbox, implementation: Implementation, size: int) -> tuple[Cluster, str]:
    """A running single node holding a discovery directory of `size` (section 5's first step)."""
    service = sandbox.static_cluster(implementation, 1, names=["discovery"], extra_flags=V2)
    url = f"{service.endpoints[0]}/v2/keys/discovery/{DISCOVERY_TOKEN}"
    answer = json.loads(curl("-X", "PUT", f"{url}/_config/size", "-d", f"value={size}"))
    assert answer["action"] == "set"
    assert answer["node"]["key"] == f"/discovery/{DISCOVERY_TOKEN}/_config/size"
    assert answer["node"]["value"] == str(size)
    assert answer["node"]["modifiedIndex"] == answer["node"]["createdIndex"]
    return service, url


def discovery_member(
    sandbox: Sandbox, implementation: Implementation, name: str, url: str, *flags: str
) -> Member:
    (address,) = sandbox.addresses([name])
    return sandbox.member(
        implementation,
        address,
        [
            f"--name={name}",
            f"--data-dir={sandbox.data_dir(address)}",
            f"--initial-advertise-peer-urls={address.peer_url}",
            f"--listen-peer-urls={address.peer_url}",
            f"--listen-client-urls={address.client_url}",
            f"--advertise-client-urls={address.client_url}",
            f"--discovery={url}",
            *V2,
            *flags,
        ],
    )


def test_discovery_url(sandbox: Sandbox, implementation: Implementation) -> None:
    """Section 5: a discovery URL on a running node, three members started with --discovery."""
    _, url = discovery_service(sandbox, implementation, 3)
    members = [discovery_member(sandbox, implementation, f"infra{i}", url) for i in range(3)]
    for member in members:
        member.wait_healthy()
    assert_article_member_list(members)
    assert_cluster_health(members)
    registered = json.loads(http_get(url)[1])["node"]["nodes"]
    assert sorted(node["value"] for node in registered) == sorted(
        f"{m.name}={m.address.peer_url}" for m in members
    )


def test_discovery_cluster_is_full(sandbox: Sandbox, implementation: Implementation) -> None:
    """A member beyond the discovery size is refused; with --discovery-fallback=exit it stops
    (etcd's default fallback, `proxy`, turns it into a v2 proxy instead)."""
    _, url = discovery_service(sandbox, implementation, 1)
    discovery_member(sandbox, implementation, "infra0", url).wait_healthy()
    extra = discovery_member(sandbox, implementation, "infra1", url, "--discovery-fallback=exit")
    assert extra.wait_exit(30) not in (None, 0), extra.log_tail()
    assert extra.logged("discovery: cluster is full")


SRV_DOMAIN = "example.com"


@dataclass(frozen=True)
class SrvSetup:
    """Member addresses, the SRV service name suffix (--discovery-srv-name), and the argv prefix
    that gives a process a resolv.conf pointing at the test's DNS server."""

    addresses: list[MemberAddress]
    service_name: str
    wrapper: list[str]

    @property
    def suffix(self) -> str:
        return srv_suffix(self.service_name)

    @property
    def name_flags(self) -> list[str]:
        return [f"--discovery-srv-name={self.service_name}"] if self.service_name else []


def srv_suffix(service_name: str) -> str:
    """etcd appends `-<name>` to its SRV service names for --discovery-srv-name."""
    return f"-{service_name}" if service_name else ""


def srv_zone(addresses: Sequence[MemberAddress], suffix: str) -> str:
    """The article's section 6 records, with this run's loopback addresses and ports."""
    lines = [
        "$TTL 300",
        f"@ IN SOA ns.{SRV_DOMAIN}. hostmaster.{SRV_DOMAIN}. 1 3600 600 86400 300",
        f"@ IN NS ns.{SRV_DOMAIN}.",
        "ns IN A 127.0.0.1",
    ]
    for a in addresses:
        lines.append(f"_etcd-server{suffix}._tcp IN SRV 0 0 {a.peer_port} {a.name}.{SRV_DOMAIN}.")
        lines.append(f"_etcd-client{suffix}._tcp IN SRV 0 0 {a.client_port} {a.name}.{SRV_DOMAIN}.")
        lines.append(f"{a.name} IN A {a.host}")
    return "\n".join(lines) + "\n"


def srv_flags(address: MemberAddress, sandbox: Sandbox, setup: SrvSetup) -> list[str]:
    """The article's flags for DNS discovery; listeners take the IP (etcd binds IPs, not names)."""
    host = f"{address.name}.{SRV_DOMAIN}"
    return [
        f"--name={address.name}",
        f"--data-dir={sandbox.data_dir(address)}",
        f"--discovery-srv={SRV_DOMAIN}",
        *setup.name_flags,
        f"--initial-advertise-peer-urls=http://{host}:{address.peer_port}",
        f"--initial-cluster-token={ARTICLE_TOKEN}",
        "--initial-cluster-state=new",
        f"--advertise-client-urls=http://{host}:{address.client_port}",
        f"--listen-client-urls={address.client_url}",
        f"--listen-peer-urls={address.peer_url}",
        *V2,
    ]


@pytest.fixture(params=["", "prod"], ids=["srv", "srv-name"])
def srv_setup(sandbox: Sandbox, request: pytest.FixtureRequest) -> Iterator[SrvSetup]:
    """Three member addresses and a DNS server on loopback serving the article's records for them
    (under `_etcd-server-prod._tcp` etc. for --discovery-srv-name=prod)."""
    reason = can_serve_dns()
    if reason:
        pytest.skip(reason)
    addresses = sandbox.addresses(["infra0", "infra1", "infra2"])
    service_name: str = request.param
    server = ZoneServer(f"{SRV_DOMAIN}.", srv_zone(addresses, srv_suffix(service_name)))
    try:
        yield SrvSetup(addresses, service_name, with_resolv_conf(server.resolv_conf(sandbox.root)))
    finally:
        server.close()


def srv_members(sandbox: Sandbox, implementation: Implementation, setup: SrvSetup) -> list[Member]:
    return [
        sandbox.member(implementation, a, srv_flags(a, sandbox, setup), wrapper=setup.wrapper)
        for a in setup.addresses
    ]


def test_dns_srv_bootstrap(sandbox: Sandbox, implementation: Implementation, srv_setup: SrvSetup) -> None:
    """Section 6: three members find each other through _etcd-server._tcp SRV records over plain
    HTTP; clients find them through _etcd-client._tcp."""
    if implementation.name == "etcd34":
        pytest.skip("etcd 3.4.23 cannot bootstrap from plain-HTTP SRV records (test_dns_srv_etcd34_fails)")
    members = srv_members(sandbox, implementation, srv_setup)
    for member in members:
        member.wait_healthy()
    by_name = {
        m.name: (
            f"http://{m.name}.{SRV_DOMAIN}:{m.address.peer_port}",
            f"http://{m.name}.{SRV_DOMAIN}:{m.address.client_port}",
        )
        for m in members
    }
    assert_article_member_list(members, by_name, srv_setup.wrapper)
    assert_cluster_health(members, by_name, srv_setup.wrapper)
    client_flags = ["--discovery-srv", SRV_DOMAIN, *srv_setup.name_flags]
    found = etcdctl([*client_flags, "member", "list", "-w", "json"], [], wrapper=srv_setup.wrapper)
    listed = json.loads(found.check().stdout)["members"]
    assert sorted(m["name"] for m in listed) == ["infra0", "infra1", "infra2"]


def test_dns_srv_etcd34_fails(sandbox: Sandbox, srv_setup: SrvSetup) -> None:
    """The known difference: etcd 3.4.23 treats the failed _etcd-server-ssl._tcp lookup as fatal
    (fixed in 3.5, where it is a warning), so it cannot bootstrap from plain-HTTP SRV records."""
    etcd34 = IMPLEMENTATIONS["etcd34"]
    members = srv_members(sandbox, etcd34, srv_setup)
    service = f"_etcd-server-ssl{srv_setup.suffix}"
    for member in members:
        assert member.wait_exit(30) not in (None, 0), member.log_tail()
        assert member.logged(
            f"error setting up initial cluster: error querying DNS SRV records for {service}"
            f" lookup {service}._tcp.{SRV_DOMAIN}"
        )

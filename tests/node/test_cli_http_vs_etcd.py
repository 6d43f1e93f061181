"""petcd's HTTP endpoints against a real etcd's, byte for byte.

- Peer port: etcd 3.4's `/members` and `/version` are read with petcd's client, then served by
  petcd's peer application from what was read; the bodies and headers must be etcd's.
- Client port (etcd 3.5): `/health`, `/livez`, `/readyz`, `/version` of a healthy member, and of a
  member that has no leader (one started member of three), against petcd's handlers answering the
  same state.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from harness import IMPLEMENTATIONS, Sandbox
from petcd.api.http import add_routes
from petcd.metrics import Metrics
from petcd.transport.peer_http import MemberInfo, PromoteError, build_peer_app, fetch_cluster_info

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
COMPARED_HEADERS = ("Content-Type", "X-Etcd-Cluster-Id", "Allow", "X-Content-Type-Options")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def etcd_answer(url: str, method: str = "GET") -> Answer:
    request = urllib.request.Request(url, method=method)
    try:
        with _NO_PROXY.open(request, timeout=10) as response:
            return Answer(response.status, _compared(dict(response.headers)), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, _compared(dict(error.headers)), error.read())


def _compared(headers: dict[str, str]) -> dict[str, str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    return {name: lowered[name.lower()] for name in COMPARED_HEADERS if name.lower() in lowered}


def petcd_answers(app: aiohttp.web.Application, requests: Sequence[tuple[str, str]]) -> list[Answer]:
    async def main() -> list[Answer]:
        answers = []
        async with TestClient(TestServer(app)) as client:
            for method, path in requests:
                async with client.request(method, path) as response:
                    answers.append(Answer(response.status, _compared(dict(response.headers)),
                                          await response.read()))
        return answers

    return asyncio.run(main())


def client_app(state: MemberState, metrics: Metrics) -> aiohttp.web.Application:
    """The client port's health, version and metrics endpoints."""
    app = aiohttp.web.Application()
    add_routes(app, state, metrics)
    return app


@dataclass
class ClusterView:
    """What petcd's peer endpoints would serve for the cluster etcd described."""

    id_of_cluster: int
    member_list: Sequence[MemberInfo]
    version_pair: tuple[str, str]

    def cluster_id(self) -> int:
        return self.id_of_cluster

    def members(self) -> Sequence[MemberInfo]:
        return self.member_list

    def versions(self) -> tuple[str, str]:
        return self.version_pair


def test_peer_members_and_version_match_etcd(sandbox: Sandbox) -> None:
    etcd = IMPLEMENTATIONS["etcd34"]
    etcd.require()
    cluster = sandbox.static_cluster(etcd, size=1)
    peer_url = cluster.members[0].address.peer_url
    cluster_id, members = asyncio.run(fetch_cluster_info([peer_url]))
    assert cluster_id == cluster.cluster_id()
    assert [m.id for m in members] == list(cluster.member_ids().values())
    voter = members[0].id
    requests = [("GET", "/members"), ("GET", "/version"), ("POST", "/members"), ("GET", "/bogus"),
                ("POST", "/members/promote/12ab"), ("GET", f"/members/promote/{voter}"),
                ("POST", f"/members/promote/{voter}")]
    theirs = [etcd_answer(peer_url + path, method) for method, path in requests]
    view = ClusterView(cluster_id, members, ("3.4.23", "3.4.0"))

    async def refuse_voter(member_id: int) -> Sequence[MemberInfo]:
        raise PromoteError(412, "membership: can only promote a learner member")

    ours = petcd_answers(build_peer_app(view, refuse_voter), requests)
    for (method, path), mine, real in zip(requests, ours, theirs, strict=True):
        assert mine == real, (method, path)


@dataclass
class MemberState:
    leader: int
    server_version: str
    cluster_version: str
    alarm_names: list[str] = field(default_factory=list)

    def leader_id(self) -> int:
        return self.leader

    def alarms(self) -> Sequence[str]:
        return self.alarm_names

    def is_learner(self) -> bool:
        return False

    async def read_probe(self, serializable: bool) -> None:
        if not serializable and not self.leader:
            raise RuntimeError("context deadline exceeded")

    def versions(self) -> tuple[str, str]:
        return self.server_version, self.cluster_version


def _sorted_lines(answer: Answer) -> Answer:
    """etcd runs its checks in Go map order: compare the check lines as a set."""
    return Answer(answer.status, answer.headers, b"".join(sorted(answer.body.splitlines(keepends=True))))


HEALTHY_PATHS = ["/health", "/health?serializable=true", "/livez", "/livez?verbose", "/readyz",
                 "/readyz?verbose", "/readyz/non_learner", "/readyz?exclude=linearizable_read&verbose",
                 "/version"]


def test_client_health_endpoints_match_etcd35(sandbox: Sandbox) -> None:
    etcd = IMPLEMENTATIONS["etcd35"]
    etcd.require()
    cluster = sandbox.static_cluster(etcd, size=1)
    url = cluster.members[0].client_url
    assert etcd.etcd_version is not None
    state = MemberState(leader=1, server_version=etcd.etcd_version, cluster_version="3.5.0")
    paths = [*HEALTHY_PATHS, "/health#POST"]
    requests = [("POST", p.split("#")[0]) if p.endswith("#POST") else ("GET", p) for p in paths]
    theirs = [etcd_answer(url + path, method) for method, path in requests]
    ours = petcd_answers(client_app(state, Metrics(etcd.etcd_version)), requests)
    for path, mine, real in zip(paths, ours, theirs, strict=True):
        assert _sorted_lines(mine) == _sorted_lines(real), path


def test_no_leader_answers_match_etcd35(sandbox: Sandbox) -> None:
    etcd = IMPLEMENTATIONS["etcd35"]
    etcd.require()
    cluster = sandbox.static_cluster(etcd, size=3)
    for member in cluster.members[1:]:
        member.kill()
    url = cluster.members[0].client_url
    assert asyncio.run(_wait_for_status(url + "/health", 503)), "etcd kept its leader"
    state = MemberState(leader=0, server_version=etcd.etcd_version or "", cluster_version="3.5.0")
    paths = ["/health", "/livez?verbose", "/version", "/health?serializable=true"]
    theirs = [etcd_answer(url + path) for path in paths]
    ours = petcd_answers(client_app(state, Metrics(state.server_version)), [("GET", p) for p in paths])
    assert ours == theirs


async def _wait_for_status(url: str, status: int, timeout: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession(trust_env=False) as session:
        while loop.time() < deadline:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == status:
                        return True
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    return False


def _metric_types(text: str) -> dict[str, str]:
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
    return types


def _buckets(text: str, name: str) -> list[str]:
    return [line.split('le="')[1].split('"')[0] for line in text.splitlines()
            if line.startswith(f"{name}_bucket{{") and "le=" in line]


def test_metric_names_types_and_buckets_match_etcd35(sandbox: Sandbox) -> None:
    etcd = IMPLEMENTATIONS["etcd35"]
    etcd.require()
    cluster = sandbox.static_cluster(etcd, size=1)
    theirs_text = etcd_answer(cluster.members[0].client_url + "/metrics").body.decode()
    ours = Metrics(etcd.etcd_version or "")
    ours.wal_fsync_duration.observe(0.001)
    ours.backend_commit_duration.observe(0.001)
    ours_text = ours.render().decode()
    theirs, mine = _metric_types(theirs_text), _metric_types(ours_text)
    shared = set(theirs) & set(mine)
    assert {name: mine[name] for name in shared} == {name: theirs[name] for name in shared}
    must_share = {"etcd_server_has_leader", "etcd_server_leader_changes_seen_total",
                  "etcd_server_proposals_committed_total", "etcd_mvcc_db_total_size_in_bytes",
                  "etcd_disk_wal_fsync_duration_seconds", "etcd_server_health_success", "etcd_server_id",
                  "grpc_server_handled_total", "os_fd_used", "process_resident_memory_bytes"}
    assert must_share <= shared
    for histogram in ("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds"):
        mine_buckets = [float(b) for b in _buckets(ours_text, histogram)]
        assert len(mine_buckets) == 15  # 14 bounds and +Inf
        assert mine_buckets == [float(b) for b in _buckets(theirs_text, histogram)]

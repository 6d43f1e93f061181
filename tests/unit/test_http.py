"""petcd.api.http: etcd's /health, /livez, /readyz, /version and /metrics answers, over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
import uvloop
from aiohttp.test_utils import TestClient, TestServer
from petcd.api.http import MetricsListeners, add_routes, build_app
from petcd.metrics import Metrics


@dataclass
class MemberState:
    """A member's answers to the health questions, set by each test."""

    leader: int = 1
    alarm_names: list[str] = field(default_factory=list)
    learner: bool = False
    linearizable_error: str = ""
    serializable_error: str = ""
    reads: list[bool] = field(default_factory=list)

    def leader_id(self) -> int:
        return self.leader

    def alarms(self) -> Sequence[str]:
        return self.alarm_names

    def is_learner(self) -> bool:
        return self.learner

    async def read_probe(self, serializable: bool) -> None:
        self.reads.append(serializable)
        error = self.serializable_error if serializable else self.linearizable_error
        if error:
            raise RuntimeError(error)

    def versions(self) -> tuple[str, str]:
        return "3.5.17", "3.5.0"


Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]
Scenario = Callable[[Client, Metrics], Awaitable[None]]


def serve(state: MemberState, scenario: Scenario) -> None:
    async def main() -> None:
        metrics = Metrics("3.5.17")
        app = aiohttp.web.Application()
        add_routes(app, state, metrics)  # the client port's endpoints
        async with TestClient(TestServer(app)) as client:
            await scenario(client, metrics)

    asyncio.run(main())


async def get(client: Client, path: str,
              method: str = "GET") -> tuple[int, str, str]:
    async with client.request(method, path) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def test_health_ok() -> None:
    state = MemberState()

    async def scenario(client: Client, m: Metrics) -> None:
        ok = '{"health":"true","reason":""}'
        assert await get(client, "/health") == (200, "text/plain; charset=utf-8", ok)
        assert state.reads == [False]
        assert m.health_success.get() == 1

    serve(state, scenario)


@pytest.mark.parametrize(("state", "query", "reason"), [
    (MemberState(leader=0), "", "RAFT NO LEADER"),
    (MemberState(alarm_names=["NOSPACE"]), "", "ALARM NOSPACE"),
    (MemberState(alarm_names=["CORRUPT"]), "", "ALARM CORRUPT"),
    (MemberState(alarm_names=["NOSPACE", "CORRUPT"]), "?exclude=NOSPACE", "ALARM CORRUPT"),
    (MemberState(linearizable_error="etcdserver: request timed out"), "",
     "RANGE ERROR:etcdserver: request timed out"),
    (MemberState(leader=0, serializable_error="etcdserver: no space"), "?serializable=true",
     "RANGE ERROR:etcdserver: no space"),
])
def test_health_failures(state: MemberState, query: str, reason: str) -> None:
    async def scenario(client: Client, m: Metrics) -> None:
        status, ctype, body = await get(client, "/health" + query)
        assert (status, ctype) == (503, "text/plain; charset=utf-8")
        assert body == json.dumps({"health": "false", "reason": reason}, separators=(",", ":")) + "\n"
        assert m.health_failures.get() == 1

    serve(state, scenario)


@pytest.mark.parametrize(("state", "query"), [
    (MemberState(leader=0), "?serializable=true"),
    (MemberState(alarm_names=["NOSPACE"]), "?exclude=NOSPACE"),
    (MemberState(alarm_names=["NOSPACE", "CORRUPT"]), "?exclude=NOSPACE&exclude=CORRUPT"),
])
def test_health_options(state: MemberState, query: str) -> None:
    async def scenario(client: Client, m: Metrics) -> None:
        assert (await get(client, "/health" + query))[0] == 200

    serve(state, scenario)


def test_serializable_health_reads_locally() -> None:
    state = MemberState(leader=0)

    async def scenario(client: Client, m: Metrics) -> None:
        await get(client, "/health?serializable=true")
        assert state.reads == [True]

    serve(state, scenario)


@pytest.mark.parametrize("path", ["/health", "/version", "/livez", "/readyz", "/readyz/non_learner",
                                  "/metrics"])
def test_only_get_is_allowed(path: str) -> None:
    async def scenario(client: Client, m: Metrics) -> None:
        async with client.post(path) as response:
            assert response.status == 405
            assert response.headers["Allow"] == "GET"
            assert await response.text() == "Method Not Allowed\n"

    serve(MemberState(), scenario)


def test_livez_and_readyz_ok() -> None:
    async def scenario(client: Client, m: Metrics) -> None:
        assert await get(client, "/livez") == (200, "text/plain; charset=utf-8", "ok\n")
        assert (await get(client, "/livez?verbose"))[2] == "[+]serializable_read ok\nok\n"
        assert (await get(client, "/readyz?verbose"))[2] == (
            "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n"
            "[+]non_learner ok\nok\n")
        assert (await get(client, "/readyz/linearizable_read?verbose"))[2] == "[+]linearizable_read ok\nok\n"
        assert m.healthcheck.labels(type="readyz", name="non_learner")._value.get() == 1

    serve(MemberState(), scenario)


def test_readyz_failures_list_every_check() -> None:
    state = MemberState(learner=True, linearizable_error="etcdserver: leader changed",
                        alarm_names=["CORRUPT"])

    async def scenario(client: Client, m: Metrics) -> None:
        status, _, body = await get(client, "/readyz")
        assert status == 503
        assert body == ("[-]data_corruption failed: alarm activated: CORRUPT\n[+]serializable_read ok\n"
                        "[-]linearizable_read failed: etcdserver: leader changed\n"
                        "[-]non_learner failed: not supported for learner\n\n")
        assert await get(client, "/readyz/non_learner") == (
            503, "text/plain; charset=utf-8", "[-]non_learner failed: not supported for learner\n\n")
        excluded = ("/readyz?exclude=non_learner&exclude=linearizable_read&exclude=data_corruption"
                    "&exclude=bogus")
        assert (await get(client, excluded))[:1] == (200,)
        assert (await get(client, "/livez"))[0] == 200
        assert m.healthchecks.labels(type="readyz", name="non_learner", status="error")._value.get() == 2

    serve(state, scenario)


def test_version() -> None:
    async def scenario(client: Client, m: Metrics) -> None:
        status, ctype, body = await get(client, "/version")
        assert (status, ctype) == (200, "application/json")
        assert body == '{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}'

    serve(MemberState(), scenario)


def test_metrics_text() -> None:
    async def scenario(client: Client, m: Metrics) -> None:
        m.set_leader(7, 7)
        status, ctype, body = await get(client, "/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        lines = body.splitlines()
        assert "etcd_server_has_leader 1.0" in lines
        assert 'etcd_server_version{server_version="3.5.17"} 1.0' in lines
        assert "# TYPE etcd_server_proposals_committed_total gauge" in lines
        assert "# TYPE etcd_disk_wal_fsync_duration_seconds histogram" in lines
        assert not [line for line in lines if "_created" in line]

    serve(MemberState(), scenario)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_metrics_listener_serves_on_its_own_port(loop: str) -> None:
    async def main() -> None:
        metrics = Metrics("3.5.17")
        listeners = MetricsListeners(build_app(MemberState(), metrics), ["http://127.0.0.1:0"])
        await listeners.start()
        try:
            [(host, port)] = listeners.addresses
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://{host}:{port}/health") as response:
                    assert response.status == 200
                async with session.get(f"http://{host}:{port}/metrics") as response:
                    assert "etcd_server_health_success 1.0" in (await response.text()).splitlines()
                async with session.get(f"http://{host}:{port}/version") as response:
                    assert response.status == 404  # as on etcd's metrics listener
        finally:
            await listeners.stop()

    uvloop.run(main()) if loop == "uvloop" else asyncio.run(main())

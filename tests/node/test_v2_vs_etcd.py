"""petcd's v2 API against Debian's etcd 3.4 (--enable-v2): the same HTTP script, normalised answers
compared; and the v2 discovery protocol in both directions (our client on etcd's service, etcd's
members on our service).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from harness import IMPLEMENTATIONS, Member, Sandbox, etcdctl
from harness.addresses import free_ports, loopback_hosts
from harness.process import ManagedProcess
from petcd.discovery import v2url
from petcd.discovery.errors import DiscoveryError
from petcd.v2.http import V2Member
from petcd.v2.standalone import StandaloneV2Backend, standalone_app

ETCD34 = IMPLEMENTATIONS["etcd34"]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---- servers --------------------------------------------------------------------------------------


class InProcessV2Server:
    """The v2 handlers over the real store (StandaloneV2Backend), served from a thread on 127.0.0.x."""

    def __init__(self) -> None:
        self.host = loopback_hosts(1)[0]
        self.port = free_ports(self.host, 1)[0]
        self.url = f"http://{self.host}:{self.port}"
        member = V2Member(0x1234, "petcd", [f"http://{self.host}:1"], [self.url])
        self.backend = StandaloneV2Backend(member)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(standalone_app(self.backend))
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, self.host, self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())

    def start(self) -> InProcessV2Server:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("in-process v2 server did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@pytest.fixture
def petcd_v2() -> Iterator[InProcessV2Server]:
    server = InProcessV2Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def etcd_v2(sandbox: Sandbox) -> Member:
    ETCD34.require()
    cluster = sandbox.static_cluster(ETCD34, size=1, names=["v2ref"], extra_flags=["--enable-v2=true"])
    member = cluster.members[0]
    wait_v2_index_settles(member.client_url)
    return member


def wait_v2_index_settles(base_url: str, timeout: float = 30.0) -> None:
    """etcd writes its own membership and cluster version into the v2 store after start; wait for that."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        version = json.loads(call(base_url, "GET", "/version").body).get("etcdcluster")
        seen.append(call(base_url, "GET", "/v2/keys/").headers.get("X-Etcd-Index", ""))
        if version not in (None, "not_decided") and len(seen) >= 3 and len(set(seen[-3:])) == 1:
            return
        time.sleep(0.3)
    raise AssertionError(f"etcd's v2 index did not settle: {seen}")


# ---- HTTP ------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def call(base_url: str, method: str, path: str, form: dict[str, str] | None = None,
         timeout: float = 10.0) -> Answer:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(base_url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with _NO_PROXY.open(req, timeout=timeout) as resp:
            return Answer(resp.status, dict(resp.headers), resp.read().decode())
    except urllib.error.HTTPError as err:
        return Answer(err.code, dict(err.headers), err.read().decode())


# ---- the script --------------------------------------------------------------------------------------

# (method, path, form). "{i:N}" in a path or value is the store index N steps after the start.
SCRIPT: list[tuple[str, str, dict[str, str] | None]] = [
    ("GET", "/v2/keys/", None),
    ("PUT", "/v2/keys/site", {"value": "example"}),
    ("GET", "/v2/keys/site", None),
    ("PUT", "/v2/keys/site", {"value": "changed"}),
    ("HEAD", "/v2/keys/site", None),
    ("PUT", "/v2/keys/dir/a", {"value": "alpha"}),
    ("PUT", "/v2/keys/dir/b/c", {"value": "gamma"}),
    ("PUT", "/v2/keys/dir/_hidden", {"value": "h"}),
    ("GET", "/v2/keys/dir", None),
    ("GET", "/v2/keys/dir?recursive=true", None),
    ("GET", "/v2/keys/dir?recursive=true&sorted=true", None),
    ("GET", "/v2/keys/dir?sorted=true", None),
    ("GET", "/v2/keys/dir/_hidden", None),
    ("GET", "/v2/keys/?recursive=true&sorted=true", None),
    ("PUT", "/v2/keys/newdir", {"dir": "true"}),
    ("PUT", "/v2/keys/newdir", {"dir": "true"}),
    ("PUT", "/v2/keys/newdir", {"dir": "true", "prevExist": "false"}),
    ("PUT", "/v2/keys/newdir", {"dir": "true", "prevExist": "true", "ttl": "100"}),
    ("PUT", "/v2/keys/newdir", {"value": "x", "prevExist": "true"}),
    ("PUT", "/v2/keys/site", {"value": "third", "prevExist": "true"}),
    ("PUT", "/v2/keys/nope", {"value": "x", "prevExist": "true"}),
    ("PUT", "/v2/keys/site", {"value": "x", "prevExist": "false"}),
    ("PUT", "/v2/keys/site", {"value": "cas", "prevValue": "third"}),
    ("PUT", "/v2/keys/site", {"value": "cas", "prevValue": "wrong"}),
    ("PUT", "/v2/keys/site", {"value": "cas2", "prevIndex": "{i:1}"}),
    ("PUT", "/v2/keys/site", {"value": "cas2", "prevIndex": "{i:1}", "prevValue": "bad"}),
    ("PUT", "/v2/keys/site", {"value": "idx", "prevIndex": "{i:15}"}),
    ("PUT", "/v2/keys/site", {"value": "x", "prevValue": ""}),
    ("PUT", "/v2/keys/ttl", {"value": "t", "ttl": "100"}),
    ("PUT", "/v2/keys/ttl", {"ttl": "200", "refresh": "true"}),
    ("PUT", "/v2/keys/ttl", {"refresh": "true"}),
    ("PUT", "/v2/keys/ttl", {"refresh": "true", "ttl": "5", "value": "v"}),
    ("PUT", "/v2/keys/ttl", {"value": "t", "ttl": "abc"}),
    ("PUT", "/v2/keys/ttl", {"value": "forever", "ttl": ""}),
    ("POST", "/v2/keys/queue", {"value": "job1"}),
    ("POST", "/v2/keys/queue", {"value": "job2"}),
    ("POST", "/v2/keys/queue", {"dir": "true"}),
    ("GET", "/v2/keys/queue?sorted=true", None),
    ("PUT", "/v2/keys/", {"value": "root"}),
    ("PUT", "/v2/keys/site/under", {"value": "x"}),
    ("GET", "/v2/keys/site/under", None),
    ("PUT", "/v2/keys/dir", {"value": "x"}),
    ("DELETE", "/v2/keys/dir", None),
    ("DELETE", "/v2/keys/dir?dir=true", None),
    ("DELETE", "/v2/keys/newdir?dir=true", None),
    ("DELETE", "/v2/keys/site?prevValue=wrong", None),
    ("DELETE", "/v2/keys/site?prevIndex={i:2}", None),
    ("DELETE", "/v2/keys/dir/a?prevValue=alpha", None),
    ("DELETE", "/v2/keys/dir?recursive=true", None),
    ("DELETE", "/v2/keys/", None),
    ("DELETE", "/v2/keys/missing", None),
    ("GET", "/v2/keys/site?wait=true&waitIndex={i:1}", None),
    ("GET", "/v2/keys/dir?wait=true&recursive=true&waitIndex={i:3}", None),
    ("PUT", "/v2/keys/site?wait=true", {"value": "x"}),
    ("GET", "/v2/keys/site?recursive=maybe", None),
    ("GET", "/v2/keys/site?waitIndex=-1", None),
    ("PUT", "/v2/keys/site", {"value": "x", "prevExist": "perhaps"}),
    ("PUT", "/v2/keys/quiet", {"value": "x", "noValueOnSuccess": "true"}),
    ("PUT", "/v2/keys/q?value=fromquery", None),
    ("PUT", "/v2/keys/q?value=fromquery", {"value": "frombody"}),
    ("GET", "/v2/keys/q?quorum=true", None),
    ("GET", "/v2/keys/q?quorum=true&wait=true", None),
    ("PUT", "/v2/keys/esc", {"value": "<a href='x'>&</a> ü"}),
    ("GET", "/v2/keys/esc", None),
    ("PATCH", "/v2/keys/site", None),
    ("OPTIONS", "/v2/keys/site", None),
    ("PUT", "/v2/keys/sp%20ace/%C3%BC", {"value": "encoded"}),
    ("GET", "/v2/keys/sp%20ace/", None),
    ("GET", "/v2/keys/sp%20ace?recursive=true", None),
    ("PUT", "/v2/keys/wd/k", {"value": "1"}),  # index 24
    ("DELETE", "/v2/keys/wd?recursive=true", None),  # index 25
    ("GET", "/v2/keys/wd/k?wait=true&waitIndex={i:24}", None),
    ("GET", "/v2/keys/wd/k?wait=true&waitIndex={i:25}", None),
    ("GET", "/v2/keys/wd?wait=true&waitIndex={i:24}", None),
    ("GET", "/v2/keys/wd?wait=true&recursive=true&waitIndex={i:24}", None),
    ("GET", "/v2/keys/?recursive=true&sorted=true", None),
]


def _index_of(text: str, base: int) -> str:
    return re.sub(r"\{i:(\d+)\}", lambda m: str(base + int(m.group(1))), text)


def _normalise_json(value: Any, base: int, keep_order: bool) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("modifiedIndex", "createdIndex", "index") and isinstance(item, int) and item > 0:
                item = item - base
            elif key == "key":
                item = re.sub(r"/(\d{20})", lambda m: f"/{int(m.group(1)) - base:020d}", item)
            elif key == "expiration":
                item = "<expiration>"
            elif key == "ttl" and isinstance(item, int):
                # the seconds left depend on when each server was asked: the scripts set TTLs that are
                # multiples of 5, so rounding up to one keeps the set TTL and drops the elapsed second
                item = -(-item // 5) * 5
            elif key == "cause" and isinstance(item, str):
                item = re.sub(r"\[(\d+) != (\d+)\]",
                              lambda m: f"[{int(m.group(1)) - base} != {int(m.group(2)) - base}]", item)
            elif key == "nodes" and not keep_order:
                item = sorted(item, key=lambda n: n.get("key", ""))
            out[key] = _normalise_json(item, base, keep_order)
        return out
    if isinstance(value, list):
        return [_normalise_json(v, base, keep_order) for v in value]
    return value


def normalise(answer: Answer, base: int, keep_order: bool) -> dict[str, Any]:
    body: Any = answer.body
    if answer.headers.get("Content-Type") == "application/json" and body:
        body = [_normalise_json(json.loads(line), base, keep_order) for line in answer.body.splitlines()]
    index = answer.headers.get("X-Etcd-Index")
    return {
        "status": answer.status,
        "content-type": answer.headers.get("Content-Type"),
        "x-etcd-index": None if index is None else max(int(index) - base, 0) if int(index) else 0,
        "raft-headers": ("X-Raft-Index" in answer.headers, "X-Raft-Term" in answer.headers),
        "cluster-id": "X-Etcd-Cluster-Id" in answer.headers or "X-Etcd-Cluster-ID" in answer.headers,
        "allow": answer.headers.get("Allow"),
        "body": body,
        "raw-order-sorted": _listing_is_sorted(answer.body) if keep_order else None,
    }


def _listing_is_sorted(body: str) -> bool:
    try:
        node = json.loads(body).get("node", {})
    except (ValueError, AttributeError):
        return True
    keys = [n.get("key", "") for n in node.get("nodes", [])]
    return keys == sorted(keys)


def run_script(base_url: str) -> list[dict[str, Any]]:
    base = int(call(base_url, "GET", "/v2/keys/").headers["X-Etcd-Index"])
    answers = []
    for method, path, form in SCRIPT:
        filled_form = {k: _index_of(v, base) for k, v in form.items()} if form is not None else None
        answer = call(base_url, method, _index_of(path, base), filled_form)
        answers.append(normalise(answer, base, keep_order="sorted=true" in path))
    return answers


def test_v2_keys_script_answers_like_etcd(etcd_v2: Member, petcd_v2: InProcessV2Server) -> None:
    expected = run_script(etcd_v2.client_url)
    actual = run_script(petcd_v2.url)
    for (method, path, form), want, got in zip(SCRIPT, expected, actual, strict=True):
        assert got == want, f"{method} {path} {form}"


def long_poll(base_url: str, watch_path: str, write: tuple[str, str, dict[str, str]]) -> dict[str, Any]:
    """Start a wait=true GET, make the write, and return the normalised watch answer."""
    base = int(call(base_url, "GET", "/v2/keys/").headers["X-Etcd-Index"])
    result: list[Answer] = []
    watcher = threading.Thread(target=lambda: result.append(call(base_url, "GET", watch_path, timeout=20)))
    watcher.start()
    time.sleep(0.5)  # let the watch register before the write (a late one would still see it from history)
    call(base_url, *write)
    watcher.join(timeout=20)
    assert result, "the watch did not answer"
    return normalise(result[0], base, keep_order=False)


def test_long_poll_watch_like_etcd(etcd_v2: Member, petcd_v2: InProcessV2Server) -> None:
    cases = [
        ("/v2/keys/w/x?wait=true", ("PUT", "/v2/keys/w/x", {"value": "one"})),
        ("/v2/keys/w?wait=true&recursive=true", ("PUT", "/v2/keys/w/y", {"value": "two"})),
        ("/v2/keys/w/x?wait=true", ("DELETE", "/v2/keys/w?recursive=true", {})),
    ]
    for watch_path, write in cases:
        method, path, form = write
        assert long_poll(petcd_v2.url, watch_path, (method, path, form)) == long_poll(
            etcd_v2.client_url, watch_path, (method, path, form)), watch_path


def test_ttl_expiry_like_etcd(etcd_v2: Member, petcd_v2: InProcessV2Server) -> None:
    for url in (etcd_v2.client_url, petcd_v2.url):
        assert call(url, "PUT", "/v2/keys/short", {"value": "v", "ttl": "1"}).status == 201
    deadline = time.monotonic() + 15
    gone: dict[str, Answer] = {}
    while time.monotonic() < deadline and len(gone) < 2:
        for url in (etcd_v2.client_url, petcd_v2.url):
            answer = call(url, "GET", "/v2/keys/short")
            if answer.status == 404:
                gone[url] = answer
        time.sleep(0.2)
    assert len(gone) == 2, "a TTL key did not expire"
    assert {json.loads(a.body)["errorCode"] for a in gone.values()} == {100}
    # The expiry is an event in the history: a watch from before it sees `expire`.
    expiries = []
    for url in (etcd_v2.client_url, petcd_v2.url):
        index = int(gone[url].headers["X-Etcd-Index"])
        expiries.append(normalise(call(url, "GET", f"/v2/keys/short?wait=true&waitIndex={index}"),
                                  index, keep_order=False))
    assert expiries[0] == expiries[1]
    assert expiries[0]["body"][0]["action"] == "expire"


def _shape(value: Any) -> Any:
    """Keys and value types, recursively (what must match when values cannot)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_stats_and_members_shapes_like_etcd(etcd_v2: Member, petcd_v2: InProcessV2Server) -> None:
    def shapes(url: str) -> dict[str, Any]:
        stats = json.loads(call(url, "GET", "/v2/stats/store").body)
        members = json.loads(call(url, "GET", "/v2/members").body)
        wrong_type = call(url, "POST", "/v2/members", {"peerURLs": "x"})
        return {
            "stats-keys": list(stats),
            "member-keys": [list(m) for m in members["members"]],
            "415": (wrong_type.status, wrong_type.body),
            "404": call(url, "DELETE", "/v2/members/zz").body,
            "leader": list(json.loads(call(url, "GET", "/v2/members/leader").body)),
            "self-stats": _shape(json.loads(call(url, "GET", "/v2/stats/self").body)),
            "leader-stats": list(json.loads(call(url, "GET", "/v2/stats/leader").body)),
            "machines": call(url, "GET", "/v2/machines").headers.get("Content-Type"),
            "preflight": [(a.status, a.body, a.headers.get("Access-Control-Allow-Methods")) for a in (
                call(url, "OPTIONS", p) for p in ("/v2/members", "/v2/stats/self", "/v2/machines"))],
        }

    assert shapes(petcd_v2.url) == shapes(etcd_v2.client_url)


# ---- discovery ----------------------------------------------------------------------------------------


def three_join_then_full(token_url: str) -> None:
    """Three members register at once and all get the same cluster; a fourth finds it full."""

    async def join_three() -> list[str]:
        joins = [v2url.join_cluster(token_url, i, f"m{i}=http://127.0.0.{i}:2380") for i in (1, 2, 3)]
        return list(await asyncio.wait_for(asyncio.gather(*joins), 60))

    results = asyncio.run(join_three())
    assert len(set(results)) == 1
    assert sorted(results[0].split(",")) == [f"m{i}=http://127.0.0.{i}:2380" for i in (1, 2, 3)]
    with pytest.raises(DiscoveryError, match=r"^discovery: cluster is full$"):
        asyncio.run(v2url.join_cluster(token_url, 9, "m9=http://127.0.0.9:2380"))


def test_our_discovery_client_on_etcds_discovery_service(etcd_v2: Member) -> None:
    url = etcd_v2.client_url + "/v2/keys/discovery/tok34"
    size = call(etcd_v2.client_url, "PUT", "/v2/keys/discovery/tok34/_config/size", {"value": "3"})
    assert size.status == 201

    three_join_then_full(url)
    with pytest.raises(DiscoveryError, match=r"^100: Key not found \(/discovery/none\) \[\d+\]$"):
        asyncio.run(v2url.join_cluster(etcd_v2.client_url + "/v2/keys/discovery/none", 1, "a=http://a:1"))


def discovery_flags(sandbox: Sandbox, name: str, discovery: str) -> tuple[Any, list[str]]:
    address = sandbox.addresses([name])[0]
    return address, [
        f"--name={address.name}", f"--data-dir={sandbox.root / 'v2-data' / address.name}",
        f"--listen-client-urls={address.client_url}", f"--advertise-client-urls={address.client_url}",
        f"--listen-peer-urls={address.peer_url}", f"--initial-advertise-peer-urls={address.peer_url}",
        f"--discovery={discovery}", "--enable-v2=true",
    ]


def test_missing_size_key_message_is_etcds(sandbox: Sandbox, petcd_v2: InProcessV2Server) -> None:
    ETCD34.require()
    discovery = petcd_v2.url + "/v2/keys/discovery/nosuch"
    with pytest.raises(DiscoveryError) as ours:
        asyncio.run(v2url.join_cluster(discovery, 1, "a=http://127.0.0.1:2380"))
    member = sandbox.member(ETCD34, *discovery_flags(sandbox, "nosize", discovery))
    assert member.wait_exit(30) is not None
    assert member.logged(f"failed to join discovery cluster ({ours.value})"), member.log_tail()


def test_etcd_members_bootstrap_through_our_discovery_service(
        sandbox: Sandbox, petcd_v2: InProcessV2Server) -> None:
    ETCD34.require()
    assert call(petcd_v2.url, "PUT", "/v2/keys/discovery/tok/_config/size", {"value": "3"}).status == 201
    discovery = petcd_v2.url + "/v2/keys/discovery/tok"
    members = [sandbox.member(ETCD34, *discovery_flags(sandbox, name, discovery))
               for name in ("d1", "d2", "d3")]
    for member in members:
        member.wait_healthy(60)
    listing = json.loads(call(members[0].client_url, "GET", "/v2/members").body)
    assert sorted(m["name"] for m in listing["members"]) == ["d1", "d2", "d3"]
    registered = json.loads(call(petcd_v2.url, "GET", "/v2/keys/discovery/tok").body)["node"]["nodes"]
    assert len(registered) == 3
    late, flags = discovery_flags(sandbox, "d4", discovery)
    extra = sandbox.member(ETCD34, late, [*flags, "--discovery-fallback=exit"])
    assert extra.wait_exit(30) is not None
    assert extra.logged("discovery: cluster is full")


# ---- etcdctl v2, as the seed article uses it ------------------------------------------------------------

ETCDCTL_V2_SESSION: list[list[str]] = [
    ["set", "site", "example.com"],
    ["get", "site"],
    ["mk", "site", "again"],
    ["mk", "fresh", "v"],
    ["update", "site", "changed"],
    ["update", "nokey", "v"],
    ["mkdir", "d"],
    ["mkdir", "d"],
    ["set", "d/x", "1"],
    ["set", "d/_hidden", "h"],
    ["ls", "--sort", "--recursive", "/"],
    ["ls", "--sort", "-p", "d"],
    ["get", "d"],
    ["rm", "d"],
    ["rmdir", "d"],
    ["-o", "extended", "get", "site"],
    ["-o", "json", "get", "site"],
    ["set", "--swap-with-value", "changed", "site", "swapped"],
    ["set", "--swap-with-value", "wrong", "site", "nope"],
    ["rm", "--with-value", "wrong", "site"],
    ["set", "--ttl", "100", "ttlkey", "v"],
    ["watch", "--after-index", "{i:1}", "site"],
    ["rm", "--recursive", "d"],
    ["rm", "site"],
    ["get", "site"],
    ["mkdir", "empty"],
    ["rmdir", "empty"],
    ["ls", "--sort", "/"],
]


def etcdctl_session(endpoint: str) -> list[tuple[int, str, str]]:
    base = int(call(endpoint, "GET", "/v2/keys/").headers["X-Etcd-Index"])

    def normalise_text(text: str) -> str:
        text = text.replace(endpoint, "<endpoint>")
        text = re.sub(r"\[(\d+)\]", lambda m: f"[{int(m.group(1)) - base}]", text)
        text = re.sub(r"(Created-Index|Modified-Index|Index): (\d+)",
                      lambda m: f"{m.group(1)}: {int(m.group(2)) - base}", text)
        text = re.sub(r'"(modifiedIndex|createdIndex)":(\d+)',
                      lambda m: f'"{m.group(1)}":{int(m.group(2)) - base}', text)
        return text

    out = []
    for args in ETCDCTL_V2_SESSION:
        result = etcdctl([_index_of(a, base) for a in args], [endpoint], api="2", timeout=20)
        out.append((result.returncode, normalise_text(result.stdout), normalise_text(result.stderr)))
    return out


def test_etcdctl_v2_session_like_etcd(etcd_v2: Member, petcd_v2: InProcessV2Server) -> None:
    expected = etcdctl_session(etcd_v2.client_url)
    actual = etcdctl_session(petcd_v2.url)
    for args, want, got in zip(ETCDCTL_V2_SESSION, expected, actual, strict=True):
        assert got == want, " ".join(args)


# ---- random scripts -------------------------------------------------------------------------------------

_PATHS = ["/r/a", "/r/a/b", "/r/c", "/r/d", "/r/d/e", "/r/d/e/f", "/r/_h", "/r"]


def random_script(seed: int, length: int) -> list[tuple[str, str, dict[str, str] | None]]:
    """Writes and reads on a small key space, so that most preconditions meet existing nodes."""
    import random

    rng = random.Random(seed)
    steps: list[tuple[str, str, dict[str, str] | None]] = []
    for step in range(length):
        path = "/v2/keys" + rng.choice(_PATHS)
        kind = rng.randrange(11)
        value = rng.choice(["x", "y", "z"])
        index = f"{{i:{rng.randint(1, step + 1)}}}"
        if kind == 0:
            steps.append(("PUT", path, {"value": value}))
        elif kind == 1:
            steps.append(("PUT", path, {"dir": "true", **rng.choice([{}, {"prevExist": "false"},
                                                                       {"prevExist": "true"}])}))
        elif kind == 2:
            steps.append(("PUT", path, {"value": value, "prevExist": rng.choice(["true", "false"])}))
        elif kind == 3:
            steps.append(("PUT", path, {"value": value, **rng.choice(
                [{"prevValue": rng.choice(["x", "y"])}, {"prevIndex": index},
                 {"prevValue": "x", "prevIndex": index}])}))
        elif kind == 4:
            query = rng.choice(["", "?dir=true", "?recursive=true", "?prevValue=x", f"?prevIndex={index}"])
            steps.append(("DELETE", path + query, None))
        elif kind == 5:
            steps.append(("POST", path, {"value": value}))
        elif kind == 6:
            steps.append(("GET", path + "?recursive=true&sorted=true", None))
        elif kind == 7:
            steps.append(("GET", path, None))
        elif kind == 9:
            steps.append(("PUT", path, {"value": value, "ttl": "100",
                                        **rng.choice([{}, {"prevExist": "true"}])}))
        elif kind == 10:
            steps.append(("PUT", path, {"refresh": "true", "ttl": "200", **rng.choice(
                [{}, {"prevExist": "true"}, {"prevValue": "x"}])}))
        else:
            # Every write is under /r, so a watch there from a past index answers from the history.
            steps.append(("GET", f"/v2/keys/r?wait=true&recursive=true&waitIndex={index}", None))
    steps.append(("GET", "/v2/keys/?recursive=true&sorted=true", None))
    return steps


def run_steps(base_url: str, steps: list[tuple[str, str, dict[str, str] | None]]) -> list[dict[str, Any]]:
    base = int(call(base_url, "GET", "/v2/keys/").headers["X-Etcd-Index"])
    answers = []
    for method, path, form in steps:
        filled = {k: _index_of(v, base) for k, v in form.items()} if form is not None else None
        if "wait=true" in path:
            # Only watches the history can answer: a future index would block.
            current = int(call(base_url, "GET", "/v2/keys/").headers["X-Etcd-Index"])
            wanted = int(_index_of(re.search(r"waitIndex=(\{i:\d+\})", path).group(1), base))  # type: ignore[union-attr]
            if wanted > current:
                continue
            try:
                answer = call(base_url, method, _index_of(path, base), filled, timeout=2)
            except TimeoutError:  # only refreshes since then: they wake no watcher
                answers.append({"blocked": True})
                continue
        else:
            answer = call(base_url, method, _index_of(path, base), filled)
        answers.append(normalise(answer, base, keep_order="sorted=true" in path))
    return answers


@pytest.mark.parametrize("seed", [int(s) for s in os.environ.get("PETCD_V2_RANDOM_SEEDS", "1,2").split(",")])
def test_random_scripts_answer_like_etcd(seed: int, etcd_v2: Member, petcd_v2: InProcessV2Server) -> None:
    steps = random_script(seed, int(os.environ.get("PETCD_V2_RANDOM_STEPS", "120")))
    expected = run_steps(etcd_v2.client_url, steps)
    actual = run_steps(petcd_v2.url, steps)
    assert len(actual) == len(expected)
    for number, (want, got) in enumerate(zip(expected, actual, strict=True)):
        assert got == want, f"seed {seed}, answer {number}"


# ---- Debian's etcd-discovery service (discovery.etcd.io) ---------------------------------------------------

DISCOVERY_IO = "/usr/bin/discovery.etcd.io"


@pytest.fixture(params=["etcd34", "petcd-v2"])
def discovery_io(request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[str]:
    """discovery.etcd.io (Debian's etcd-discovery) on 127.0.0.x, storing its tokens in etcd 3.4 or in
    our v2 service; yields the service's base URL."""
    if not os.path.exists(DISCOVERY_IO):
        if os.environ.get("PETCD_REQUIRE_ALL_IMPLEMENTATIONS"):
            pytest.fail(f"{DISCOVERY_IO} not found (apt-get install etcd-discovery)")
        pytest.skip(f"{DISCOVERY_IO} not found (apt-get install etcd-discovery)")
    if request.param == "etcd34":
        backend_url = request.getfixturevalue("etcd_v2").client_url
    else:
        backend_url = request.getfixturevalue("petcd_v2").url
    host = loopback_hosts(1)[0]
    url = f"http://{host}:{free_ports(host, 1)[0]}"
    service = ManagedProcess([DISCOVERY_IO, "--addr", url.removeprefix("http://"), "--etcd", backend_url,
                              "--host", url], {}, sandbox.root / "logs" / "discovery.etcd.io.log")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                call(url, "GET", "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        service.kill()


def test_our_client_with_debians_discovery_service(discovery_io: str) -> None:
    token_url = call(discovery_io, "GET", "/new?size=3").body.strip()
    assert token_url.startswith(discovery_io + "/")

    three_join_then_full(token_url)

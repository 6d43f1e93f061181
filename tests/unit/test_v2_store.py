"""The v2 store against etcd 3.4's v2store semantics (codes, causes, indices, watches, TTLs)."""

from __future__ import annotations

import pytest
from petcd.v2 import request as v2request
from petcd.v2.errors import V2Error
from petcd.v2.events import Event, parse_rfc3339nano, rfc3339nano, ttl_seconds
from petcd.v2.store import V2Store

NS = 1_000_000_000
NOW = 1_800_000_000 * NS  # a fixed "now" well after 2000-01-01


def err_of(call: object, *args: object, **kw: object) -> V2Error:
    with pytest.raises(V2Error) as info:
        call(*args, **kw)  # type: ignore[operator]
    return info.value


def test_set_get_and_indices() -> None:
    s = V2Store()
    e = s.set("/a", value="1", now_ns=NOW)
    assert e.to_dict() == {"action": "set", "node": {"key": "/a", "value": "1", "modifiedIndex": 1,
                                                     "createdIndex": 1}}
    assert e.is_created() and e.etcd_index == 1
    e = s.set("/a", value="2", now_ns=NOW)
    assert not e.is_created()
    assert e.to_dict()["prevNode"] == {"key": "/a", "value": "1", "modifiedIndex": 1, "createdIndex": 1}
    assert e.node.created_index == 2  # set replaces the node
    g = s.get("/a", now_ns=NOW)
    assert g.to_dict() == {"action": "get", "node": {"key": "/a", "value": "2", "modifiedIndex": 2,
                                                     "createdIndex": 2}}
    assert g.etcd_index == 2
    assert s.get("/", now_ns=NOW).to_dict() == {
        "action": "get", "node": {"dir": True, "nodes": [{"key": "/a", "value": "2", "modifiedIndex": 2,
                                                          "createdIndex": 2}]}}


def test_errors_match_etcd() -> None:
    s = V2Store()
    s.set("/a", value="1", now_ns=NOW)
    s.set("/d/x", value="2", now_ns=NOW)
    assert err_of(s.get, "/nope", now_ns=NOW).to_dict() == {
        "errorCode": 100, "message": "Key not found", "cause": "/nope", "index": 2}
    assert err_of(s.set, "/d", dir_=True, now_ns=NOW).to_dict()["errorCode"] == 102
    assert err_of(s.set, "/", value="1", now_ns=NOW).to_dict() == {
        "errorCode": 107, "message": "Root is read only", "cause": "/", "index": 2}
    assert err_of(s.set, "/a/b", value="1", now_ns=NOW).cause == "/a"
    assert err_of(s.get, "/a/b", now_ns=NOW).code == 104
    assert err_of(s.delete, "/d", now_ns=NOW).code == 102
    e = err_of(s.delete, "/d", dir_=True, now_ns=NOW)
    assert (e.code, e.cause, e.http_status) == (108, "/d", 403)
    assert err_of(s.create, "/a", value="x", now_ns=NOW).http_status == 412
    assert s.index == 2  # failures do not move the index


def test_compare_and_swap_and_delete_causes() -> None:
    s = V2Store()
    s.set("/a", value="1", now_ns=NOW)
    assert err_of(s.compare_and_swap, "/a", "zz", 3, "3", now_ns=NOW).cause == "[zz != 1] [3 != 1]"
    assert err_of(s.compare_and_swap, "/a", "zz", 0, "3", now_ns=NOW).cause == "[zz != 1]"
    assert err_of(s.compare_and_swap, "/a", "", 7, "3", now_ns=NOW).cause == "[7 != 1]"
    e = s.compare_and_swap("/a", "1", 1, "3", now_ns=NOW)
    assert e.to_dict() == {"action": "compareAndSwap",
                           "node": {"key": "/a", "value": "3", "modifiedIndex": 2, "createdIndex": 1},
                           "prevNode": {"key": "/a", "value": "1", "modifiedIndex": 1, "createdIndex": 1}}
    e = s.compare_and_delete("/a", "3", 0, now_ns=NOW)
    assert e.to_dict() == {"action": "compareAndDelete",
                           "node": {"key": "/a", "modifiedIndex": 3, "createdIndex": 1},
                           "prevNode": {"key": "/a", "value": "3", "modifiedIndex": 2, "createdIndex": 1}}


def test_directories_hidden_keys_sorting_and_in_order_keys() -> None:
    s = V2Store()
    s.set("/d/b", value="b", now_ns=NOW)
    s.set("/d/_hidden", value="h", now_ns=NOW)
    s.set("/d/a/x", value="x", now_ns=NOW)
    listing = s.get("/d", sorted_=True, now_ns=NOW).to_dict()["node"]
    assert [n["key"] for n in listing["nodes"]] == ["/d/a", "/d/b"]
    assert "nodes" not in listing["nodes"][0]  # not recursive
    deep = s.get("/d", recursive=True, sorted_=True, now_ns=NOW).to_dict()["node"]
    assert deep["nodes"][0]["nodes"] == [{"key": "/d/a/x", "value": "x", "modifiedIndex": 3,
                                          "createdIndex": 3}]
    assert s.get("/d/_hidden", now_ns=NOW).node.value == "h"  # hidden only from listings
    q1 = s.create("/q", value="first", unique=True, now_ns=NOW)
    q2 = s.create("/q", dir_=True, unique=True, now_ns=NOW)
    assert q1.node.key == "/q/00000000000000000004" and q2.node.key == "/q/00000000000000000005"
    assert q2.to_dict()["node"] == {"key": "/q/00000000000000000005", "dir": True, "modifiedIndex": 5,
                                    "createdIndex": 5}
    e = s.delete("/q", recursive=True, now_ns=NOW)
    assert e.to_dict()["node"] == {"key": "/q", "dir": True, "modifiedIndex": 6, "createdIndex": 4}


def test_update_of_a_directory_keeps_its_modified_index() -> None:
    s = V2Store()
    s.set("/d/x", value="1", now_ns=NOW)
    e = s.update("/d", expire_ns=NOW + 100 * NS, now_ns=NOW)
    assert e.to_dict()["node"] == {"key": "/d", "dir": True, "expiration": rfc3339nano(NOW + 100 * NS),
                                   "ttl": 100, "modifiedIndex": 2, "createdIndex": 1}
    assert s.get("/d", now_ns=NOW).node.modified_index == 1
    assert err_of(s.update, "/d", "v", now_ns=NOW).code == 102


def test_ttl_rendering_expiry_and_refresh() -> None:
    s = V2Store()
    e = s.set("/t", value="x", expire_ns=NOW + 5 * NS, now_ns=NOW)
    assert e.node.ttl == 5 and e.to_dict()["node"]["expiration"] == rfc3339nano(NOW + 5 * NS)
    assert s.get("/t", now_ns=NOW + NS // 2).node.ttl == 5  # rounded up
    watcher = s.watch("/t")
    r = s.set("/t", expire_ns=NOW + 50 * NS, refresh=True, now_ns=NOW)
    assert r.node.value == "x" and r.node.ttl == 50
    assert not watcher.events  # refreshes wake nobody
    assert s.delete_expired(NOW + 49 * NS) == []
    expired = s.delete_expired(NOW + 50 * NS)
    assert [x.to_dict()["node"] for x in expired] == [{"key": "/t", "modifiedIndex": 3, "createdIndex": 2}]
    assert expired[0].action == "expire" and watcher.events[0].action == "expire"
    assert not s.has_ttl_keys()
    assert err_of(s.set, "/gone", refresh=True, expire_ns=NOW + NS, now_ns=NOW).code == 100
    assert s.stats_json()["expireCount"] == 1


def test_expire_time_before_2000_means_permanent() -> None:
    s = V2Store()
    e = s.set("/p", value="x", expire_ns=5, now_ns=NOW)
    assert e.node.expiration_ns == 0 and not s.has_ttl_keys()


def test_watch_from_history_live_recursive_and_hidden() -> None:
    s = V2Store()
    s.set("/a", value="1", now_ns=NOW)
    past = s.watch("/a", since_index=1)
    assert past.removed and past.events[0].action == "set" and past.events[0].etcd_index == 1
    live = s.watch("/dir", recursive=True)
    plain = s.watch("/dir")
    s.set("/dir/_h", value="hidden", now_ns=NOW)
    assert not live.events  # hidden keys do not reach recursive watchers above them
    s.set("/dir/k", value="v", now_ns=NOW)
    assert live.events[0].node.key == "/dir/k" and live.removed
    assert not plain.events and not plain.removed
    child = s.watch("/dir/k")
    s.delete("/dir", recursive=True, now_ns=NOW)
    assert child.events[0].action == "delete" and child.events[0].node.key == "/dir"
    assert plain.events[0].node.key == "/dir"
    assert s.hub.count == 0


def test_stream_watch_and_history_window() -> None:
    s = V2Store()
    stream = s.watch("/k", stream=True)
    for i in range(1100):
        s.set("/k", value=str(i), now_ns=NOW)
    assert stream.overflowed  # fell more than 100 events behind: dropped, as etcd drops it
    err = err_of(s.watch, "/k", since_index=5)
    assert err.to_dict() == {
        "errorCode": 401, "message": "The event in requested index is outdated and cleared",
        "cause": "the requested history has been cleared [101/5]", "index": 1100}
    assert s.watch("/k", since_index=101).events[0].node.value == "100"


def test_snapshot_round_trip() -> None:
    s = V2Store()
    s.set("/a/b", value="1", now_ns=NOW)
    s.set("/t", value="x", expire_ns=NOW + 5 * NS, now_ns=NOW)
    s.create("/q", unique=True, value="z", now_ns=NOW)
    restored = V2Store.restore(s.save())
    assert restored.save() == s.save()
    assert restored.get("/", recursive=True, sorted_=True, now_ns=NOW) == s.get(
        "/", recursive=True, sorted_=True, now_ns=NOW)
    assert restored.watch("/a/b", since_index=1).events[0].node.value == "1"
    assert restored.has_ttl_keys()
    with pytest.raises(ValueError):
        V2Store.restore(b'{"version":99}')


def test_recovery_in_place_keeps_watchers() -> None:
    leader, follower = V2Store(), V2Store()
    watcher = follower.watch("/k")
    leader.set("/a", value="1", now_ns=NOW)
    follower.recover(leader.save())
    assert follower.get("/a", now_ns=NOW).node.value == "1" and follower.index == 1
    follower.set("/k", value="after", now_ns=NOW)
    assert watcher.events[0].node.value == "after"


def test_rfc3339nano_and_ttl_rounding() -> None:
    assert rfc3339nano(1_764_019_213_822_501_609) == "2025-11-24T21:20:13.822501609Z"
    assert rfc3339nano(1_764_019_213_000_000_000) == "2025-11-24T21:20:13Z"
    assert rfc3339nano(1_764_019_213_500_000_000) == "2025-11-24T21:20:13.5Z"
    assert parse_rfc3339nano("2025-11-24T21:20:13.5Z") == 1_764_019_213_500_000_000
    assert ttl_seconds(NOW + 1, NOW) == 1
    assert ttl_seconds(NOW + NS, NOW) == 1
    assert ttl_seconds(NOW - NS // 2, NOW) == 0
    assert ttl_seconds(NOW - 3 * NS // 2, NOW) == -1


def _log() -> list[v2request.V2Request]:
    return [
        v2request.V2Request("PUT", "/a", "1"),
        v2request.V2Request("PUT", "/a", "2", prev_exist=True),
        v2request.V2Request("PUT", "/b", "x", prev_exist=False, expiration_ns=NOW + 3 * NS),
        v2request.V2Request("PUT", "/a", "3", prev_value="2"),
        v2request.V2Request("PUT", "/a", "4", prev_index=99),
        v2request.V2Request("POST", "/queue", "job"),
        v2request.V2Request("PUT", "/dir", dir=True),
        v2request.V2Request("DELETE", "/a", prev_value="3"),
        v2request.V2Request("DELETE", "/dir", dir=True),
        v2request.V2Request("GET", "/queue", recursive=True, quorum=True),
        v2request.V2Request.sync(NOW + 10 * NS),
    ]


def test_apply_through_the_codec_is_deterministic() -> None:
    members = [V2Store(), V2Store()]
    answers: list[list[Event | V2Error | None]] = [[], []]
    for req in _log():
        entry = v2request.encode(req)
        for store, out in zip(members, answers, strict=True):
            out.append(v2request.apply(store, v2request.decode(entry), NOW))
    assert members[0].save() == members[1].save()
    assert answers[0] == answers[1]
    actions = [a.action if isinstance(a, Event) else a for a in answers[0]]
    assert actions[:4] == ["set", "update", "create", "compareAndSwap"]
    assert isinstance(actions[4], V2Error) and actions[4].code == 101
    assert actions[5:10] == ["create", "set", "compareAndDelete", "delete", "get"]
    assert actions[10] is None
    assert err_of(members[0].get, "/b", now_ns=NOW).code == 100  # expired by the SYNC


def test_codec_rejects_foreign_and_future_bytes() -> None:
    data = v2request.encode(v2request.V2Request("PUT", "/a", "1", refresh=None, prev_exist=False))
    assert v2request.decode(data) == v2request.V2Request("PUT", "/a", "1", prev_exist=False)
    with pytest.raises(ValueError):
        v2request.decode(b"\x08\x01garbage")
    with pytest.raises(ValueError):
        v2request.decode(data[:5] + b"\x02" + data[6:])


def test_parse_key_request_like_etcd() -> None:
    parse = v2request.parse_key_request
    r = parse("PUT", "/a/../b//c", {"value": ["v"], "ttl": ["5"], "prevExist": ["false"]}, NOW).request
    assert (r.path, r.value, r.expiration_ns, r.prev_exist) == ("/b/c", "v", NOW + 5 * NS, False)
    assert parse("GET", "/x", {"quorum": ["T"]}, NOW).request.effective_method == "QGET"
    cases = {
        ("PUT", "wait", "true"): (209, '"wait" can only be used with GET requests'),
        ("PUT", "prevValue", ""): (201, '"prevValue" cannot be empty'),
        ("PUT", "ttl", "abc"): (202, 'invalid value for "ttl"'),
        ("PUT", "prevIndex", "-1"): (203, 'invalid value for "prevIndex"'),
        ("GET", "waitIndex", "x"): (203, 'invalid value for "waitIndex"'),
        ("GET", "recursive", "maybe"): (209, 'invalid value for "recursive"'),
        ("PUT", "prevExist", "x"): (209, "invalid value for prevExist"),
        ("PUT", "refresh", "true"): (212, "No TTL value set"),
    }
    for (method, field, value), (code, cause) in cases.items():
        err = err_of(parse, method, "/a", {field: [value]}, NOW)
        assert (err.code, err.cause, err.index) == (code, cause, 0), field
    err = err_of(parse, "PUT", "/a", {"refresh": ["1"], "ttl": ["3"], "value": ["x"]}, NOW)
    assert err.code == 211
    assert parse("PUT", "/a", {"ttl": [""]}, NOW).request.expiration_ns == 0

"""Property: a member restored from a snapshot taken at any point answers the rest of the log exactly
as the member that never stopped (tree, indices, TTLs, the event history behind watches)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from petcd.v2 import request as v2request
from petcd.v2.errors import V2Error
from petcd.v2.events import Event
from petcd.v2.store import V2Store

NS = 1_000_000_000
NOW = 1_800_000_000 * NS
PATHS = ["/a", "/a/b", "/c", "/d", "/d/e", "/_h", "/"]

paths = st.sampled_from(PATHS)
values = st.sampled_from(["x", "y"])
ttls = st.sampled_from([0, NOW + 5 * NS, NOW + 50 * NS])
requests = st.one_of(
    st.builds(lambda p, v, t, e: v2request.V2Request("PUT", p, v, expiration_ns=t, prev_exist=e),
              paths, values, ttls, st.sampled_from([None, True, False])),
    st.builds(lambda p: v2request.V2Request("PUT", p, dir=True), paths),
    st.builds(lambda p, v, i: v2request.V2Request("PUT", p, "z", prev_value=v, prev_index=i),
              paths, st.sampled_from(["", "x"]), st.integers(0, 6)),
    st.builds(lambda p, t: v2request.V2Request("PUT", p, refresh=True, expiration_ns=t), paths, ttls),
    st.builds(lambda p, v: v2request.V2Request("POST", p, v), paths, values),
    st.builds(lambda p, d, r: v2request.V2Request("DELETE", p, dir=d, recursive=r),
              paths, st.booleans(), st.booleans()),
    st.builds(lambda p, v: v2request.V2Request("DELETE", p, prev_value=v), paths, values),
    st.builds(lambda p: v2request.V2Request("GET", p, recursive=True, sorted=True, quorum=True), paths),
    st.builds(lambda s: v2request.V2Request.sync(NOW + s * NS), st.integers(0, 60)),
)


def answer(result: Event | V2Error | None) -> object:
    if isinstance(result, Event):
        return (result.to_dict(), result.etcd_index)
    return result.to_dict() if isinstance(result, V2Error) else None


@settings(max_examples=150, deadline=None)
@given(st.lists(requests, max_size=40), st.integers(0, 40), st.sampled_from(PATHS))
def test_restored_member_answers_the_rest_of_the_log_alike(
        log: list[v2request.V2Request], cut: int, watch_path: str) -> None:
    cut = min(cut, len(log))
    running = V2Store()
    for req in log[:cut]:
        v2request.apply(running, req, NOW)
    restored = V2Store.restore(running.save())
    assert restored.save() == running.save()
    for req in log[cut:]:
        entry = v2request.encode(req)
        assert answer(v2request.apply(running, v2request.decode(entry), NOW)) == answer(
            v2request.apply(restored, v2request.decode(entry), NOW))
    assert restored.save() == running.save()
    assert restored.has_ttl_keys() == running.has_ttl_keys()
    for since in range(1, running.index + 1):
        outcomes: list[object] = []
        for store in (running, restored):
            try:
                watcher = store.watch(watch_path, recursive=True, since_index=since)
                outcomes.append([answer(e) for e in watcher.events])
                watcher.remove()
            except V2Error as err:
                outcomes.append(err.to_dict())
        assert outcomes[0] == outcomes[1], since

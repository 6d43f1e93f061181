"""etcd's v2 stats JSON and Go's duration text."""

from __future__ import annotations

from petcd.v2.stats import FollowerStats, SelfStats, go_duration, leader_stats

NS = 1_000_000_000


def test_go_duration_text() -> None:
    cases = {0: "0s", 1: "1ns", 1500: "1.5µs", 1_500_000: "1.5ms", 999_999_999: "999.999999ms",
             NS: "1s", 173_159_770_716: "2m53.159770716s", 3600 * NS: "1h0m0s", 3661 * NS: "1h1m1s",
             -1500: "-1.5µs"}
    assert {ns: go_duration(ns) for ns in cases} == cases


def test_self_stats_shape_and_omitted_rates() -> None:
    stats = SelfStats("p", 0x3940266226C16ED, "StateLeader", 10 * NS, 0x3940266226C16ED, 11 * NS)
    out = stats.to_dict(now_ns=11 * NS + 173_159_770_716)
    assert list(out) == ["name", "id", "state", "startTime", "leaderInfo", "recvAppendRequestCnt",
                         "sendAppendRequestCnt"]
    assert out["leaderInfo"] == {"leader": "3940266226c16ed", "uptime": "2m53.159770716s",
                                 "startTime": "1970-01-01T00:00:11Z"}
    stats.send_pkg_rate = 2.5
    assert list(stats.to_dict(now_ns=11 * NS))[-1] == "sendPkgRate"


def test_leader_stats() -> None:
    follower = FollowerStats()
    for ms in (1.0, 3.0):
        follower.succeed(ms)
    follower.fail = 2
    out = leader_stats(0xA, {0xB: follower})
    assert out == {"leader": "a", "followers": {"b": {
        "latency": {"current": 3.0, "average": 2.0, "standardDeviation": 1.0, "minimum": 1.0, "maximum": 3.0},
        "counts": {"fail": 2, "success": 2}}}}

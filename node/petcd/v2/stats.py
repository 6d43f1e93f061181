"""etcd's /v2/stats/self and /v2/stats/leader JSON (etcd's v2stats), from counters the server keeps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from petcd.v2.events import rfc3339nano

_UNITS = ((1, "ns"), (1_000, "µs"), (1_000_000, "ms"))


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): "2m53.159770716s", "1.5ms", "0s"."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for scale, unit in reversed(_UNITS):
            if ns >= scale:
                return sign + _fraction(ns, scale) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return sign + text + _fraction(rest, 1_000_000_000) + "s"


def _fraction(value: int, scale: int) -> str:
    whole, part = divmod(value, scale)
    digits = len(str(scale)) - 1
    frac = f"{part:0{digits}d}".rstrip("0") if digits else ""
    return f"{whole}.{frac}" if frac else str(whole)


@dataclass
class SelfStats:
    """This member's view (state: StateLeader, StateFollower, StateCandidate, StatePreCandidate)."""

    name: str
    id: int
    state: str
    start_time_ns: int
    leader_id: int = 0
    leader_start_time_ns: int = 0
    recv_append_request_cnt: int = 0
    recv_pkg_rate: float = 0.0
    recv_bandwidth_rate: float = 0.0
    send_append_request_cnt: int = 0
    send_pkg_rate: float = 0.0
    send_bandwidth_rate: float = 0.0

    def to_dict(self, now_ns: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "id": f"{self.id:x}", "state": self.state,
            "startTime": rfc3339nano(self.start_time_ns),
            "leaderInfo": {"leader": f"{self.leader_id:x}",
                           "uptime": go_duration(now_ns - self.leader_start_time_ns),
                           "startTime": rfc3339nano(self.leader_start_time_ns)},
            "recvAppendRequestCnt": self.recv_append_request_cnt,
        }
        if self.recv_pkg_rate:
            out["recvPkgRate"] = self.recv_pkg_rate
        if self.recv_bandwidth_rate:
            out["recvBandwidthRate"] = self.recv_bandwidth_rate
        out["sendAppendRequestCnt"] = self.send_append_request_cnt
        if self.send_pkg_rate:
            out["sendPkgRate"] = self.send_pkg_rate
        if self.send_bandwidth_rate:
            out["sendBandwidthRate"] = self.send_bandwidth_rate
        return out


@dataclass
class FollowerStats:
    """Round trips to one follower, in milliseconds, as etcd's FollowerStats keeps them."""

    latencies_ms: list[float] = field(default_factory=list)
    fail: int = 0

    def succeed(self, latency_ms: float) -> None:
        self.latencies_ms.append(latency_ms)

    def to_dict(self) -> dict[str, Any]:
        values = self.latencies_ms
        count = len(values)
        average = sum(values) / count if count else 0.0
        variance = sum(v * v for v in values) / count - average * average if count else 0.0
        return {
            "latency": {
                "current": values[-1] if values else 0,
                "average": average,
                "standardDeviation": math.sqrt(max(variance, 0.0)),
                "minimum": min(values) if values else 0,
                "maximum": max(values) if values else 0,
            },
            "counts": {"fail": self.fail, "success": count},
        }


def leader_stats(leader_id: int, followers: dict[int, FollowerStats]) -> dict[str, Any]:
    """/v2/stats/leader of the leader: its ID and one entry per follower (hex IDs)."""
    return {"leader": f"{leader_id:x}",
            "followers": {f"{fid:x}": stats.to_dict() for fid, stats in sorted(followers.items())}}

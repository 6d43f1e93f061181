"""No key outlives its lease by more than the TTL plus an election timeout (pure).

While there is no leader, no lease expires; a new leader restarts every lease's full TTL plus an
election timeout (etcd's lessor.Promote). So the bound on a key seen by a read is measured from its
last renewal or from the end of the last disturbance before the read (a fault, or an observed
leader change), whichever is later, plus the TTL, an election to elect a leader, the extension,
and some slack for the poll interval and a loaded machine. Reads made during a fault are not judged.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from .anomalies import Anomaly
from .workload import LeaseKey, Observation


def check_lease_expiry(
    keys: Sequence[LeaseKey],
    observations: Sequence[Observation],
    disturbances: Sequence[tuple[float, float]],
    election_timeout: float,
    slack: float,
) -> list[Anomaly]:
    """`disturbances`: (start, end) monotonic times of faults and of observed leader changes."""
    by_key = {k.key: k for k in keys}
    ends = sorted(end for _, end in disturbances)
    anomalies = []
    reported: set[str] = set()
    for seen in observations:
        if any(start <= seen.returned and seen.called <= end for start, end in disturbances):
            continue  # a fault was under way during the read
        position = bisect.bisect_right(ends, seen.called)
        settled = ends[position - 1] if position else float("-inf")
        for name in sorted(seen.keys - reported):
            key = by_key.get(name)
            if key is None:
                anomalies.append(Anomaly("lease", f"{name} exists but no client wrote it"))
                reported.add(name)
                continue
            deadline = max(key.renewed, settled + 2 * election_timeout) + key.ttl + slack
            if seen.called > deadline:
                late = seen.called - max(key.renewed, settled)
                anomalies.append(
                    Anomaly(
                        "lease",
                        f"{name} (TTL {key.ttl} s) still exists {late:.1f} s after its last renewal "
                        "or the last disturbance",
                    )
                )
                reported.add(name)
    return anomalies

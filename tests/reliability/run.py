"""One reliability run: a cluster in network namespaces, the recorded workload, the nemesis, then
every checker on what was recorded. Settings come from the test, or from the environment in soak
mode (PETCD_SOAK_SECONDS, PETCD_RELIABILITY_SEED, PETCD_RELIABILITY_MAX_FAULTS,
PETCD_RELIABILITY_FAULTS)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import Cluster, Implementation, Sandbox
from harness.linearizability import History, check
from petcd.proto import rpc_pb2

from .anomalies import Anomaly
from .client import Connections
from .cluster import start_cluster
from .hashkv import check_hashes, probe_hashes
from .lease_check import check_lease_expiry
from .nemesis import FAULT_KINDS, Nemesis, plan
from .network import PartitionableNetwork
from .report import RunReport
from .revision_check import check_revisions
from .watch_check import Write, check_watches
from .watcher import WatchRecorder
from .workload import KvClient, LeaseClient, LeaseKey, LeasePoller, TermMonitor, Worker

ELECTION_TIMEOUT = 1.0  # etcd's default --election-timeout, which the members run with
LEASE_SLACK = 2.0  # poll interval, revocation loop, a loaded machine
PROGRESS_NOTIFY = "--experimental-watch-progress-notify-interval=1s"


@dataclass(frozen=True)
class Settings:
    members: int = 3
    fault_seconds: float = 60.0
    max_faults: int = 100
    seed: int = 0
    kv_clients: int = 4
    keys: int = 6
    lease_clients: int = 1
    watchers: int = 2
    warm_up: float = 2.0
    settle: float = 5.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS

    @classmethod
    def from_environment(cls, members: int, fault_seconds: float) -> Settings:
        """The short pass's settings, or the soak mode's when its variables are set."""
        return cls(
            members=members,
            fault_seconds=float(os.environ.get("PETCD_SOAK_SECONDS", fault_seconds)),
            max_faults=int(os.environ.get("PETCD_RELIABILITY_MAX_FAULTS", 100)),
            seed=int(os.environ.get("PETCD_RELIABILITY_SEED", random.randrange(1 << 30))),
            fault_kinds=tuple(os.environ.get("PETCD_RELIABILITY_FAULTS", ",".join(FAULT_KINDS)).split(",")),
        )


def acknowledged_writes(operations: Sequence[dict[str, Any]]) -> list[Write]:
    """The writes whose responses named a revision: puts, successful compare-and-sets, deletes
    that deleted."""
    writes = []
    for op in operations:
        given, got = op["input"], op["output"]
        if "revision" not in got:
            continue
        if given["op"] == "put" or (given["op"] == "cas" and got["succeeded"]):
            writes.append(Write(got["revision"], "PUT", given["key"], given["value"]))
        elif given["op"] == "delete" and got["deleted"]:
            writes.append(Write(got["revision"], "DELETE", given["key"]))
    return writes


def _log(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def run(implementation: Implementation, settings: Settings, sandbox: Sandbox) -> RunReport:
    report = RunReport(implementation.name, settings.members, settings.seed)
    began = time.monotonic()
    network = PartitionableNetwork(settings.members)
    try:
        network.create()
        cluster = start_cluster(sandbox, implementation, network, extra_flags=[PROGRESS_NOTIFY])
        connections = Connections(cluster.endpoints)
        try:
            _exercise(cluster, network, connections, settings, sandbox.root / "checks", report)
        finally:
            connections.close()
    finally:
        sandbox.close()
        network.release()
    report.seconds = time.monotonic() - began
    return report


def _exercise(
    cluster: Cluster,
    network: PartitionableNetwork,
    connections: Connections,
    settings: Settings,
    workdir: Path,
    report: RunReport,
) -> None:
    rng = random.Random(settings.seed)
    stop = threading.Event()
    history = History()
    start = connections.members[0].maintenance.Status(rpc_pb2.StatusRequest(), timeout=10).header.revision + 1
    kv = [KvClient(n, connections, history, settings.keys, stop) for n in range(settings.kv_clients)]
    leases = [LeaseClient(n, connections, stop) for n in range(settings.lease_clients)]
    watchers = [WatchRecorder(n, connections, start, stop) for n in range(settings.watchers)]
    poller, monitor = LeasePoller(connections, stop), TermMonitor(connections, stop)
    workers: list[Worker] = [*kv, *leases, *watchers, poller, monitor]
    for worker in workers:
        worker.start()

    nemesis = Nemesis(cluster, network, connections, rng, _log)
    stop.wait(settings.warm_up)
    faults = plan(rng, settings.fault_seconds, settings.max_faults, settings.fault_kinds)
    _log(f"nemesis: {len(faults)} faults planned, about {settings.fault_seconds:.0f} s, seed {settings.seed}")
    records = nemesis.run(faults, time.monotonic() + settings.fault_seconds * 1.5, threading.Event())
    healing = time.monotonic()
    nemesis.heal_everything()
    disturbances = [(r.started, r.healed) for r in records] + [(healing, time.monotonic())]
    _log("nemesis: healed; workload settling")
    time.sleep(settings.settle)
    stop.set()
    for worker in workers:
        worker.join(timeout=15)
    disturbances += [(t - monitor.interval - ELECTION_TIMEOUT, t) for t in monitor.elections]

    lease_keys = [k for client in leases for k in client.keys]
    _final_lease_read(poller, lease_keys, disturbances)

    report.operations = Counter(
        f"{op['input']['op']} {'unknown' if op['output'].get('unknown') else 'ok'}"
        for op in history.operations
    )
    report.faults = Counter(r.kind for r in records)
    report.fault_errors = [f"{r.kind} on {r.targets}: {r.error}" for r in records if r.error]
    report.watch = Counter()
    for watcher in watchers:
        report.watch["sessions"] += len(watcher.sessions)
        report.watch.update(watcher.counts)
    report.lease_keys, report.lease_reads = len(lease_keys), len(poller.observations)
    report.elections_seen = len(monitor.elections)

    anomalies: list[Anomaly] = [
        Anomaly("client", f"{w.name} crashed: {w.failure!r}") for w in workers if w.failure is not None
    ]
    anomalies += [Anomaly("client", f"{w.name} did not stop") for w in workers if w.is_alive()]
    verdict = check(history, workdir, timeout="180s")
    report.linearizability = f"{verdict.result} ({verdict.operations} operations on {verdict.keys} keys)"
    if verdict.result != "ok":
        anomalies.append(
            Anomaly("linearizability", f"porcupine says {verdict.result}; see {verdict.visualization}")
        )
    anomalies += check_revisions(history.operations)
    writes = acknowledged_writes(history.operations)
    report.watch["acknowledged writes matched"] = len(writes)
    anomalies += check_watches([w.sessions for w in watchers], start, writes)
    anomalies += check_lease_expiry(
        lease_keys, poller.observations, disturbances, ELECTION_TIMEOUT, LEASE_SLACK
    )
    hashes = probe_hashes(connections)
    report.hashkv = f"{len(hashes)} members hashed at revision {hashes[0].revision}"
    anomalies += check_hashes(hashes)
    report.anomalies = anomalies


def _final_lease_read(
    poller: LeasePoller, keys: Sequence[LeaseKey], disturbances: Sequence[tuple[float, float]]
) -> None:
    """Wait until every lease key must be gone, then read them all once more (bounded)."""
    settled = max(end for _, end in disturbances)
    longest = max((k.ttl for k in keys), default=0)
    due = max([settled + 2 * ELECTION_TIMEOUT + longest, *(k.renewed + k.ttl for k in keys)]) + LEASE_SLACK
    time.sleep(min(max(0.0, due - time.monotonic()) + 0.5, 30.0))
    for _ in range(len(poller.connections.members) * 2):
        if poller.poll() is not None:
            return

"""etcd's Prometheus metrics, defined once, with etcd's names, types, labels and buckets.

Each member owns one `Metrics` (its own registry), so several members can live in one process (tests)
without their series mixing. `/metrics` renders `Metrics.registry`. Names follow etcd 3.5 (several
"..._total" series are gauges in etcd, and are gauges here too).
"""

from __future__ import annotations

import os
import platform
import resource
import threading
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# etcd's client_golang exposes no `_created` series.
disable_created_metrics()  # type: ignore[no-untyped-call]

# etcd exposes the Go toolchain's version here; petcd names its runtime the same way.
RUNTIME_VERSION = f"python{platform.python_version()}"
CONTENT_TYPE = CONTENT_TYPE_LATEST

WAL_FSYNC_BUCKETS = tuple(0.001 * 2**n for n in range(14))
BACKEND_COMMIT_BUCKETS = tuple(0.001 * 2**n for n in range(14))
PEER_RTT_BUCKETS = tuple(0.0001 * 2**n for n in range(16))
GRPC_HANDLING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class PlainCounter(Collector):
    """A counter exposed under its exact name. etcd has counters without the `_total` suffix
    (`etcd_server_health_success`), which prometheus_client's Counter would always add."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self._name = name
        self._documentation = documentation
        self._value = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value += amount

    def get(self) -> float:
        return self._value

    @property
    def name(self) -> str:
        return self._name

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self._name, self._documentation, "counter")
        metric.add_sample(self._name, {}, self._value)
        yield metric


def _open_fd_count() -> float:
    try:
        return float(len(os.listdir("/proc/self/fd")))
    except OSError:
        return 0.0


class Metrics:
    """All of one member's metrics. The server sets and increments them; /metrics renders them."""

    def __init__(self, server_version: str, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

        # --- server
        self.has_leader = Gauge("etcd_server_has_leader",
                                "Whether or not a leader exists. 1 is existence, 0 is not.", registry=r)
        self.is_leader = Gauge("etcd_server_is_leader",
                               "Whether or not this member is a leader. 1 if is, 0 otherwise.", registry=r)
        self.is_learner = Gauge("etcd_server_is_learner",
                                "Whether or not this member is a learner. 1 if is, 0 otherwise.", registry=r)
        self.leader_changes_seen = Counter("etcd_server_leader_changes_seen_total",
                                           "The number of leader changes seen.", registry=r)
        self.proposals_committed = Gauge("etcd_server_proposals_committed_total",
                                         "The total number of consensus proposals committed.", registry=r)
        self.proposals_applied = Gauge("etcd_server_proposals_applied_total",
                                       "The total number of consensus proposals applied.", registry=r)
        self.proposals_pending = Gauge("etcd_server_proposals_pending",
                                       "The current number of pending proposals to commit.", registry=r)
        self.proposals_failed = Counter("etcd_server_proposals_failed_total",
                                        "The total number of failed proposals seen.", registry=r)
        self.quota_backend_bytes = Gauge("etcd_server_quota_backend_bytes",
                                         "Current backend storage quota size in bytes.", registry=r)
        self.server_version = Gauge("etcd_server_version", "Which version is running. 1 for 'server_version' "
                                    "label with current version.", ["server_version"], registry=r)
        self.go_version = Gauge("etcd_server_go_version", "Which Go version server is running with. 1 for "
                                "'server_go_version' label with current version.", ["server_go_version"],
                                registry=r)
        self.server_id = Gauge("etcd_server_id",
                               "Server or member ID in hexadecimal format. 1 for 'server_id' label with "
                               "current ID.", ["server_id"], registry=r)
        self.cluster_version = Gauge("etcd_cluster_version", "Which version is running. 1 for "
                                     "'cluster_version' label with current cluster version",
                                     ["cluster_version"], registry=r)
        self.client_requests = Counter("etcd_server_client_requests_total",
                                       "The total number of client requests per client version.",
                                       ["type", "client_api_version"], registry=r)
        self.heartbeat_send_failures = Counter("etcd_server_heartbeat_send_failures_total",
                                               "The total number of leader heartbeat send failures (likely "
                                               "overloaded from slow disk).", registry=r)
        self.slow_apply = Counter("etcd_server_slow_apply_total",
                                  "The total number of slow apply requests (likely overloaded from slow "
                                  "disk).",
                                  registry=r)
        self.slow_read_indexes = Counter("etcd_server_slow_read_indexes_total",
                                         "The total number of pending read indexes not in sync with leader's "
                                         "or timed out read index requests.", registry=r)
        self.read_indexes_failed = Counter("etcd_server_read_indexes_failed_total",
                                           "The total number of failed read indexes seen.", registry=r)
        self.health_success = PlainCounter("etcd_server_health_success",
                                           "The total number of successful health checks", r)
        self.health_failures = PlainCounter("etcd_server_health_failures",
                                            "The total number of failed health checks", r)
        self.healthcheck = Gauge("etcd_server_healthcheck", "The result of each kind of healthcheck.",
                                 ["type", "name"], registry=r)
        self.healthchecks = Counter("etcd_server_healthchecks_total",
                                    "The total number of each kind of healthcheck.",
                                    ["type", "name", "status"], registry=r)

        # --- mvcc and backend
        self.db_total_size = Gauge("etcd_mvcc_db_total_size_in_bytes",
                                   "Total size of the underlying database physically allocated in bytes.",
                                   registry=r)
        self.db_total_size_in_use = Gauge("etcd_mvcc_db_total_size_in_use_in_bytes",
                                          "Total size of the underlying database logically in use in bytes.",
                                          registry=r)
        self.put = Counter("etcd_mvcc_put_total", "Total number of puts seen by this member.", registry=r)
        self.delete = Counter("etcd_mvcc_delete_total", "Total number of deletes seen by this member.",
                              registry=r)
        self.range = Counter("etcd_mvcc_range_total", "Total number of ranges seen by this member.",
                             registry=r)
        self.txn = Counter("etcd_mvcc_txn_total", "Total number of txns seen by this member.", registry=r)
        self.keys = Gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.", registry=r)
        self.current_revision = Gauge("etcd_debugging_mvcc_current_revision",
                                      "The current revision of store.", registry=r)
        self.compact_revision = Gauge("etcd_debugging_mvcc_compact_revision",
                                      "The revision of the last compaction in store.", registry=r)
        self.watchers = Gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", registry=r)

        # --- disk
        self.wal_fsync_duration = Histogram("etcd_disk_wal_fsync_duration_seconds",
                                            "The latency distributions of fsync called by WAL.",
                                            buckets=WAL_FSYNC_BUCKETS, registry=r)
        self.backend_commit_duration = Histogram("etcd_disk_backend_commit_duration_seconds",
                                                 "The latency distributions of commit called by backend.",
                                                 buckets=BACKEND_COMMIT_BUCKETS, registry=r)

        # --- network
        self.peer_round_trip_time = Histogram("etcd_network_peer_round_trip_time_seconds",
                                              "Round-Trip-Time histogram between peers", ["To"],
                                              buckets=PEER_RTT_BUCKETS, registry=r)
        self.peer_sent_bytes = Counter("etcd_network_peer_sent_bytes_total",
                                       "The total number of bytes sent to peers.", ["To"], registry=r)
        self.peer_received_bytes = Counter("etcd_network_peer_received_bytes_total",
                                           "The total number of bytes received from peers.", ["From"],
                                           registry=r)
        self.peer_sent_failures = Counter("etcd_network_peer_sent_failures_total",
                                          "The total number of send failures from peers.", ["To"], registry=r)
        self.peer_received_failures = Counter("etcd_network_peer_received_failures_total",
                                              "The total number of receive failures from peers.", ["From"],
                                              registry=r)
        self.active_peers = Gauge("etcd_network_active_peers",
                                  "The current number of active peer connections.",
                                  ["Local", "Remote"], registry=r)
        self.client_grpc_sent_bytes = Counter("etcd_network_client_grpc_sent_bytes_total",
                                              "The total number of bytes sent to grpc clients.", registry=r)
        self.client_grpc_received_bytes = Counter("etcd_network_client_grpc_received_bytes_total",
                                                  "The total number of bytes received from grpc clients.",
                                                  registry=r)

        # --- gRPC (go-grpc-prometheus names)
        grpc_labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.grpc_started = Counter("grpc_server_started_total",
                                    "Total number of RPCs started on the server.",
                                    grpc_labels, registry=r)
        self.grpc_handled = Counter("grpc_server_handled_total", "Total number of RPCs completed on the "
                                    "server, regardless of success or failure.", [*grpc_labels, "grpc_code"],
                                    registry=r)
        self.grpc_msg_received = Counter("grpc_server_msg_received_total",
                                         "Total number of RPC stream messages received on the server.",
                                         grpc_labels, registry=r)
        self.grpc_msg_sent = Counter("grpc_server_msg_sent_total",
                                     "Total number of gRPC stream messages sent by the server.", grpc_labels,
                                     registry=r)
        self.grpc_handling_seconds = Histogram("grpc_server_handling_seconds",
                                               "Histogram of response latency "
                                               "(seconds) of gRPC that had been application-level handled by "
                                               "the server.", grpc_labels, buckets=GRPC_HANDLING_BUCKETS,
                                               registry=r)

        # --- os (etcd's own names for file descriptor use)
        fd_used = Gauge("os_fd_used", "The number of used file descriptors.", registry=r)
        fd_used.set_function(_open_fd_count)
        fd_limit = Gauge("os_fd_limit", "The file descriptor limit.", registry=r)
        fd_limit.set_function(lambda: float(resource.getrlimit(resource.RLIMIT_NOFILE)[0]))

        self._last_leader = 0
        self.server_version.labels(server_version=server_version).set(1)
        self.go_version.labels(server_go_version=RUNTIME_VERSION).set(1)

    def set_member(self, member_id: int, quota_backend_bytes: int) -> None:
        """What a member knows once it has its ID: etcd_server_id{server_id="<hex>"} and its quota."""
        self.server_id.labels(server_id=f"{member_id:x}").set(1)
        self.quota_backend_bytes.set(quota_backend_bytes)

    def set_cluster_version(self, version: str) -> None:
        """etcd_cluster_version{cluster_version="3.5"} = 1 (only the current version is exported)."""
        self.cluster_version.clear()
        self.cluster_version.labels(cluster_version=version).set(1)

    def set_leader(self, leader_id: int, member_id: int) -> None:
        """Record the leader seen in a Ready (0 = none). As in etcd, a change counts whenever a leader
        is seen that differs from the previous observation (no leader in between counts too)."""
        self.has_leader.set(1 if leader_id else 0)
        self.is_leader.set(1 if leader_id and leader_id == member_id else 0)
        if leader_id and leader_id != self._last_leader:
            self.leader_changes_seen.inc()
        self._last_leader = leader_id

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        text = generate_latest(self.registry)
        # prometheus_client names a counter's HELP/TYPE lines `<name>_total`; etcd's plain counters
        # keep their exact names there too.
        for counter in (self.health_success, self.health_failures):
            for kind in (b"HELP", b"TYPE"):
                name = counter.name.encode()
                text = text.replace(b"# %s %s_total " % (kind, name), b"# %s %s " % (kind, name))
        return text

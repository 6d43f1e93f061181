"""petcd.metrics: etcd's names, types and label names; one registry per member."""

from __future__ import annotations

from petcd.metrics import Metrics


def series(metrics: Metrics) -> dict[str, str]:
    """name -> TYPE, from the exposition text."""
    types = {}
    for line in metrics.render().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
    return types


def test_etcd_names_and_types() -> None:
    types = series(Metrics("3.5.17"))
    expected = {
        "etcd_server_has_leader": "gauge", "etcd_server_is_leader": "gauge",
        "etcd_server_is_learner": "gauge",
        "etcd_server_leader_changes_seen_total": "counter",
        "etcd_server_proposals_committed_total": "gauge", "etcd_server_proposals_applied_total": "gauge",
        "etcd_server_proposals_pending": "gauge", "etcd_server_proposals_failed_total": "counter",
        "etcd_server_quota_backend_bytes": "gauge", "etcd_server_health_success": "counter",
        "etcd_server_health_failures": "counter", "etcd_mvcc_db_total_size_in_bytes": "gauge",
        "etcd_mvcc_db_total_size_in_use_in_bytes": "gauge", "etcd_mvcc_put_total": "counter",
        "etcd_debugging_mvcc_keys_total": "gauge", "etcd_disk_wal_fsync_duration_seconds": "histogram",
        "etcd_disk_backend_commit_duration_seconds": "histogram",
        "etcd_network_peer_round_trip_time_seconds": "histogram",
        "etcd_network_peer_sent_bytes_total": "counter",
        "etcd_network_active_peers": "gauge", "grpc_server_handled_total": "counter",
        "process_resident_memory_bytes": "gauge", "os_fd_used": "gauge", "os_fd_limit": "gauge",
    }
    assert {name: types.get(name) for name in expected} == expected


def test_buckets_are_etcds() -> None:
    m = Metrics("3.5.17")
    m.wal_fsync_duration.observe(0.003)
    m.peer_round_trip_time.labels(To="2").observe(0.0003)
    text = m.render().decode()
    assert 'etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 0.0' in text
    assert 'etcd_disk_wal_fsync_duration_seconds_bucket{le="0.004"} 1.0' in text
    assert 'etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"} 1.0' in text
    assert 'etcd_network_peer_round_trip_time_seconds_bucket{To="2",le="0.0004"} 1.0' in text
    assert 'etcd_network_peer_round_trip_time_seconds_bucket{To="2",le="3.2768"} 1.0' in text


def test_leader_changes_are_counted_as_etcd_does() -> None:
    m = Metrics("3.5.17")
    for leader in (0, 1, 1, 0, 1, 2, 2):
        m.set_leader(leader, member_id=2)
    assert m.leader_changes_seen._value.get() == 3
    assert (m.has_leader._value.get(), m.is_leader._value.get()) == (1, 1)
    m.set_leader(0, member_id=2)
    assert (m.has_leader._value.get(), m.is_leader._value.get()) == (0, 0)


def test_member_identity_series() -> None:
    m = Metrics("3.5.17")
    m.set_member(0x8E9E05C52164694D, 2147483648)
    m.set_cluster_version("3.5.0")
    m.set_cluster_version("3.6.0")
    text = m.render().decode().splitlines()
    assert 'etcd_server_id{server_id="8e9e05c52164694d"} 1.0' in text
    assert 'etcd_cluster_version{cluster_version="3.6.0"} 1.0' in text
    assert not [line for line in text if 'cluster_version="3.5.0"' in line]
    assert "etcd_server_quota_backend_bytes 2.147483648e+09" in text


def test_each_member_has_its_own_registry() -> None:
    a, b = Metrics("3.5.17"), Metrics("3.5.17")
    a.put.inc()
    assert a.put._value.get() == 1 and b.put._value.get() == 0

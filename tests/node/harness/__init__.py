"""Process harness for the node tests: etcd-compatible servers as real processes on 127.0.0.x."""

from .cluster import Cluster, Sandbox
from .etcdctl import Result, etcdctl
from .implementations import IMPLEMENTATIONS, Implementation
from .members import Member, MemberAddress, flags_as_environment, http_get, initial_cluster, static_flags

__all__ = [
    "IMPLEMENTATIONS",
    "Cluster",
    "Implementation",
    "Member",
    "MemberAddress",
    "Result",
    "Sandbox",
    "etcdctl",
    "flags_as_environment",
    "http_get",
    "initial_cluster",
    "static_flags",
]

"""petcd: an etcd-compatible, Raft-replicated key-value store."""

__version__ = "0.1.0"

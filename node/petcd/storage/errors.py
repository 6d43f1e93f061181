"""Errors raised by the state machine, carrying etcd's exact messages.

`petcd.api` maps each class to its gRPC status once (the code is given here as a hint by name);
clients match on the message text, so it must stay byte-identical to etcd's.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error the state machine reports to a client."""

    message = "etcdserver: storage error"
    grpc_code = "UNKNOWN"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class CompactedError(StorageError):
    message = "etcdserver: mvcc: required revision has been compacted"
    grpc_code = "OUT_OF_RANGE"


class FutureRevisionError(StorageError):
    message = "etcdserver: mvcc: required revision is a future revision"
    grpc_code = "OUT_OF_RANGE"


class KeyNotFoundError(StorageError):
    message = "etcdserver: key not found"
    grpc_code = "INVALID_ARGUMENT"


class LeaseNotFoundError(StorageError):
    message = "etcdserver: requested lease not found"
    grpc_code = "NOT_FOUND"


class LeaseExistsError(StorageError):
    message = "etcdserver: lease already exists"
    grpc_code = "FAILED_PRECONDITION"


class LeaseTTLTooLargeError(StorageError):
    message = "etcdserver: too large lease TTL"
    grpc_code = "OUT_OF_RANGE"


class WalCorrupted(Exception):
    """A record in the middle of the WAL failed its CRC or framing check: the log is not trustworthy."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"wal: corrupt record in {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class SnapshotCorrupted(Exception):
    """A snapshot file failed its CRC or framing check."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"snap: corrupt snapshot {path}: {reason}")
        self.path = path
        self.reason = reason

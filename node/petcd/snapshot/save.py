"""`petcd snapshot save`: Maintenance.Snapshot from one member into a file (etcdctl's snapshot save).

The stream's bytes are the file (see snapfile); the file appears under its name only once the last
message's SHA-256 matched everything before it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import grpc

from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc
from petcd.snapshot.snapfile import Receiver


class SaveError(Exception):
    """The snapshot could not be fetched; the text is what etcdctl would print after `Error: `."""


@dataclass(frozen=True)
class Saved:
    path: str
    size: int


def grpc_target(endpoint: str) -> str:
    """etcdctl takes `host:port` or `http://host:port`; TLS is not served by petcd yet."""
    if endpoint.startswith(("https://", "unixs://")):
        raise SaveError(f"{endpoint}: TLS endpoints are not supported by this petcd version yet")
    return endpoint.removeprefix("http://")


def go_status_text(error: grpc.RpcError) -> str:
    """grpc-go's rendering of a status: `rpc error: code = Unavailable desc = ...`."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    name = "".join(word.capitalize() for word in str(code.value[1]).split())
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    return f"rpc error: code = {name} desc = {details}"


def save(endpoints: list[str], path: str | os.PathLike[str], *, dial_timeout: float,
         command_timeout: float | None) -> Saved:
    """`command_timeout` None: no deadline for the transfer (etcdctl's default for snapshot save)."""
    if len(endpoints) != 1:
        listed = " ".join(endpoints)
        raise SaveError(f"snapshot must be requested to one selected node, not multiple [{listed}]")
    target = grpc_target(endpoints[0])
    try:
        receiver = Receiver(path)
    except OSError as exc:
        raise SaveError(f"could not open {path}.part ({exc.strerror or exc})") from None
    try:
        with grpc.insecure_channel(target) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=dial_timeout)
            except grpc.FutureTimeoutError:
                raise SaveError("context deadline exceeded") from None
            stub = rpc_pb2_grpc.MaintenanceStub(channel)  # type: ignore[no-untyped-call]
            for response in stub.Snapshot(pb.SnapshotRequest(), timeout=command_timeout):
                receiver.write(response.blob)
        return Saved(str(path), receiver.finish())
    except grpc.RpcError as exc:
        raise SaveError(go_status_text(exc)) from None
    finally:
        receiver.abort()  # a no-op once finish() renamed the file

"""What the benchmark tool is pointed at: 3-member clusters and the no-op server, started with the
node tests' harness (tests/node/harness) so that every process is killed at the end."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests" / "node"))

from harness import IMPLEMENTATIONS, Cluster, Member, Sandbox  # noqa: E402
from harness.addresses import free_port, loopback_hosts  # noqa: E402
from harness.implementations import BENCHMARK  # noqa: E402
from harness.process import ManagedProcess, child_environment  # noqa: E402

__all__ = ["BENCHMARK", "IMPLEMENTATIONS", "Member", "Sandbox", "Target", "child_environment", "noop_server",
           "ready", "start_cluster"]


@dataclass(frozen=True)
class Target:
    """A server under test: the tool's endpoints (host:port) and one process group per member."""

    name: str
    endpoints: tuple[str, ...]
    process_groups: tuple[int, ...]
    cluster: Cluster | None = None  # None for the no-op server


def _endpoint(member: Member) -> str:
    return f"{member.address.host}:{member.address.client_port}"


def start_cluster(sandbox: Sandbox, implementation: str, size: int = 3) -> Cluster:
    """Start a new `size`-member cluster of `implementation` (an IMPLEMENTATIONS key); see `ready`."""
    impl = IMPLEMENTATIONS[implementation]
    missing = impl.missing()
    if missing is not None:
        raise RuntimeError(missing)
    return sandbox.static_cluster(impl, size, token=f"bench-{implementation}", wait=False)


def ready(started: Cluster, timeout: float = 90.0) -> Target:
    """The cluster as a target once every member is healthy and they agree on a leader."""
    started.wait_healthy(timeout)
    started.leader(timeout)
    pgids = tuple(m.process.pid for m in started.members if m.process is not None)
    endpoints = tuple(_endpoint(m) for m in started.members)
    return Target(started.implementation.name, endpoints, pgids, started)


def noop_server(log_dir: Path, timeout: float = 30.0) -> tuple[Target, ManagedProcess]:
    """bench.noop_server on a free 127.0.0.x port, once it listens (bounded by `timeout`)."""
    host = loopback_hosts(1)[0]
    port = free_port(host)
    argv = [sys.executable, "-m", "bench.noop_server", host, str(port)]
    process = ManagedProcess(argv, {"PYTHONPATH": str(REPOSITORY)}, log_dir / "noop.log", cwd=REPOSITORY)
    deadline = time.monotonic() + timeout
    while "no-op KV server on" not in process.log_text():
        if not process.running() or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the no-op server did not start:\n{process.log_text()}")
        time.sleep(0.1)
    return Target("noop", (f"{host}:{port}",), (process.pid,)), process

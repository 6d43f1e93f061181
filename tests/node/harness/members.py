"""Members of an etcd-compatible cluster as processes: etcd's flags, health, stop/kill/restart."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .implementations import Implementation
from .process import START_MARKER, ManagedProcess

# Loopback health checks must never go through a proxy from the environment.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class MemberAddress:
    """Where one member listens: its own loopback address, a client port and a peer port."""

    name: str
    host: str
    client_port: int
    peer_port: int

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def slug(self) -> str:
        """Unique within a test even when two clusters reuse member names: names files after it."""
        return f"{self.name}-{self.host}-{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"


def initial_cluster(addresses: Sequence[MemberAddress]) -> str:
    """etcd's --initial-cluster value: name=peerURL,..."""
    return ",".join(f"{a.name}={a.peer_url}" for a in addresses)


def static_flags(
    address: MemberAddress,
    data_dir: Path,
    cluster: Sequence[MemberAddress],
    *,
    token: str = "etcd-cluster-1",
    state: str = "new",
) -> list[str]:
    """The flags of the seed article's static bootstrap for one member."""
    return [
        f"--name={address.name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={address.client_url}",
        f"--advertise-client-urls={address.client_url}",
        f"--listen-peer-urls={address.peer_url}",
        f"--initial-advertise-peer-urls={address.peer_url}",
        f"--initial-cluster={initial_cluster(cluster)}",
        f"--initial-cluster-token={token}",
        f"--initial-cluster-state={state}",
    ]


def flags_as_environment(flags: Sequence[str]) -> dict[str, str]:
    """The same settings as ETCD_* variables (--initial-cluster-state=new -> ETCD_INITIAL_CLUSTER_STATE)."""
    env = {}
    for flag in flags:
        name, _, value = flag.removeprefix("--").partition("=")
        env["ETCD_" + name.upper().replace("-", "_")] = value
    return env


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """Status and body of a GET (4xx/5xx included); raises OSError when nothing answers."""
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Member:
    """One server process started with a fixed list of flags; restart reuses them."""

    def __init__(
        self,
        implementation: Implementation,
        address: MemberAddress,
        flags: Sequence[str],
        log_dir: Path,
        *,
        env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
    ):
        self.implementation = implementation
        self.address = address
        self.name = address.name
        self.flags = list(flags)
        self.env = {**implementation.env, **(env or {})}
        self.wrapper = list(wrapper)  # e.g. a private /etc/resolv.conf (see dns.py)
        self.log_path = log_dir / f"{address.slug}.log"
        self.process: ManagedProcess | None = None

    @property
    def client_url(self) -> str:
        return self.address.client_url

    @property
    def data_dir(self) -> Path:
        """The --data-dir (or ETCD_DATA_DIR) this member was started with."""
        for flag in self.flags:
            if flag.startswith("--data-dir="):
                return Path(flag.split("=", 1)[1])
        if "ETCD_DATA_DIR" in self.env:
            return Path(self.env["ETCD_DATA_DIR"])
        raise ValueError(f"{self.name} has no data dir setting")

    def start(self) -> Member:
        if self.process is not None and self.process.running():
            raise RuntimeError(f"{self.name} is already running")
        argv = [*self.wrapper, *self.implementation.argv, *self.flags]
        self.process = ManagedProcess(argv, self.env, self.log_path)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def kill(self) -> int | None:
        """kill -9 (the whole process group); the exit status, None if it was not started."""
        return self.process.kill() if self.process is not None else None

    def terminate(self, grace: float = 10.0) -> int | None:
        """SIGTERM, SIGKILL after `grace` seconds; the exit status."""
        return self.process.terminate(grace) if self.process is not None else None

    def restart(self) -> Member:
        self.terminate()
        return self.start()

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status once the process ends by itself, None if still running after `timeout`."""
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.wait(timeout)

    def healthy(self) -> bool:
        """GET /health on the client URL says {"health":"true"}."""
        try:
            status, body = http_get(f"{self.client_url}/health", timeout=1.0)
        except OSError:
            return False
        try:
            return status == 200 and json.loads(body).get("health") == "true"
        except ValueError:
            return False

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Block until healthy; fail at once with the log if the process exits, or at `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if not self.running():
                raise AssertionError(f"{self.name} exited before becoming healthy:\n{self.log_tail()}")
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not healthy after {timeout} s:\n{self.log_tail()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def logged(self, text: str, since_last_start: bool = False) -> bool:
        """`text` occurs in the log (or in what the last start wrote), in a plain line or in a string
        field of a JSON log line (etcd 3.4 logs `C | etcdmain: <error>`, 3.5 `{"msg":..,"error":..}`)."""
        log = self.log_text()
        if since_last_start:
            log = log[log.rfind(START_MARKER) :]
        for line in log.splitlines():
            if text in line:
                return True
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and any(isinstance(v, str) and text in v for v in record.values()):
                return True
        return False

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

"""The pod network of one local cluster: a Linux bridge with a /24, one network namespace per Pod
joined to it by a veth pair. Several clusters can run on one machine: each claims a free index
(an flock'ed file), which names its bridge (pkbr<index>), its subnet (10.244.<index>.0/24) and the
prefix of its namespaces (pk<index>-...), so a crashed predecessor's leftovers can be found and removed.
The bridge has no route beyond the subnet: pods reach each other, the host and the control plane
(which listens on the bridge's gateway address), nothing else.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LOCK_DIR = Path("/run/petcd-testenv")
NETNS_DIR = Path("/run/netns")
ETC_NETNS_DIR = Path("/etc/netns")
MAX_CLUSTERS = 200


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class PodNetworkLayout:
    """Names and addresses of one cluster's network: pure, derived from the index."""

    index: int

    @property
    def bridge(self) -> str:
        return f"pkbr{self.index}"

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.244.{self.index}.0/24")

    @property
    def service_subnet(self) -> ipaddress.IPv4Network:
        """ClusterIPs: served by the kubelet's service proxy on the gateway, routed there from Pods."""
        return ipaddress.IPv4Network(f"10.245.{self.index}.0/24")

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def netns_prefix(self) -> str:
        return f"pk{self.index}-"

    def netns_name(self, pod_uid: str) -> str:
        return self.netns_prefix + pod_uid.replace("-", "")[:12]

    def veth_names(self, pod_uid: str) -> tuple[str, str]:
        """(host side, pod side before it is renamed eth0); Linux allows 15 characters."""
        short = pod_uid.replace("-", "")[:8]
        return f"pk{self.index}v{short}", f"pk{self.index}c{short}"


def netns_pids(name: str) -> list[int]:
    result = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, timeout=30)
    return [int(pid) for pid in result.stdout.split()]


def delete_netns(name: str) -> None:
    """Kill whatever still runs in the namespace, then remove it and its /etc/netns files."""
    for pid in netns_pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    ip("netns", "delete", name, check=False)
    etc = ETC_NETNS_DIR / name
    for path in etc.glob("*"):
        path.unlink()
    if etc.exists():
        etc.rmdir()


class ClusterNetwork:
    """Claims an index and owns its bridge for as long as this object lives."""

    def __init__(self) -> None:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        self._lock: IO[str] | None = None
        for index in range(MAX_CLUSTERS):
            handle = (LOCK_DIR / f"net-{index}.lock").open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self._lock = handle
            self.layout = PodNetworkLayout(index)
            break
        else:
            raise RuntimeError(f"all {MAX_CLUSTERS} test cluster networks are in use")

    def create(self) -> None:
        self.remove_leftovers()
        layout = self.layout
        ip("link", "add", layout.bridge, "type", "bridge")
        ip("addr", "add", f"{layout.gateway}/{layout.subnet.prefixlen}", "dev", layout.bridge)
        ip("link", "set", layout.bridge, "up")

    def remove_leftovers(self) -> None:
        """Delete this index's namespaces and bridge, whoever left them."""
        if NETNS_DIR.is_dir():
            for entry in NETNS_DIR.iterdir():
                if entry.name.startswith(self.layout.netns_prefix):
                    delete_netns(entry.name)
        ip("link", "delete", self.layout.bridge, check=False)

    def release(self) -> None:
        self.remove_leftovers()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

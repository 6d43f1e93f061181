"""Starting from etcd's YAML --config-file, side by side with Debian's etcd: the same file shape gives
the same member, and the flags and ETCD_* variables given alongside are ignored by both."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from harness import IMPLEMENTATIONS, Implementation, Sandbox, etcdctl

PETCD = Implementation("petcd", (sys.executable, "-m", "petcd.cli"))

CONFIG = """\
# The seed article's settings, as etcd's sample configuration file spells them.
name: {name}
data-dir: {data_dir}
listen-peer-urls: {peer_url}
listen-client-urls: {client_url}
initial-advertise-peer-urls: {peer_url}
advertise-client-urls: {client_url}
initial-cluster: {name}=http://{host}:{peer_port}
initial-cluster-token: etcd-cluster-1
initial-cluster-state: new
heartbeat-interval: 100
election-timeout: 1000
logger: zap
"""


def start_from_file(sandbox: Sandbox, implementation: Implementation, name: str) -> list[dict[str, object]]:
    """Start `implementation` from CONFIG; its member list with addresses and ports made generic."""
    [address] = sandbox.addresses([f"{implementation.name}-{name}"])
    data_dir = sandbox.data_dir(address.name)
    path = sandbox.root / f"{address.name}.yml"
    path.write_text(CONFIG.format(name=name, data_dir=data_dir, peer_url=address.peer_url,
                                  client_url=address.client_url, host=address.host,
                                  peer_port=address.peer_port))
    ignored = ["--name=ignored", "--initial-cluster-token=ignored"]
    member = sandbox.member(implementation, address, ["--config-file", str(path), *ignored],
                            env={"ETCD_HEARTBEAT_INTERVAL": "7", "ETCD_NAME": "ignored-too"})
    member.wait_healthy()
    listing = json.loads(etcdctl(["member", "list", "-w", "json"], [address.client_url]).check().stdout)
    assert data_dir.is_dir()

    def generic(urls: list[str], port: int, mark: str) -> list[str]:
        return [url.replace(address.host, "HOST").replace(str(port), mark) for url in urls]

    return [{"name": m["name"], "peerURLs": generic(m["peerURLs"], address.peer_port, "P"),
             "clientURLs": generic(m["clientURLs"], address.client_port, "C")} for m in listing["members"]]


@pytest.mark.parametrize("other", ["etcd34"])
def test_config_file_starts_the_same_member_as_etcd(sandbox: Sandbox, other: str) -> None:
    etcd = IMPLEMENTATIONS[other]
    etcd.require()
    theirs = start_from_file(sandbox, etcd, "infra0")
    ours = start_from_file(sandbox, PETCD, "infra0")
    assert ours == theirs == [{"name": "infra0", "peerURLs": ["http://HOST:P"], "clientURLs": ["http://HOST:C"]}]


def test_a_refused_config_file_leaves_no_data_dir(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(f"name: x\ndata-dir: {tmp_path / 'x.etcd'}\nelection-timeout: 10\n")
    [address] = sandbox.addresses(["x"])
    member = sandbox.member(PETCD, address, ["--config-file", str(path)])
    assert member.wait_exit(30) == 1
    refusal = "election-timeout[10ms] should be at least as 5 times as --heartbeat-interval[100ms]"
    assert refusal in member.log_text()
    assert not (tmp_path / "x.etcd").exists()

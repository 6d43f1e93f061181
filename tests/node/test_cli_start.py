"""`petcd` as systemd runs it (the seed article's Type=notify unit): READY=1 once it serves clients,
/health and /metrics on the client port and on --listen-metrics-urls, STOPPING=1 and exit 0 on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness import Implementation, MemberAddress, Sandbox, http_get
from harness.addresses import free_ports, loopback_hosts

PETCD = Implementation("petcd", (sys.executable, "-m", "petcd.cli"))


def eventually(get: Callable[[], tuple[int, str]],
               done: Callable[[tuple[int, str]], bool] = lambda answer: answer[0] == 200,
               timeout: float = 10.0) -> tuple[int, str]:
    """The first answer `done` accepts, or the last one after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    answer = get()
    while not done(answer) and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = get()
    return answer


def test_systemd_notify_health_metrics_and_sigterm(sandbox: Sandbox, tmp_path: Path) -> None:
    notify_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        notify.settimeout(30)
        [host] = loopback_hosts(1)
        client_port, peer_port, metrics_port = free_ports(host, 3)  # chosen together, so all differ
        address = MemberAddress("node1", host, client_port, peer_port)
        metrics_url = f"http://{host}:{metrics_port}"
        flags = [
            "--name=node1", f"--data-dir={sandbox.data_dir('node1')}",
            f"--listen-client-urls={address.client_url}", f"--advertise-client-urls={address.client_url}",
            f"--listen-peer-urls={address.peer_url}", f"--initial-advertise-peer-urls={address.peer_url}",
            f"--listen-metrics-urls={metrics_url}",
        ]
        member = sandbox.member(PETCD, address, flags, env={"NOTIFY_SOCKET": notify_path})
        assert notify.recv(4096) == b"READY=1"
        # etcd sends READY=1 once it has published itself through Raft (so it has a leader); the
        # gauges are refreshed periodically: both are awaited, bounded.
        assert eventually(lambda: http_get(address.client_url + "/health")) == (
            200, '{"health":"true","reason":""}')
        status, body = eventually(lambda: http_get(metrics_url + "/metrics"),
                                  lambda answer: "etcd_server_has_leader 1.0" in answer[1].splitlines())
        assert status == 200
        assert "etcd_server_has_leader 1.0" in body.splitlines()
        assert http_get(metrics_url + "/health")[0] == 200
        assert member.process is not None
        os.killpg(member.process.popen.pid, signal.SIGTERM)
        assert member.wait_exit(30) == 0
        assert notify.recv(4096) == b"STOPPING=1"
        log = member.log_path.read_text()
        assert '"msg":"starting petcd"' in log
        assert "Traceback" not in log.replace('"stacktrace"', "")

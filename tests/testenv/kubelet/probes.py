"""Container probes (httpGet, tcpSocket, exec; grpc is approximated by a TCP connect) and the
bookkeeping of consecutive results against a probe's thresholds."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class ProbeTarget:
    """Where a probe of one container goes."""

    pod_ip: str
    ports: Mapping[str, int]  # named container ports
    exec_prefix: Sequence[str]  # enters the container's namespaces
    env: Mapping[str, str]


def _port(value: int | str, target: ProbeTarget) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    if value not in target.ports:
        raise ValueError(f"unknown named port {value!r}")
    return target.ports[value]


def run(probe: Obj, target: ProbeTarget) -> tuple[bool, str]:
    """One probe attempt: (success, message)."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            return _http(probe["httpGet"], target, timeout)
        if "tcpSocket" in probe or "grpc" in probe:
            spec = probe.get("tcpSocket") or probe["grpc"]
            host = spec.get("host") or target.pod_ip
            with socket.create_connection((host, _port(spec["port"], target)), timeout=timeout):
                return True, ""
        if "exec" in probe:
            result = subprocess.run(
                [*target.exec_prefix, *probe["exec"]["command"]],
                env=dict(target.env),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            return result.returncode == 0, (result.stdout + result.stderr).strip()[-300:]
    except subprocess.TimeoutExpired:
        return False, f"command timed out after {timeout:g}s"
    except (OSError, ValueError, http.client.HTTPException) as error:
        return False, str(error)
    return False, f"unsupported probe handler {sorted(probe)}"


def _http(spec: Obj, target: ProbeTarget, timeout: float) -> tuple[bool, str]:
    host = spec.get("host") or target.pod_ip
    port = _port(spec["port"], target)
    connection: http.client.HTTPConnection
    if spec.get("scheme", "HTTP").upper() == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {h["name"]: h["value"] for h in spec.get("httpHeaders", [])}
        connection.request("GET", spec.get("path", "/"), headers=headers)
        status = connection.getresponse().status
    finally:
        connection.close()
    return 200 <= status < 400, f"HTTP probe failed with statuscode: {status}"


@dataclass
class ProbeState:
    """Thresholds over consecutive results. `healthy` is None until a threshold is first crossed."""

    spec: Obj
    next_due: float
    successes: int = 0
    failures: int = 0
    healthy: bool | None = None
    message: str = ""
    pending: Future[tuple[bool, str]] | None = field(default=None, repr=False)

    @classmethod
    def starting(cls, spec: Obj, container_started: float) -> ProbeState:
        return cls(spec, container_started + float(spec.get("initialDelaySeconds", 0)))

    def due(self, now: float) -> bool:
        return self.pending is None and now >= self.next_due

    def record(self, success: bool, message: str, now: float) -> None:
        self.next_due = now + float(self.spec.get("periodSeconds", 10))
        if success:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.spec.get("successThreshold", 1)):
                self.healthy = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            self.message = message
            if self.failures >= int(self.spec.get("failureThreshold", 3)):
                self.healthy = False

"""A child process in its own process group, logging to a file, that is always killed at the end.

Every process started here is registered until it has been reaped: `kill_all_leftovers` (run at
interpreter exit and by the fixtures) kills the process groups of any that are left, and the kernel
kills the children if the test process itself dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
START_MARKER = "=== start:"  # heads each start's part of a log file
_LIVE: set[ManagedProcess] = set()

# Proxy settings make Go's HTTP clients send loopback traffic to a proxy (the seed article's
# "context deadline exceeded"); children never inherit them.
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without proxies and without ETCD*_ settings, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _PROXY_VARIABLES and not k.startswith(("ETCD_", "ETCDCTL_"))
    }
    env.update(extra)
    return env


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One started program; stdout and stderr go to `log_path` (appended across restarts)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None):
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        on_main_thread = threading.current_thread() is threading.main_thread()
        with open(log_path, "ab") as log:
            log.write(f"\n{START_MARKER} {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment(env),
                cwd=cwd,
                start_new_session=True,
                # The kernel ties PDEATHSIG to the creating *thread*: only the main thread lives as
                # long as the test process, so children started elsewhere rely on the fixtures.
                preexec_fn=_die_with_parent if on_main_thread else None,
            )
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def returncode(self) -> int | None:
        return self.popen.poll()

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the whole process group (the program and anything it started)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if still running after `timeout` seconds."""
        try:
            status = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        _LIVE.discard(self)
        return status

    def kill(self) -> int:
        """SIGKILL the process group and reap it."""
        self.signal_group(signal.SIGKILL)
        status = self.popen.wait(timeout=30)
        _LIVE.discard(self)
        return status

    def terminate(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit status."""
        self.signal_group(signal.SIGTERM)
        status = self.wait(grace)
        return self.kill() if status is None else status

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def kill_all_leftovers() -> None:
    """Kill every process group this module started and has not reaped yet."""
    for process in list(_LIVE):
        process.kill()


atexit.register(kill_all_leftovers)

"""Long-running child processes with their output in a log file, stopped as a whole process group,
and bounded waiting for a condition."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class WaitTimeout(TimeoutError):
    pass


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `condition` until it holds; raise WaitTimeout naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def process_start_ticks(pid: int) -> int | None:
    """The start time of a process (field 22 of /proc/<pid>/stat): identifies it across pid reuse.
    None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def record_groups(path: Path, pids: list[int]) -> None:
    """Write down process groups (leader pid and start time) for `kill_recorded_groups`."""
    lines = [f"{pid} {ticks}" for pid in pids if (ticks := process_start_ticks(pid)) is not None]
    path.write_text("\n".join(lines) + "\n")


def kill_recorded_groups(path: Path) -> None:
    """SIGKILL the groups a crashed predecessor recorded, if their leaders still are those processes."""
    if not path.exists():
        return
    for line in path.read_text().split("\n"):
        if line.strip():
            pid, ticks = (int(word) for word in line.split())
            if process_start_ticks(pid) == ticks:
                kill_group(pid, signal.SIGKILL)
    path.unlink()


class LoggedProcess:
    """A process in its own session (so its children go with it) writing to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"--- start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def check_running(self) -> None:
        if not self.running():
            raise RuntimeError(
                f"{self.name} exited with status {self.popen.returncode}; last lines of {self.log_path}:\n"
                + self.log_tail()
            )

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the group, SIGKILL after `grace` seconds."""
        if self.running():
            kill_group(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        kill_group(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the process alone: what a crash looks like to its children (they live on)."""
        if self.running():
            self.popen.kill()
        self.popen.wait(timeout=10)

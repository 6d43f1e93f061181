"""One container's process: starting it through the shim, noticing how it ended, signalling it, and
the record of it that survives a kubelet restart."""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from testenv.kubelet.probes import ProbeState
from testenv.kubelet.volumes import Mount
from testenv.processes import kill_group, process_start_ticks

Obj = dict[str, Any]
SHIM = Path(__file__).with_name("shim.py")
UNKNOWN_EXIT = 137
SHIM_START_SECONDS = 10.0


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Termination:
    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    message: str = ""

    def as_state(self) -> Obj:
        state: Obj = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.message:
            state["message"] = self.message
        return {"terminated": state}


@dataclass
class ContainerRun:
    """The kubelet's view of one container of a Pod."""

    name: str
    restart_count: int = 0
    pid: int | None = None
    start_ticks: int | None = None
    started_at: str | None = None
    last_termination: Termination | None = None
    termination: Termination | None = None
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    succeeded_once: bool = False
    # In memory only:
    started_monotonic: float = 0.0
    next_start: float = 0.0
    kill_deadline: float | None = None
    kill_reason: str = ""
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    probes: dict[str, ProbeState] = field(default_factory=dict, repr=False)

    PERSISTED = ("name", "restart_count", "pid", "start_ticks", "started_at", "succeeded_once")

    def to_json(self) -> Obj:
        record = {key: getattr(self, key) for key in self.PERSISTED}
        record["last_termination"] = asdict(self.last_termination) if self.last_termination else None
        record["termination"] = asdict(self.termination) if self.termination else None
        return record

    @classmethod
    def from_json(cls, record: Obj) -> ContainerRun:
        run = cls(**{key: record[key] for key in cls.PERSISTED})
        for key in ("last_termination", "termination"):
            if record.get(key):
                setattr(run, key, Termination(**record[key]))
        if run.pid is not None:
            run.waiting = None
            run.started_monotonic = time.monotonic()
        return run

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(
        self,
        netns: str,
        directory: Path,
        log: Path,
        argv: Sequence[str],
        env: dict[str, str],
        mounts: Sequence[Mount],
        hostname: str,
        workdir: str,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        exit_file, started_file = directory / "exit", directory / "started"
        exit_file.unlink(missing_ok=True)
        started_file.unlink(missing_ok=True)
        spec = {
            "argv": list(argv),
            "env": env,
            "mounts": [[m.source, m.target, m.read_only] for m in mounts],
            "hostname": hostname,
            "workdir": workdir or "/",
            "exit_file": str(exit_file),
            "started_file": str(started_file),
        }
        spec_file = directory / "spec.json"
        spec_file.write_text(json.dumps(spec))
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [
            "ip",
            "netns",
            "exec",
            netns,
            "unshare",
            "--uts",
            sys.executable,
            str(SHIM),
            str(spec_file),
        ]
        with log.open("ab") as output:
            self.popen = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = self.popen.pid
        # Running means the volumes are mounted and the program started, as on a real node.
        deadline = time.monotonic() + SHIM_START_SECONDS
        while not started_file.exists() and self.popen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        self.start_ticks = process_start_ticks(self.pid)
        self.started_at = now_rfc3339()
        self.started_monotonic = time.monotonic()
        self.waiting = None
        self.termination = None
        self.kill_deadline = None
        self.kill_reason = ""
        self.probes = {}

    def poll(self, directory: Path) -> Termination | None:
        """If the process has ended: record and return how."""
        if self.pid is None:
            return None
        if self.popen is not None:
            code = self.popen.poll()
            if code is None:
                return None
        elif process_start_ticks(self.pid) == self.start_ticks:
            return None  # adopted from a previous kubelet and still running
        else:
            code = None
        exit_file = directory / "exit"
        if exit_file.exists() and exit_file.read_text().strip().lstrip("-").isdigit():
            exit_code = int(exit_file.read_text())
            reason = "Completed" if exit_code == 0 else "Error"
        elif code is not None:
            exit_code = 128 - code if code < 0 else code
            reason = "Error"
        else:
            exit_code, reason = UNKNOWN_EXIT, "ContainerStatusUnknown"
        if self.kill_reason and exit_code != 0:
            reason = self.kill_reason if reason == "Error" else reason
        ended = Termination(exit_code, reason, self.started_at or now_rfc3339(), now_rfc3339())
        self.pid = self.start_ticks = None
        self.popen = None
        self.termination = ended
        if exit_code == 0:
            self.succeeded_once = True
        return ended

    def signal(self, sig: signal.Signals) -> None:
        if self.pid is None:
            return
        if self.popen is None and process_start_ticks(self.pid) != self.start_ticks:
            return  # not ours any more
        kill_group(self.pid, sig)

    def stop(self, grace: float, reason: str = "") -> None:
        """SIGTERM now, SIGKILL once `grace` has passed (see `enforce_deadline`)."""
        if self.pid is None or self.kill_deadline is not None:
            return
        self.kill_reason = reason
        self.signal(signal.SIGTERM)
        self.kill_deadline = time.monotonic() + grace

    def enforce_deadline(self) -> None:
        if self.kill_deadline is not None and time.monotonic() >= self.kill_deadline:
            self.signal(signal.SIGKILL)

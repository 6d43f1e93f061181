"""Histories of key-value operations and the porcupine linearizability checker (tools/porcupine).

A History records each operation's call and return on one monotonic clock; `check` writes it in the
format porcupine-check reads and returns the checker's verdict. Operations whose outcome is not
known (timeouts, lost connections) are recorded as such: the checker lets them take effect at any
time after their call, or never.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_REPOSITORY = Path(__file__).resolve().parents[3]
_BUILD = _REPOSITORY / "tools" / "porcupine" / "build.sh"
_checker: Path | None = None


def checker_program() -> Path:
    """porcupine-check, built once per version and source (cached); skips (fails in CI) without Go."""
    global _checker
    if _checker is None:
        try:
            built = subprocess.run([str(_BUILD)], capture_output=True, text=True, timeout=600, check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            reason = f"cannot build porcupine-check: {error}"
            if os.environ.get("PETCD_REQUIRE_ALL_IMPLEMENTATIONS"):
                pytest.fail(reason)
            pytest.skip(reason)
        _checker = Path(built.stdout.strip()) / "porcupine-check"
    return _checker


@dataclass
class Pending:
    """An operation that has been called and not yet returned."""

    history: History
    client: int
    call: int
    input: dict[str, Any]

    def returned(self, **output: Any) -> None:
        self.history.record(self, output)

    def unknown(self) -> None:
        """The client cannot tell whether the operation took effect."""
        self.history.record(self, {"unknown": True})


@dataclass
class History:
    operations: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, client: int, op: str, key: str, **arguments: Any) -> Pending:
        return Pending(self, client, time.monotonic_ns(), {"op": op, "key": key, **arguments})

    def record(self, pending: Pending, output: dict[str, Any]) -> None:
        done = time.monotonic_ns()
        with self._lock:
            self.operations.append(
                {
                    "client": pending.client,
                    "call": pending.call,
                    "return": done,
                    "input": pending.input,
                    "output": output,
                }
            )

    def to_json(self) -> str:
        with self._lock:
            return json.dumps({"operations": self.operations})


@dataclass(frozen=True)
class Verdict:
    result: str  # "ok", "illegal" or "unknown"
    operations: int
    keys: int
    visualization: Path


def check(history: History | str, workdir: Path, timeout: str = "60s") -> Verdict:
    """porcupine's verdict on `history` (a History or its JSON); the HTML visualisation is kept in
    `workdir` for a human to look at when a check fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "history.json"
    path.write_text(history if isinstance(history, str) else history.to_json())
    visualization = workdir / "linearizability.html"
    argv = [str(checker_program()), "-timeout", timeout, "-visualize", str(visualization), str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode not in (0, 1) and not done.stdout.strip():
        raise RuntimeError(f"porcupine-check failed ({done.returncode}): {done.stderr}")
    summary = json.loads(done.stdout)
    return Verdict(summary["result"], summary["operations"], summary["keys"], visualization)

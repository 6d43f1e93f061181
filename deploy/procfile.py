"""Run the processes of a Procfile in the foreground, each line of their output prefixed with its
name; Ctrl-C (or SIGTERM) stops them all. Used by `make cluster` with deploy/Procfile.

    python3 deploy/procfile.py [Procfile]

As foreman does: when one process ends by itself, the others are stopped too, and the exit status
is the first non-zero status seen (0 after a clean Ctrl-C). Each process runs in a process group of
its own, so stopping reaches anything it started; a process that ignores SIGTERM for
STOP_GRACE_SECONDS is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

STOP_GRACE_SECONDS = 10.0
_ENTRY = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


@dataclass(frozen=True)
class Entry:
    name: str
    command: str


def parse_procfile(text: str) -> list[Entry]:
    """`name: command` lines; blank lines and `#` comments skipped. ValueError on anything else
    or on a name used twice."""
    entries: list[Entry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENTRY.match(stripped)
        if match is None:
            raise ValueError(f"Procfile line {number}: expected `name: command`, got {stripped!r}")
        if any(entry.name == match.group(1) for entry in entries):
            raise ValueError(f"Procfile line {number}: {match.group(1)!r} is defined twice")
        entries.append(Entry(match.group(1), match.group(2)))
    return entries


def prefix(name: str, width: int) -> str:
    """The column in front of each output line: the name, padded so that the lines align."""
    return f"{name.ljust(width)} | "


class Launcher:
    """The running processes of one Procfile."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.width = max(len(entry.name) for entry in entries)
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.stopping = asyncio.Event()
        self.status = 0

    def say(self, name: str, text: str) -> None:
        sys.stdout.write(prefix(name, self.width) + text + "\n")
        sys.stdout.flush()

    async def start(self, entry: Entry) -> None:
        # bash runs a single command by exec'ing it, so a process group's leader is the program
        # itself and its exit status is the program's (sh would stay in between and die of SIGTERM).
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", entry.command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True, limit=1 << 20)
        self.processes[entry.name] = process
        self.say(entry.name, f"started with pid {process.pid}: {entry.command}")

    async def relay(self, name: str) -> None:
        """Copy the process's output line by line until it ends, then report its status."""
        process = self.processes[name]
        assert process.stdout is not None
        async for raw in process.stdout:
            self.say(name, raw.decode(errors="replace").rstrip("\n"))
        code = await process.wait()
        self.say(name, f"exited with status {code}")
        if not self.stopping.is_set():
            self.status = self.status or code or 1  # ending by itself is a failure even with 0
            self.stopping.set()

    def signal_all(self, signum: int) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signum)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stopping.set)
        for entry in self.entries:
            await self.start(entry)
        relays = [asyncio.create_task(self.relay(entry.name)) for entry in self.entries]
        await self.stopping.wait()
        self.signal_all(signal.SIGTERM)
        _, pending = await asyncio.wait(relays, timeout=STOP_GRACE_SECONDS)
        if pending:
            self.signal_all(signal.SIGKILL)
            await asyncio.wait(pending)
        return self.status


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "Procfile")
    try:
        entries = parse_procfile(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"procfile: {exc}", file=sys.stderr)
        return 2
    if not entries:
        print(f"procfile: {path} names no process", file=sys.stderr)
        return 2
    return asyncio.run(Launcher(entries).run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""CPU time and peak resident memory of a member's processes, from /proc (Linux).

A member is a process group (the harness starts each member in a session of its own), so a
member that forks helpers is still counted whole.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Writing 5 to /proc/<pid>/clear_refs resets the peak RSS (VmHWM) to the current RSS (Linux 4.0+).
_RESET_PEAK_RSS = "5"


@dataclass(frozen=True)
class ProcStat:
    pgrp: int
    cpu_seconds: float  # user + system, all threads


def parse_stat(text: str, clock_ticks: int = CLOCK_TICKS) -> ProcStat:
    """The fields of /proc/<pid>/stat we use. The command name is in parentheses and may itself
    contain spaces and parentheses, so fields are counted from the last ')'."""
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state) of proc(5): pgrp is field 5, utime 14, stime 15.
    utime, stime = int(fields[11]), int(fields[12])
    return ProcStat(pgrp=int(fields[2]), cpu_seconds=(utime + stime) / clock_ticks)


def parse_status_kib(text: str, name: str) -> int:
    """A `Name:   1234 kB` line of /proc/<pid>/status, in KiB (0 when absent, e.g. a zombie)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0])
    return 0


def group_pids(pgid: int, proc: Path = PROC) -> list[int]:
    """The live processes of process group `pgid`."""
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if stat.pgrp == pgid:
            pids.append(int(entry.name))
    return pids


def group_cpu_seconds(pgid: int, proc: Path = PROC) -> float:
    total = 0.0
    for pid in group_pids(pgid, proc):
        with contextlib.suppress(OSError):
            total += parse_stat((proc / str(pid) / "stat").read_text()).cpu_seconds
    return total


def group_memory_kib(pgid: int, field: str, proc: Path = PROC) -> int:
    """The sum of one /proc/<pid>/status field (VmHWM: peak RSS, VmRSS: now) over the group."""
    total = 0
    for pid in group_pids(pgid, proc):
        with contextlib.suppress(OSError):
            total += parse_status_kib((proc / str(pid) / "status").read_text(), field)
    return total


def reset_group_peak_rss(pgid: int, proc: Path = PROC) -> None:
    """Start a new peak-RSS window for every process of the group (needs to own them, or root)."""
    for pid in group_pids(pgid, proc):
        with contextlib.suppress(OSError):
            (proc / str(pid) / "clear_refs").write_text(_RESET_PEAK_RSS)


def thread_cpu_seconds(pid: int, proc: Path = PROC) -> dict[int, tuple[str, float]]:
    """Thread id -> (name from /proc/<pid>/task/<tid>/comm, CPU seconds) for every thread of `pid`."""
    threads: dict[int, tuple[str, float]] = {}
    for task in (proc / str(pid) / "task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            name = (task / "comm").read_text().strip()
            threads[int(task.name)] = (name, parse_stat((task / "stat").read_text()).cpu_seconds)
    return threads

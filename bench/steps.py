"""One step: run etcd's benchmark tool once against one target and measure the target's members."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from bench import procstat
from bench.report import NoReport, Report, parse_report
from bench.results import Measurement
from bench.targets import BENCHMARK, Target, child_environment
from bench.workloads import Workload


@dataclass(frozen=True)
class Usage:
    """CPU seconds so far per member process group."""

    cpu: tuple[float, ...]

    @staticmethod
    def now(target: Target) -> Usage:
        return Usage(tuple(procstat.group_cpu_seconds(g) for g in target.process_groups))

    def since(self, before: Usage) -> float:
        return sum(after - start for after, start in zip(self.cpu, before.cpu, strict=True))


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


Outcome = tuple[Report | None, str | None]  # the report, or why there is none


def while_measuring(target: Target, action: Callable[[], Outcome]) -> Measurement:
    """Run `action` and measure the target's members meanwhile: CPU, and each member's peak RSS
    within the action (the peak is reset first)."""
    for group in target.process_groups:
        procstat.reset_group_peak_rss(group)
    load1 = os.getloadavg()[0]
    before = Usage.now(target)
    report, problem = action()
    cpu = Usage.now(target).since(before)
    peaks = tuple(procstat.group_memory_kib(g, "VmHWM") for g in target.process_groups)
    return Measurement(report, problem, cpu, peaks, load1)


def run_tool(argv: list[str], timeout: float) -> Outcome:
    """etcd's benchmark tool, stopped after `timeout` seconds; its report or what went wrong."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              env=child_environment({}))
        output = done.stdout
        problem = f"exit {done.returncode}: {tail(done.stderr)}" if done.returncode else None
    except subprocess.TimeoutExpired as expired:
        partial = expired.stdout or ""
        output = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        problem = f"stopped after {timeout:.0f} s"
    if problem is not None:
        return None, problem
    try:
        return parse_report(output), None
    except NoReport as exc:
        return None, f"{exc}: {tail(output)}"


def measure(target: Target, workload: Workload, timeout: float, program: str = str(BENCHMARK)) -> Measurement:
    """Run `workload` against `target` (at most `timeout` seconds); the members' CPU and peak RSS."""
    argv = workload.argv(program, target.endpoints)
    return while_measuring(target, lambda: run_tool(argv, timeout))

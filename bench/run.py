"""`make bench`: etcd's benchmark tool against a 3-member etcd 3.4 cluster and a 3-member petcd
cluster, row by row, then the no-op gRPC ceiling and the memory after the fill. Prints the table and
keeps it (and the raw measurements as JSON) in bench/results/.

Environment: BENCH_QUICK=1 (about 2 minutes instead of 10), BENCH_BASELINE (default etcd34, or
etcd35), BENCH_CANDIDATE (default petcd), BENCH_KEEP=1 keeps the members' data dirs and logs.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from bench import procstat, readme, workloads
from bench.fill import fill
from bench.report import Report
from bench.results import Measurement, Memory, Row, Run, to_json
from bench.steps import Outcome, Usage, measure, while_measuring
from bench.table import render
from bench.targets import IMPLEMENTATIONS, REPOSITORY, Sandbox, Target, noop_server, ready, start_cluster

RESULTS = Path(__file__).resolve().parent / "results"
# Wall-clock budgets: a step that runs past its own bound is stopped and reported; once the run's
# budget is spent the remaining steps are skipped (and say so) instead of overrunning.
STEP_SECONDS = {"full": 180.0, "quick": 45.0}
RUN_SECONDS = {"full": 570.0, "quick": 110.0}
IDLE_SECONDS = {"full": 5.0, "quick": 2.0}


def versions(baseline: str, candidate: str) -> dict[str, str]:
    found = {name: IMPLEMENTATIONS[name].etcd_version or "" for name in (baseline, candidate)}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPOSITORY, capture_output=True,
                            text=True, check=False).stdout.strip()
    if "petcd" in found:
        found["petcd"] = f"commit {commit}" if commit else "working tree"
    found["python"] = platform.python_version()
    found["grpcio"] = importlib.metadata.version("grpcio")
    found["benchmark tool"] = IMPLEMENTATIONS["etcd35"].etcd_version or ""
    return {k: v for k, v in found.items() if v}


_STARTED = time.monotonic()


def say(text: str) -> None:
    """Progress on stderr, with the seconds since the start."""
    print(f"[{time.monotonic() - _STARTED:5.0f} s] {text}", file=sys.stderr, flush=True)


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def spent(self) -> bool:
        return time.monotonic() > self.deadline


def step(target: Target, workload: workloads.Workload, mode: str, budget: Budget) -> Measurement:
    if budget.spent():
        return Measurement(None, "skipped: the run's time budget was spent")
    measured = measure(target, workload, STEP_SECONDS[mode])
    rate = f"{measured.report.requests_per_second:,.0f}/s" if measured.report else measured.error
    say(f"  {workload.name:<40} {target.name:<7} {rate}")
    return measured


def idle_cpu(target: Target, seconds: float) -> float:
    before = Usage.now(target)
    time.sleep(seconds)
    return Usage.now(target).since(before) / seconds


def measure_fill(target: Target, timeout: float) -> Measurement:
    """bench.fill through the leader, measured like a step (its rate is keys per second)."""
    assert target.cluster is not None
    leader = target.cluster.leader()
    endpoint = f"{leader.address.host}:{leader.address.client_port}"

    def write_keys() -> Outcome:
        try:
            seconds = fill(endpoint, workloads.KEY_SPACE, workloads.VALUE_SIZE, timeout)
        except (grpc.RpcError, grpc.FutureTimeoutError) as exc:
            return None, f"fill failed: {exc!r}"
        return Report(seconds, workloads.KEY_SPACE / seconds), None

    return while_measuring(target, write_keys)


def memory_after_fill(target: Target, fill: Measurement) -> Memory:
    """RSS now (all, and anonymous only), and each member's peak RSS during the fill."""
    rss = tuple(procstat.group_memory_kib(g, "VmRSS") for g in target.process_groups)
    anon = tuple(procstat.group_memory_kib(g, "RssAnon") for g in target.process_groups)
    return Memory(rss, tuple(max(p, f) for p, f in zip(rss, fill.peak_rss_kib, strict=True)), fill, anon)


def stop(target: Target) -> None:
    if target.cluster is not None:
        for member in target.cluster.members:
            member.kill()


def benchmark(mode: str, baseline: str, candidate: str, sandbox: Sandbox,
              on_step: Callable[[Target, workloads.Workload], None] | None = None) -> Run:
    rows_plan, ceiling_plan = workloads.plan(quick=mode == "quick")
    run = Run(
        started=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        mode=mode, baseline=baseline, candidate=candidate, versions=versions(baseline, candidate),
        cores=os.cpu_count() or 0, load_start=os.getloadavg(), fill_workload=workloads.FILL_NAME,
    )
    budget = Budget(RUN_SECONDS[mode])
    say(f"starting {baseline} and {candidate} clusters")
    # Both start at once (petcd's start-up is seconds of imports on a busy machine).
    targets = [ready(c) for c in [start_cluster(sandbox, baseline), start_cluster(sandbox, candidate)]]
    say("clusters ready")
    for target in targets:
        run.idle_cpu_seconds_per_second[target.name] = idle_cpu(target, IDLE_SECONDS[mode])
    for workload in rows_plan:
        row = Row(workload.name, " ".join(workload.arguments))
        for target in targets:
            if on_step is not None:
                on_step(target, workload)
            row.results[target.name] = step(target, workload, mode, budget)
        run.rows.append(row)
    noop, process = noop_server(sandbox.log_dir)
    try:
        for workload, beside in ceiling_plan:
            run.ceiling.append(Row(workload.name, " ".join(workload.arguments),
                                   {noop.name: step(noop, workload, mode, budget)}, beside))
    finally:
        process.kill()
    # Memory on fresh clusters, so that it is the 100k keys' and not the rows' history as well. The
    # fill is never skipped: the memory target needs it, and it is bounded by its own timeout.
    for target in targets:
        stop(target)
    say("starting fresh clusters for the memory reading")
    for target in [ready(c) for c in [start_cluster(sandbox, baseline), start_cluster(sandbox, candidate)]]:
        filled = measure_fill(target, STEP_SECONDS[mode])
        say(f"  {workloads.FILL_NAME:<40} {target.name:<7} {filled.error or 'done'}")
        run.memory[target.name] = memory_after_fill(target, filled)
    return dataclasses.replace(run, load_end=os.getloadavg())


def write(run: Run, directory: Path = RESULTS) -> Path:
    stamp = run.started.replace(" UTC", "").replace(" ", "-").replace(":", "")
    stem = f"{stamp}-quick" if run.mode == "quick" else stamp
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / f"{stem}.md"
    markdown.write_text(render(run))
    (directory / f"{stem}.json").write_text(to_json(run))
    return markdown


def main() -> int:
    mode = "quick" if os.environ.get("BENCH_QUICK") else "full"
    baseline = os.environ.get("BENCH_BASELINE", "etcd34")
    candidate = os.environ.get("BENCH_CANDIDATE", "petcd")
    sandbox = Sandbox(Path(tempfile.mkdtemp(prefix="petcd-bench-")))
    try:
        run = benchmark(mode, baseline, candidate, sandbox)
    finally:
        sandbox.close()
        if not os.environ.get("BENCH_KEEP"):
            sandbox.discard()
        else:
            print(f"data dirs and logs kept in {sandbox.root}", file=sys.stderr)
    markdown = write(run)
    if mode == "full":
        readme.show_latest(markdown)
    print(markdown.read_text())
    print(f"written to {markdown.relative_to(REPOSITORY)}", file=sys.stderr)
    return 0

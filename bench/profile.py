"""python3 -m bench.profile: where petcd's time goes under etcd's benchmark put with 64 clients to the
leader. Every member of a fresh 3-member cluster is sampled by py-spy (Python frames; with
BENCH_PROFILE_NATIVE=1 C frames too) while /proc gives each thread's CPU time. Writes
results/profile-<date>-<time>/: summary.md and each member's collapsed stacks (gzip, for flame graphs).

BENCH_PROFILE_TOTAL sets the number of puts (default 6000).
"""

from __future__ import annotations

import datetime
import gzip
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import flame, procstat, workloads
from bench.results import Measurement
from bench.run import RESULTS, say
from bench.steps import measure
from bench.table import fmt_cpu, fmt_latencies, fmt_ops
from bench.targets import Member, Sandbox, Target, ready, start_cluster

SAMPLES_PER_SECOND = 100
STEP_SECONDS = 300.0


@dataclass(frozen=True)
class MemberProfile:
    name: str
    role: str
    thread_cpu: dict[str, float]  # CPU seconds per thread name during the load
    stacks: list[flame.Stack]
    raw: str


Threads = dict[int, tuple[str, float]]


def thread_cpu_delta(before: Threads, after: Threads, python_names: dict[int, str]) -> dict[str, float]:
    """CPU seconds per thread during the load, named as Python names it (else by its kernel name)."""
    deltas: dict[str, float] = {}
    for tid, (comm, cpu) in after.items():
        delta = cpu - before.get(tid, (comm, 0.0))[1]
        if delta > 0:
            name = python_names.get(tid, comm)
            deltas[name] = deltas.get(name, 0.0) + delta
    return deltas


def pct(part: int | float, whole: int | float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


def member_section(p: MemberProfile, puts: int) -> list[str]:
    samples = flame.total(p.stacks)
    cpu = sum(p.thread_cpu.values())
    out = [f"### {p.name} ({p.role})", "",
           f"CPU during the load: {cpu:.1f} s ({cpu / puts * 1000:.2f} s per 1,000 puts); "
           f"py-spy samples: {samples:,} at {SAMPLES_PER_SECOND}/s.", "",
           "| thread | CPU s | share |", "|---|---|---|"]
    out += [f"| {name} | {sec:.2f} | {pct(sec, cpu)} |"
            for name, sec in sorted(p.thread_cpu.items(), key=lambda kv: -kv[1]) if sec >= 0.01]
    out += ["", "| samples per Python thread | samples | share |", "|---|---|---|"]
    out += [f"| {name} | {n:,} | {pct(n, samples)} |" for name, n in flame.by_thread(p.stacks).most_common()]
    out += ["", "| layer (inclusive: a sample counts in each layer on its stack) | samples | share |",
            "|---|---|---|"]
    out += [f"| {name} | {n:,} | {pct(n, samples)} |" for name, n in flame.inclusive(p.stacks).items()]
    loop_c = flame.loop_c_samples(p.stacks)
    out += [f"| event loop in C (uvloop + grpc.aio Cython; no Python frame), self | {loop_c:,} | "
            f"{pct(loop_c, samples)} |"]
    out += [f"| {name}, self | {n:,} | {pct(n, samples)} |" for name, n in flame.self_kinds(p.stacks).items()]
    out += ["", "| top self frames | samples | share |", "|---|---|---|"]
    top = flame.leaf_counts(p.stacks).most_common(20)
    out += [f"| `{frame}` | {n:,} | {pct(n, samples)} |" for frame, n in top]
    return [*out, ""]


def summary(stamp: str, load: Sequence[float], m: Measurement, profiles: Sequence[MemberProfile],
            workload: workloads.Workload, native: bool) -> str:
    puts = m.report.operations if m.report else 0
    out = [f"# Profile of petcd under {workload.name} — {stamp}", "",
           f"- Load average at the start: {', '.join(f'{x:.2f}' for x in load)}; {os.cpu_count()} cores.",
           f"- `benchmark {' '.join(workload.arguments)}` while py-spy sampled every member "
           f"(`py-spy record {' '.join(py_spy_options(native))}`).",
           f"- Result under profiling: {fmt_ops(m)} puts/s, p50 / p99 {fmt_latencies(m)} ms, "
           f"{fmt_cpu(m)} CPU s per 1,000 puts over the three members.", ""]
    for p in profiles:
        out += member_section(p, max(puts, 1))
    return "\n".join(out)


def py_spy_options(native: bool) -> list[str]:
    # --gil: only the thread holding the GIL is sampled, so a thread blocked in fdatasync or in
    # grpc's completion queue (GIL released) does not count as busy; C frames need --native.
    # py-spy refuses --native with --nonblocking: native stacks need the process paused per sample.
    mode = ["--native"] if native else ["--nonblocking", "--gil"]
    return ["--format", "raw", "--threads", "--nolineno", "--rate", str(SAMPLES_PER_SECOND), *mode]


def py_spy(pid: int, output: Path, native: bool) -> subprocess.Popen[bytes]:
    argv = ["py-spy", "record", "--pid", str(pid), *py_spy_options(native), "--output", str(output)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(recorder: subprocess.Popen[bytes]) -> None:
    """py-spy writes its file when interrupted."""
    recorder.send_signal(signal.SIGINT)
    try:
        recorder.wait(timeout=60)
    except subprocess.TimeoutExpired:
        recorder.kill()
        recorder.wait(timeout=10)


def profile(target: Target, leader: Member, workload: workloads.Workload, workdir: Path,
            native: bool) -> tuple[Measurement, list[MemberProfile]]:
    assert target.cluster is not None
    members = sorted(target.cluster.members, key=lambda m: m is not leader)
    pids = [m.process.pid for m in members if m.process is not None]
    before = [procstat.thread_cpu_seconds(pid) for pid in pids]
    recorders = [py_spy(pid, workdir / f"{m.name}.txt", native) for pid, m in zip(pids, members, strict=True)]
    try:
        measured = measure(target, workload, STEP_SECONDS)
    finally:
        for recorder in recorders:
            stop(recorder)
    profiles = []
    for pid, member, start in zip(pids, members, before, strict=True):
        raw_path = workdir / f"{member.name}.txt"
        raw = raw_path.read_text() if raw_path.exists() else ""
        role = "leader" if member is leader else "follower"
        stacks = flame.parse_collapsed(raw)
        cpu = thread_cpu_delta(start, procstat.thread_cpu_seconds(pid), flame.thread_names(stacks))
        profiles.append(MemberProfile(member.name, role, cpu, stacks, raw))
    return measured, profiles


def main() -> int:
    if shutil.which("py-spy") is None:
        print("py-spy not found: python3 -m pip install py-spy", file=sys.stderr)
        return 2
    total = int(os.environ.get("BENCH_PROFILE_TOTAL", "6000"))
    native = bool(os.environ.get("BENCH_PROFILE_NATIVE"))
    workload = workloads.Workload(workloads.PUT_64.name, workloads.PUT_64.command, workloads.PUT_64.clients,
                                  total, target_leader=True)
    now = datetime.datetime.now(datetime.UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    sandbox = Sandbox(Path(tempfile.mkdtemp(prefix="petcd-profile-")))
    try:
        target = ready(start_cluster(sandbox, "petcd"))
        assert target.cluster is not None
        leader = target.cluster.leader()
        say("cluster ready; warming up")
        measure(target, workloads.PUT_64.scaled(8), STEP_SECONDS)
        say(f"profiling {total} puts")
        measured, profiles = profile(target, leader, workload, sandbox.root, native)
    finally:
        sandbox.close()
        sandbox.discard()
    out = RESULTS / f"profile-{now.strftime('%Y-%m-%d-%H%M')}{'-native' if native else ''}"
    out.mkdir(parents=True, exist_ok=True)
    for p in profiles:
        with gzip.open(out / f"{p.name}-{p.role}.collapsed.gz", "wt") as f:
            f.write(p.raw)
    text = summary(stamp, load, measured, profiles, workload, native)
    (out / "summary.md").write_text(text)
    print(text)
    say(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

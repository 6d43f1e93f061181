"""The Markdown a run is reported as: petcd beside etcd with their ratio per row, the no-op gRPC
ceiling, memory after the fill, and the issue's targets met or not."""

from __future__ import annotations

from collections.abc import Sequence

from bench import workloads
from bench.results import MIB, Measurement, Run

NOOP = "noop"
DASH = "–"


def ratio(candidate: float | None, baseline: float | None) -> float | None:
    """candidate / baseline, None when either is missing or the baseline is zero."""
    if candidate is None or baseline is None or baseline == 0:
        return None
    return candidate / baseline


def ops(m: Measurement | None) -> float | None:
    return None if m is None or m.report is None else m.report.requests_per_second


def latency(m: Measurement | None, p: float) -> float | None:
    return None if m is None or m.report is None else m.report.percentile(p)


def fmt_ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def fmt_ops(m: Measurement | None) -> str:
    if m is None:
        return DASH
    if m.report is None:
        return f"failed: {m.error}" if m.error else "failed"
    text = f"{m.report.requests_per_second:,.0f}"
    errors = sum(m.report.errors.values())
    return f"{text} ({errors:,} errors)" if errors else text


def describe_errors(m: Measurement) -> str:
    """Why a step failed, or the errors the tool counted; empty when there were none."""
    if m.error:
        return m.error
    counted = m.report.errors if m.report else {}
    return "; ".join(f"{n}× {e}" for e, n in counted.items())


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    ms = seconds * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def fmt_latencies(m: Measurement | None) -> str:
    return f"{fmt_ms(latency(m, 50))} / {fmt_ms(latency(m, 99))}"


def fmt_cpu(m: Measurement | None) -> str:
    value = None if m is None else m.cpu_seconds_per_1000
    return DASH if value is None else f"{value:.2f}"


def fmt_mib(kib: Sequence[int]) -> str:
    return "/".join(f"{k / MIB:.0f}" for k in kib) if kib else DASH


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return out


def side_by_side(run: Run) -> list[str]:
    b, c = run.baseline, run.candidate
    header = [
        "workload", f"{b} ops/s", f"{c} ops/s", f"**{c}/{b}**",
        f"{b} p50 / p99 ms", f"{c} p50 / p99 ms", "p99 ratio",
        f"{b} CPU s/1k ops", f"{c} CPU s/1k ops", f"{b} peak RSS MiB", f"{c} peak RSS MiB",
    ]
    lines = []
    for row in run.rows:
        base, cand = row.results.get(b), row.results.get(c)
        lines.append([
            row.workload, fmt_ops(base), fmt_ops(cand), f"**{fmt_ratio(ratio(ops(cand), ops(base)))}**",
            fmt_latencies(base), fmt_latencies(cand), fmt_ratio(ratio(latency(cand, 99), latency(base, 99))),
            fmt_cpu(base), fmt_cpu(cand),
            fmt_mib(base.peak_rss_kib if base else ()), fmt_mib(cand.peak_rss_kib if cand else ()),
        ])
    return _table(header, lines)


def ceiling(run: Run) -> list[str]:
    """The no-op server's rows, each beside the candidate's row it names (a put with as many clients)."""
    c = run.candidate
    by_name = {row.workload: row.results for row in run.rows}
    header = ["workload", "no-op ops/s", "no-op p50 / p99 ms", "no-op CPU s/1k ops", f"{c}: row beside",
              f"{c} ops/s", f"**{c}/no-op**"]
    lines = []
    for row in run.ceiling:
        noop, cand = row.results.get(NOOP), by_name.get(row.beside, {}).get(c)
        lines.append([row.workload, fmt_ops(noop), fmt_latencies(noop), fmt_cpu(noop), row.beside or DASH,
                      fmt_ops(cand), f"**{fmt_ratio(ratio(ops(cand), ops(noop)))}**"])
    return _table(header, lines)


def memory(run: Run) -> list[str]:
    header = ["implementation", "RSS now, per member (MiB)", "of which anonymous (not file-backed)",
              "peak RSS during the fill, per member (MiB)", "fill keys/s", "fill CPU s/1k keys"]
    lines = [[name, fmt_mib(m.rss_kib), fmt_mib(m.anon_rss_kib), fmt_mib(m.peak_rss_kib), fmt_ops(m.fill),
              fmt_cpu(m.fill)] for name, m in run.memory.items()]
    return _table(header, lines)


Target = tuple[str, str, bool | None]


def targets(run: Run) -> list[Target]:
    """The issue's targets: (target, what was measured, met — None when not measured)."""
    b, c = run.baseline, run.candidate
    by_name = {row.workload: row.results for row in run.rows}

    def measured(what: str, value: float | None, met: bool) -> Target:
        return (what, fmt_ratio(value), None if value is None else met)

    found: list[Target] = []
    for name, floor in ((workloads.PUT_64.name, 0.5), (workloads.PUT_256.name, 0.5),
                        (workloads.PUT_1.name, 0.8), (workloads.RANGE_L_64.name, 0.5)):
        results = by_name.get(name, {})
        value = ratio(ops(results.get(c)), ops(results.get(b)))
        found.append(measured(f"{name}: throughput ratio ≥ {floor}", value, (value or 0) >= floor))
    one = by_name.get(workloads.PUT_1.name, {})
    p99 = ratio(latency(one.get(c), 99), latency(one.get(b), 99))
    found.append(measured(f"{workloads.PUT_1.name}: p99 latency ratio ≤ 2", p99, (p99 or 3) <= 2))
    memory_target = f"{c} peak RSS per member after the fill ≤ 150 MB"
    mem = run.memory.get(c)
    if mem is None or not mem.peak_rss_kib:
        found.append((memory_target, DASH, None))
    else:
        worst = max(mem.peak_rss_kib) * 1024 / 1e6
        found.append((memory_target, f"{worst:.0f} MB", worst <= 150))
    puts = [ops(r.results.get(c)) or 0.0 for r in run.rows if r.workload.startswith("put,")]
    best = max(puts, default=0.0)
    stretch = f"stretch: {c} 10,000 puts/s on 3 members"
    found.append((stretch, f"{best:,.0f}/s", best >= 10_000 if best else None))
    return found


def render(run: Run) -> str:
    load = ", ".join(f"{x:.2f}" for x in run.load_start)
    load_end = ", ".join(f"{x:.2f}" for x in run.load_end)
    versions = ", ".join(f"{k} {v}" for k, v in run.versions.items())
    out = [
        f"# petcd beside etcd — {run.started} ({run.mode} run)",
        "",
        f"- Load average (1, 5, 15 min) at the start: {load}; at the end: {load_end}; {run.cores} cores, "
        "shared with whatever else was running: absolute numbers move, ratios are what count.",
        f"- Versions: {versions}.",
        "- Every row is etcd's own `benchmark` tool with the same arguments against each 3-member cluster "
        "on loopback, one implementation right after the other. CPU s/1k ops is the members' user+system "
        "CPU summed over the three members; peak RSS is each member's peak within that step.",
    ]
    if run.idle_cpu_seconds_per_second:
        idle = ", ".join(f"{k} {v:.3f}" for k, v in run.idle_cpu_seconds_per_second.items())
        out.append(f"- Idle cluster CPU (s per s, all three members), measured before the first row: {idle}.")
    out += ["", f"## {run.candidate} / {run.baseline}", "", *side_by_side(run)]
    if run.ceiling:
        out += ["", "## Ceiling: a no-op Python gRPC server (grpc.aio on uvloop, Put returns at once)", "",
                *ceiling(run)]
    if run.memory:
        out += ["", f"## Memory: fresh clusters, then {run.fill_workload} with 256-byte values", "",
                *memory(run)]
    out += ["", "## Targets (issue 9)", "", *_table(["target", "measured", "met"],
            [[t, v, DASH if ok is None else ("yes" if ok else "no")] for t, v, ok in targets(run)])]
    out += ["", "## Arguments", ""]
    every_row = [*run.rows, *run.ceiling]
    out += [f"- {row.workload}: `benchmark --endpoints=… {row.arguments}`" for row in every_row]
    problems = [f"- {row.workload}, {name}: {problem}" for row in every_row
                for name, m in row.results.items() if (problem := describe_errors(m))]
    if problems:
        out += ["", "## Errors", "", *problems]
    return "\n".join(out) + "\n"

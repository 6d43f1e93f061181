"""bench: the workloads, the petcd/etcd ratios, the Markdown table, the JSON kept beside it and the
README's latest-results section."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: `bench` lives there

from bench import readme, table, workloads
from bench.report import Report
from bench.results import Measurement, Memory, Row, Run, from_json, to_json


def measured(rps: float, p50_ms: float, p99_ms: float, *, seconds: float = 2.0, cpu: float = 1.0,
             rss_mib: tuple[int, ...] = (40, 41, 42), errors: dict[str, int] | None = None) -> Measurement:
    report = Report(seconds, rps, {50.0: p50_ms / 1000, 99.0: p99_ms / 1000}, errors or {})
    return Measurement(report, None, cpu, tuple(m * 1024 for m in rss_mib), 3.5)


def sample_run() -> Run:
    run = Run("2026-11-24 22:00 UTC", "full", "etcd34", "petcd", {"etcd34": "3.4.23"}, 2, (16.0, 15.0, 14.0),
              (17.0, 15.5, 14.1), fill_workload=workloads.FILL_NAME)
    run.rows.append(Row(workloads.PUT_1.name, "--clients=1", {
        "etcd34": measured(1000, 0.8, 3.0, cpu=2.0), "petcd": measured(850, 1.0, 5.0, cpu=6.0)}))
    run.rows.append(Row(workloads.PUT_64.name, "--clients=64", {
        "etcd34": measured(10_000, 5, 20), "petcd": measured(4_000, 15, 90, errors={"EOF": 2})}))
    run.rows.append(Row(workloads.RANGE_L_64.name, "--clients=64", {
        "etcd34": measured(20_000, 2, 9),
        "petcd": Measurement(None, "stopped after 180 s", 12.0, (50, 50, 50), 4.0)}))
    run.ceiling.append(Row("put, 64 clients", "--clients=64", {table.NOOP: measured(8_000, 7, 30)},
                           beside=workloads.PUT_64.name))
    run.memory["petcd"] = Memory((120 * 1024,) * 3, (140 * 1024, 160 * 1024, 139 * 1024),
                                 measured(2_000, 20, 60, seconds=50.0), (90 * 1024,) * 3)
    return run


def test_same_arguments_for_every_implementation_but_the_endpoints() -> None:
    for workload in workloads.FULL:
        etcd = workload.argv("benchmark", ["127.0.0.2:2379", "127.0.0.3:2379"])
        petcd = workload.argv("benchmark", ["127.0.0.9:1234"])
        assert etcd[0] == petcd[0] == "benchmark"
        assert etcd[2:] == petcd[2:] == workload.arguments
        assert etcd[1] == "--endpoints=127.0.0.2:2379,127.0.0.3:2379"
        assert ("--target-leader" in workload.arguments) == workload.target_leader
        assert f"--total={workload.total}" in workload.arguments


def test_the_issue_workloads_are_all_there() -> None:
    names = [w.name for w in workloads.FULL]
    for clients in (1, 16, 64, 256):
        assert any(n.startswith(f"put, {clients} client") and n.endswith("leader") for n in names)
    for kind in ("range linearizable", "range serializable", "txn-put", "watch latency", "lease keep-alive"):
        assert any(n.startswith(kind) for n in names), kind
    puts = [w for w in workloads.FULL if w.command[0] in ("put", "txn-put")]
    assert all("--val-size=256" in w.command and "--key-space-size=100000" in w.command for w in puts)


def test_quick_plan_scales_totals_down_and_keeps_the_rows() -> None:
    rows, ceiling = workloads.plan(quick=True)
    assert [w.name for w in rows] == [w.name for w in workloads.FULL]
    for quick, full in zip(rows, workloads.FULL, strict=True):
        assert quick.total == max(100, full.total // workloads.QUICK_DIVISOR)
        assert quick.arguments[:-1] == full.arguments[:-1]
    assert all(beside in {w.name for w in rows} for _, beside in ceiling)


def test_connections_grow_with_clients() -> None:
    assert workloads.PUT_1.conns == 1
    assert workloads.PUT_64.conns == 8
    assert workloads.PUT_256.conns == 32


def test_ratio() -> None:
    assert table.ratio(850, 1000) == pytest.approx(0.85)
    assert table.ratio(None, 1000) is None
    assert table.ratio(5, 0) is None


def test_cpu_per_thousand_operations() -> None:
    m = measured(1000, 1, 2, seconds=2.0, cpu=3.0)  # 2,000 operations for 3 CPU seconds
    assert m.cpu_seconds_per_1000 == pytest.approx(1.5)
    assert Measurement(None, "failed").cpu_seconds_per_1000 is None


def test_side_by_side_rows_carry_the_ratio() -> None:
    lines = table.side_by_side(sample_run())
    put_1 = next(line for line in lines if line.startswith(f"| {workloads.PUT_1.name} |"))
    cells = [c.strip() for c in put_1.strip("|").split("|")]
    assert cells[1:4] == ["1,000", "850", "**0.85**"]
    assert cells[4:7] == ["0.80 / 3.00", "1.00 / 5.00", "1.67"]
    assert cells[7:9] == ["1.00", "3.53"]  # CPU s per 1,000 operations: 6 s for 850/s × 2 s
    assert cells[9] == "40/41/42"
    put_64 = next(line for line in lines if line.startswith(f"| {workloads.PUT_64.name} |"))
    assert "4,000 (2 errors)" in put_64 and "**0.40**" in put_64
    failed = next(line for line in lines if line.startswith(f"| {workloads.RANGE_L_64.name} |"))
    assert "failed: stopped after 180 s" in failed and "**–**" in failed


def test_ceiling_stands_beside_the_named_row() -> None:
    line = table.ceiling(sample_run())[-1]
    assert "8,000" in line and workloads.PUT_64.name in line and "**0.50**" in line


def test_targets() -> None:
    found = {target: (value, met) for target, value, met in table.targets(sample_run())}
    assert found[f"{workloads.PUT_1.name}: throughput ratio ≥ 0.8"] == ("0.85", True)
    assert found[f"{workloads.PUT_64.name}: throughput ratio ≥ 0.5"] == ("0.40", False)
    assert found[f"{workloads.PUT_256.name}: throughput ratio ≥ 0.5"] == ("–", None)  # not measured
    assert found[f"{workloads.RANGE_L_64.name}: throughput ratio ≥ 0.5"] == ("–", None)  # failed
    assert found[f"{workloads.PUT_1.name}: p99 latency ratio ≤ 2"] == ("1.67", True)
    assert found["petcd peak RSS per member after the fill ≤ 150 MB"] == ("168 MB", False)
    assert found["stretch: petcd 10,000 puts/s on 3 members"] == ("4,000/s", False)


def test_render_names_load_errors_and_arguments() -> None:
    text = table.render(sample_run())
    assert text.startswith("# petcd beside etcd — 2026-11-24 22:00 UTC (full run)")
    assert "16.00, 15.00, 14.00" in text and "17.00, 15.50, 14.10" in text
    assert "- put, 64 clients → leader, petcd: 2× EOF" in text
    assert "- range linearizable, 64 clients, petcd: stopped after 180 s" in text
    assert "`benchmark --endpoints=… --clients=64`" in text
    assert "| petcd | 120/120/120 | 90/90/90 | 140/160/139 |" in text


def test_json_round_trip() -> None:
    run = sample_run()
    again = from_json(to_json(run))
    assert again == run
    assert table.render(again) == table.render(run)


def test_readme_latest_section_is_replaced() -> None:
    text = f"# Bench\nintro\n{readme.BEGIN}\nold table\n{readme.END}\nafter\n"
    updated = readme.with_latest(text, "# Title\n\n## Part\n| a |\n", "results/x.md")
    assert "old table" not in updated
    assert "## Title" in updated and "### Part" in updated and "[results/x.md](results/x.md)" in updated
    assert updated.startswith("# Bench\nintro\n") and updated.endswith(f"{readme.END}\nafter\n")
    assert readme.with_latest(updated, "# Other\n", "results/y.md").count(readme.BEGIN) == 1
    with pytest.raises(ValueError):
        readme.with_latest("# no markers\n", "# T\n", "results/x.md")

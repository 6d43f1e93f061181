"""What one `make bench` run measured, kept as JSON beside its Markdown table (so the table can be
re-rendered, and runs compared, without re-running anything)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.report import Report

MIB = 1024


@dataclass(frozen=True)
class Measurement:
    """One implementation under one workload. `error` says why there is no report (the tool
    failed or was stopped); the CPU time and peak RSS are the members' (not the tool's), per step."""

    report: Report | None
    error: str | None = None
    cpu_seconds: float = 0.0  # summed over members
    peak_rss_kib: tuple[int, ...] = ()  # per member, peak within this step
    load1: float = 0.0  # one-minute load average when the step started

    @property
    def cpu_seconds_per_1000(self) -> float | None:
        if self.report is None or self.report.operations == 0:
            return None
        return self.cpu_seconds / self.report.operations * 1000


@dataclass(frozen=True)
class Row:
    workload: str
    arguments: str  # the tool's arguments, the same for every implementation (endpoints aside)
    results: dict[str, Measurement] = field(default_factory=dict)
    beside: str = ""  # for a ceiling row: the workload of the row it is compared with


@dataclass(frozen=True)
class Memory:
    """Resident memory per member after the fill (every key of the key space written once)."""

    rss_kib: tuple[int, ...]
    peak_rss_kib: tuple[int, ...]  # since the member started
    fill: Measurement
    anon_rss_kib: tuple[int, ...] = ()  # RSS without file-backed pages (the backend's mmap)


@dataclass(frozen=True)
class Run:
    started: str  # ISO 8601, UTC
    mode: str  # "full" or "quick"
    baseline: str  # implementation names, e.g. "etcd34" and "petcd"
    candidate: str
    versions: dict[str, str]
    cores: int
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rows: list[Row] = field(default_factory=list)
    ceiling: list[Row] = field(default_factory=list)  # the no-op server, under "noop"
    memory: dict[str, Memory] = field(default_factory=dict)
    fill_workload: str = ""
    idle_cpu_seconds_per_second: dict[str, float] = field(default_factory=dict)


def to_json(run: Run) -> str:
    return json.dumps(asdict(run), indent=1, ensure_ascii=False)


def from_json(text: str) -> Run:
    raw = json.loads(text)
    return Run(
        **{k: v for k, v in raw.items() if k not in ("rows", "ceiling", "memory", "load_start", "load_end")},
        load_start=_triple(raw["load_start"]),
        load_end=_triple(raw["load_end"]),
        rows=[_row(r) for r in raw["rows"]],
        ceiling=[_row(r) for r in raw["ceiling"]],
        memory={name: _memory(m) for name, m in raw["memory"].items()},
    )


def _triple(values: list[float]) -> tuple[float, float, float]:
    a, b, c = values
    return (a, b, c)


def _row(raw: dict[str, Any]) -> Row:
    return Row(raw["workload"], raw["arguments"],
               {name: _measurement(m) for name, m in raw["results"].items()}, raw.get("beside", ""))


def _memory(raw: dict[str, Any]) -> Memory:
    return Memory(tuple(raw["rss_kib"]), tuple(raw["peak_rss_kib"]), _measurement(raw["fill"]),
                  tuple(raw.get("anon_rss_kib", ())))


def _measurement(raw: dict[str, Any]) -> Measurement:
    report = raw["report"]
    return Measurement(
        report=None if report is None else Report(
            total_seconds=report["total_seconds"],
            requests_per_second=report["requests_per_second"],
            # JSON object keys are strings: the percentiles' keys come back as floats.
            percentiles={float(p): v for p, v in report["percentiles"].items()},
            errors=dict(report["errors"]),
        ),
        error=raw["error"],
        cpu_seconds=raw["cpu_seconds"],
        peak_rss_kib=tuple(raw["peak_rss_kib"]),
        load1=raw["load1"],
    )

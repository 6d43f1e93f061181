"""Reading the text etcd's `benchmark` tool prints at the end of a run (pkg/report's format)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Report:
    """One benchmark run: successful operations per second, latency percentiles (seconds) and the
    errors it counted (message -> count). Percentiles the tool omits (zero values) are None."""

    total_seconds: float
    requests_per_second: float
    percentiles: dict[float, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def operations(self) -> int:
        """Successful operations: the tool divides their count by the wall time."""
        return round(self.requests_per_second * self.total_seconds)

    def percentile(self, p: float) -> float | None:
        return self.percentiles.get(p)


_TOTAL = re.compile(r"^\s*Total:\s*([0-9.eE+-]+) secs\.", re.MULTILINE)
_RPS = re.compile(r"^\s*Requests/sec:\s*([0-9.eE+-]+|NaN|\+Inf)\s*$", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s*([0-9.]+)% in ([0-9.eE+-]+) secs\.", re.MULTILINE)
_ERROR = re.compile(r"^\s*\[(\d+)\]\t(.*)$")


class NoReport(ValueError):
    """The output holds no summary (the tool failed before it finished)."""


def parse_report(text: str) -> Report:
    """The summary, latency distribution and error distribution in `text` (the tool's stdout)."""
    total = _TOTAL.search(text)
    rps = _RPS.search(text)
    errors = _errors(text)
    if (total is None or rps is None) and errors:
        return Report(0.0, 0.0, {}, errors)  # every request failed: the tool prints no summary
    if total is None or rps is None:
        raise NoReport("no 'Summary' with Total and Requests/sec in the benchmark output")
    rate = float(rps.group(1))
    percentiles = {float(p): float(v) for p, v in _PERCENTILE.findall(text)}
    return Report(
        total_seconds=float(total.group(1)),
        requests_per_second=0.0 if rate != rate else rate,  # NaN when nothing succeeded
        percentiles=percentiles,
        errors=errors,
    )


def _errors(text: str) -> dict[str, int]:
    _, found, tail = text.partition("Error distribution:")
    if not found:
        return {}
    errors: dict[str, int] = {}
    for line in tail.splitlines():
        match = _ERROR.match(line)
        if match is not None:
            errors[match.group(2).strip()] = errors.get(match.group(2).strip(), 0) + int(match.group(1))
    return errors

"""What every checker returns: the anomalies it found (an empty list: none)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anomaly:
    checker: str  # "linearizability", "watch", "revision", "lease", "hashkv"
    description: str

    def __str__(self) -> str:
        return f"[{self.checker}] {self.description}"

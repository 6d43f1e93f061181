"""What one run did and found, printed at its end (and appended as a JSON line to
$PETCD_RELIABILITY_REPORT when set, for the README's table)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

from .anomalies import Anomaly


@dataclass
class RunReport:
    implementation: str
    members: int
    seed: int
    seconds: float = 0.0
    operations: Counter[str] = field(default_factory=Counter)  # "put ok", "cas unknown", ...
    faults: Counter[str] = field(default_factory=Counter)  # by kind
    fault_errors: list[str] = field(default_factory=list)
    watch: Counter[str] = field(default_factory=Counter)  # sessions, events, progress notifications
    lease_keys: int = 0
    lease_reads: int = 0
    elections_seen: int = 0
    linearizability: str = ""  # porcupine's verdict
    hashkv: str = ""  # what was compared
    anomalies: list[Anomaly] = field(default_factory=list)

    def render(self) -> str:
        total = sum(self.operations.values())
        lines = [
            f"reliability run: {self.implementation}, {self.members} members, seed {self.seed}, "
            f"{self.seconds:.0f} s",
            f"  operations: {total} ({_counts(self.operations)})",
            f"  faults injected: {sum(self.faults.values())} ({_counts(self.faults)})",
            f"  fault injection errors: {len(self.fault_errors)}",
            *(f"    {e}" for e in self.fault_errors),
            f"  watch: {_counts(self.watch)}",
            f"  lease keys: {self.lease_keys}, lease reads: {self.lease_reads}, "
            f"elections observed: {self.elections_seen}",
            f"  porcupine: {self.linearizability}",
            f"  hashkv: {self.hashkv}",
            f"  anomalies found: {len(self.anomalies)}",
            *(f"    {a}" for a in self.anomalies[:50]),
        ]
        return "\n".join(lines)

    def publish(self) -> None:
        """Print the report; append it to $PETCD_RELIABILITY_REPORT (JSON lines) when set."""
        print(self.render(), flush=True)
        destination = os.environ.get("PETCD_RELIABILITY_REPORT")
        if destination:
            # asdict would rebuild each Counter from (key, count) pairs, counting the pairs
            record = {f.name: getattr(self, f.name) for f in fields(self)}
            record["anomalies"] = [str(a) for a in self.anomalies]
            with Path(destination).open("a") as out:
                out.write(json.dumps(record) + "\n")


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"

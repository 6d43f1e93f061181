"""Revisions never go backwards (pure): an operation that starts after another one has returned
sees a header revision at least as high, whichever member answered; a client's own operations
are one such chain."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from .anomalies import Anomaly


def check_revisions(operations: Sequence[dict[str, Any]]) -> list[Anomaly]:
    """`operations` as recorded by harness.linearizability.History, outputs carrying "revision"."""
    answered = sorted(
        (op for op in operations if "revision" in op["output"]), key=lambda op: (op["call"], op["return"])
    )
    returned: list[tuple[int, int, int]] = []  # heap of (return, revision, index)
    highest: tuple[int, int] | None = None  # (revision, index) of every operation returned so far
    anomalies = []
    for index, op in enumerate(answered):
        while returned and returned[0][0] < op["call"]:
            _, revision, earlier = heapq.heappop(returned)
            if highest is None or revision > highest[0]:
                highest = (revision, earlier)
        revision = op["output"]["revision"]
        if highest is not None and revision < highest[0]:
            before = answered[highest[1]]
            anomalies.append(
                Anomaly(
                    "revision",
                    f"client {op['client']} {op['input']} saw revision {revision} after client "
                    f"{before['client']} {before['input']} had returned revision {highest[0]}",
                )
            )
        heapq.heappush(returned, (op["return"], revision, index))
    return anomalies

"""Known, documented differences between etcd 3.4 (the reference transcripts) and other implementations.

Each rule rewrites the candidate's normalised transcript into what etcd 3.4 prints, for one reason
that is written down here. A rule must match somewhere in the runs it applies to (the test fails on a
stale rule), so this list is also the record of how the implementations differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.implementations import ETCD35_VERSION, IMPLEMENTATIONS
from petcd.server.etcdserver import SERVER_VERSION as PETCD_SERVER_VERSION


@dataclass(frozen=True)
class ExpectedDifference:
    implementation: str
    reason: str
    pattern: str  # a regular expression over the normalised transcript (re.MULTILINE)
    replacement: str | Callable[[re.Match[str]], str]  # what etcd 3.4 prints instead
    scripts: frozenset[str] = frozenset()  # script names it applies to; empty = all
    topologies: frozenset[str] = frozenset()  # topologies it applies to; empty = all

    def applies_to(self, implementation: str, script: str, topology: str = "") -> bool:
        return (
            self.implementation == implementation
            and (not self.scripts or script in self.scripts)
            and (not self.topologies or topology in self.topologies)
        )


EXPECTED_DIFFERENCES: tuple[ExpectedDifference, ...] = (
    ExpectedDifference(
        "etcd35",
        "Status.version is the server's own version",
        rf"\b{re.escape(ETCD35_VERSION)}\b",
        str(IMPLEMENTATIONS["etcd34"].etcd_version),
        frozenset({"cluster"}),
    ),
    ExpectedDifference(
        "etcd35",
        "`snapshot status` counts the records of the bolt file; etcd 3.5 keeps two more in its meta"
        " bucket (the raft term and the conf state of the consistent index)",
        r'"totalKey":(\d+)',
        lambda m: f'"totalKey":{int(m.group(1)) - 2}',
        frozenset({"cluster"}),
    ),
    ExpectedDifference(
        "petcd",
        "Status.version is the etcd API version petcd implements (3.5), not etcd 3.4's",
        rf"\b{re.escape(PETCD_SERVER_VERSION)}\b",
        str(IMPLEMENTATIONS["etcd34"].etcd_version),
        frozenset({"cluster"}),
    ),
    *(
        ExpectedDifference(
            "petcd",
            "petcd's backend, and so its snapshot file, is LMDB, which etcdctl 3.4's `snapshot status`"
            " (a bbolt reader) refuses; `petcd snapshot status` reads it. etcd's answer here counts the"
            " bolt records: the keys plus one per member",
            r"^! Error: invalid database\n\[exit 1\]$",
            f'{{"hash":"<hash:3>","revision":3,"totalKey":{total_keys},"totalSize":"<size>"}}',
            frozenset({"cluster"}),
            frozenset({topology}),
        )
        for topology, total_keys in (("single", 6), ("three", 8))
    ),
)


def rewrite(
    implementation: str, script: str, transcript: str, topology: str = ""
) -> tuple[str, list[ExpectedDifference]]:
    """The transcript with the applicable rules applied, and the rules that matched nothing."""
    unused = []
    for rule in EXPECTED_DIFFERENCES:
        if not rule.applies_to(implementation, script, topology):
            continue
        transcript, count = re.subn(rule.pattern, rule.replacement, transcript, flags=re.MULTILINE)
        if count == 0:
            unused.append(rule)
    return transcript, unused

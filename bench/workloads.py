"""What `make bench` runs: etcd benchmark tool invocations, identical for every implementation.

Totals are sized so that a full run (etcd and petcd, every row, the 100k-key fill) stays within
about ten minutes on a busy 2-core machine where petcd does a few hundred puts per second, and
BENCH_QUICK within about two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

VALUE_SIZE = 256
KEY_SPACE = 100_000
QUICK_DIVISOR = 8
CLIENTS_PER_CONNECTION = 8  # etcd's documented runs use 10/100 and 100/1000 conns/clients


@dataclass(frozen=True)
class Workload:
    """One benchmark invocation: `command` is the subcommand and its flags, without --total."""

    name: str
    command: tuple[str, ...]
    clients: int
    total: int
    target_leader: bool = False

    @property
    def conns(self) -> int:
        return max(1, self.clients // CLIENTS_PER_CONNECTION)

    @property
    def arguments(self) -> list[str]:
        """The tool's arguments apart from --endpoints: the same for every implementation."""
        return [
            f"--conns={self.conns}",
            f"--clients={self.clients}",
            "--precise",  # full precision: sub-millisecond latencies otherwise print as 0.0000
            *(["--target-leader"] if self.target_leader else []),
            *self.command,
            f"--total={self.total}",
        ]

    def argv(self, program: str, endpoints: Sequence[str]) -> list[str]:
        """The tool's command line; `endpoints` are host:port client addresses."""
        return [program, f"--endpoints={','.join(endpoints)}", *self.arguments]

    def scaled(self, divisor: int) -> Workload:
        return Workload(self.name, self.command, self.clients, max(100, self.total // divisor),
                        self.target_leader)


_PUT = ("put", f"--val-size={VALUE_SIZE}", f"--key-space-size={KEY_SPACE}")
_TXN_PUT = ("txn-put", f"--val-size={VALUE_SIZE}", f"--key-space-size={KEY_SPACE}")
_RANGE_L = ("range", "foo", "--consistency=l")
_RANGE_S = ("range", "foo", "--consistency=s")
_WATCH_LATENCY = ("watch-latency", f"--val-size={VALUE_SIZE}", "--put-rate=200")


def _put(clients: int, total: int, leader: bool | None) -> Workload:
    """A put row; `leader` None: a single-endpoint server, no member to choose."""
    noun = "client" if clients == 1 else "clients"
    where = "" if leader is None else " → leader" if leader else " → all members"
    return Workload(f"put, {clients} {noun}{where}", _PUT, clients, total, bool(leader))


PUT_1 = _put(1, 2_000, leader=True)
PUT_64 = _put(64, 8_000, leader=True)
PUT_256 = _put(256, 10_000, leader=True)
RANGE_L_64 = Workload("range linearizable, 64 clients", _RANGE_L, 64, 10_000)

FULL: tuple[Workload, ...] = (
    PUT_1,
    _put(16, 6_000, leader=True),
    PUT_64,
    _put(64, 8_000, leader=False),
    PUT_256,
    _put(256, 10_000, leader=False),
    Workload("range linearizable, 1 client", _RANGE_L, 1, 2_000),
    RANGE_L_64,
    Workload("range serializable, 64 clients", _RANGE_S, 64, 20_000),
    Workload("txn-put, 64 clients → leader", _TXN_PUT, 64, 6_000, target_leader=True),
    # --total puts at --put-rate per second; every one is observed by each of the 16 watchers.
    Workload("watch latency, 16 watchers", _WATCH_LATENCY, 16, 1_000),
    Workload("lease keep-alive, 64 clients → leader", ("lease-keepalive",), 64, 10_000, target_leader=True),
)

Ceiling = tuple[tuple[Workload, str], ...]  # (workload, name of the row it stands beside)

# The ceiling of one Python gRPC process: the same put, against a server whose Put does nothing,
# each beside the put row (to the leader) with as many clients. The no-op server serves nothing
# else (no Status), so the tool connects without --target-leader.
CEILING: Ceiling = tuple(
    (_put(w.clients, w.total, leader=None), w.name) for w in (PUT_1, PUT_64, PUT_256)
)

# Then every one of the KEY_SPACE keys holds a 256-byte value (bench.fill, many puts per Txn), and
# each member's RSS is read.
FILL_NAME = f"{KEY_SPACE:,} keys written once"


def plan(quick: bool) -> tuple[tuple[Workload, ...], Ceiling]:
    """(rows, ceiling rows) for a full run, or scaled down for BENCH_QUICK."""
    if not quick:
        return FULL, CEILING
    ceiling = tuple((w.scaled(QUICK_DIVISOR), beside) for w, beside in CEILING)
    return tuple(w.scaled(QUICK_DIVISOR) for w in FULL), ceiling

"""Reading py-spy's raw (collapsed) stacks: samples per thread, per layer of petcd (inclusive), and
per leaf function (self). Pure: the profile command feeds it py-spy's files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Stack:
    thread: str  # the thread's name, without py-spy's "thread (tid): " prefix
    frames: tuple[str, ...]  # outermost first, each "function (package/file.py)"
    samples: int
    tid: int = 0  # the kernel's thread id (py-spy's "thread (tid)"; 0 when absent)


def parse_collapsed(text: str) -> list[Stack]:
    """py-spy `record --format raw --threads` output: `thread (tid): Name;frame;...;leaf COUNT`."""
    stacks = []
    for line in text.splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        thread, *frames = body.split(";")
        prefix, _, name = thread.partition("): ")
        tid = prefix.removeprefix("thread (")
        stacks.append(Stack(name or thread, tuple(frames), int(count), int(tid, 0) if tid.isdigit() else 0))
    return stacks


def thread_names(stacks: Iterable[Stack]) -> dict[int, str]:
    """Kernel thread id -> Python thread name, for the threads py-spy saw."""
    return {s.tid: s.thread for s in stacks if s.tid}


def total(stacks: Iterable[Stack]) -> int:
    return sum(s.samples for s in stacks)


def by_thread(stacks: Iterable[Stack]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for s in stacks:
        counts[s.thread] += s.samples
    return counts


Layer = tuple[str, tuple[str, ...]]  # (name, substrings of a frame that put a sample in it)

# petcd's layers on a write's path. Inclusive: a sample counts in every layer one of its frames
# belongs to, so the rows overlap (the Ready loop round contains the apply, for example).
PETCD_LAYERS: tuple[Layer, ...] = (
    ("gRPC KV service (api/kv.py), inclusive", ("petcd/api/kv.py",)),
    ("auth interceptor (api/auth.py)", ("petcd/api/auth.py", "petcd/auth/")),
    ("EtcdServer.propose (serialise, register, wait)", ("propose (petcd/server/etcdserver.py)",)),
    ("Ready loop round (server/raft_loop.py)", ("petcd/server/raft_loop.py",)),
    ("Raft core (petcd/raft)", ("petcd/raft/",)),
    ("WAL save + fsync (storage/disk, wal, fsync)",
     ("petcd/storage/disk.py", "petcd/storage/wal.py", "petcd/storage/fsync.py")),
    ("apply (server/apply.py)", ("petcd/server/apply.py",)),
    ("MVCC store + LMDB (storage/mvcc, backend, kv, keyindex)",
     ("petcd/storage/mvcc.py", "petcd/storage/backend.py", "petcd/storage/kv.py",
      "petcd/storage/keyindex.py")),
    ("peer transport (petcd/transport)", ("petcd/transport/",)),
    ("client port splice (api/mux.py)", ("petcd/api/mux.py",)),
    ("protobuf encode/decode and conversions",
     ("SerializeToString", "FromString", "ParseFromString", "google/protobuf", "petcd/api/convert.py",
      "petcd/transport/codec.py")),
    ("watch (storage/watch, api/watch)", ("petcd/storage/watch.py", "petcd/api/watch.py",
                                          "petcd/server/watch_stream.py")),
    ("logging and metrics", ("petcd/log.py", "petcd/metrics.py", "prometheus_client")),
    ("asyncio.to_thread (the WAL hand-off)", ("to_thread (asyncio/threads.py)",)),
)

# Where the innermost Python frame is (self time), for what no layer above names.
SELF_KINDS: tuple[Layer, ...] = (
    ("asyncio's Python code (tasks, futures, events, wait_for)", ("(asyncio/",)),
    ("thread pool and locks (concurrent/futures, threading, queue)",
     ("(concurrent/futures/", "(threading.py)", "(queue.py)")),
    ("grpc's Python layer (grpc/*.py)", ("(grpc/",)),
    ("protobuf Python layer", ("(google/protobuf/",)),
)

# A sample whose innermost Python frame is the event loop's run itself is time in C: uvloop, and
# grpc.aio's Cython (the completion-queue callbacks, message (de)serialisation by grpc).
LOOP_C_LEAVES = ("Runner.run (asyncio/runners.py)", "run (uvloop/__init__.py)",
                 "run_until_complete (asyncio/base_events.py)", "run_forever (asyncio/base_events.py)")


def self_kinds(stacks: Iterable[Stack], kinds: Sequence[Layer] = SELF_KINDS) -> dict[str, int]:
    """Self samples per kind of innermost frame; the event loop's own C time is not among them
    (see loop_c_samples) since its innermost Python frame is the loop's run."""
    counts = {name: 0 for name, _ in kinds}
    for leaf, n in leaf_counts(stacks).items():
        if leaf in LOOP_C_LEAVES:
            continue
        for name, needles in kinds:
            if any(needle in leaf for needle in needles):
                counts[name] += n
                break
    return counts


def inclusive(stacks: Iterable[Stack], layers: Sequence[Layer] = PETCD_LAYERS) -> dict[str, int]:
    counts = {name: 0 for name, _ in layers}
    for s in stacks:
        for name, needles in layers:
            if any(needle in frame for frame in s.frames for needle in needles):
                counts[name] += s.samples
    return counts


def leaf_counts(stacks: Iterable[Stack]) -> Counter[str]:
    """Self samples per innermost frame."""
    counts: Counter[str] = Counter()
    for s in stacks:
        if s.frames:
            counts[s.frames[-1]] += s.samples
    return counts


def loop_c_samples(stacks: Iterable[Stack]) -> int:
    return sum(n for leaf, n in leaf_counts(stacks).items() if leaf in LOOP_C_LEAVES)

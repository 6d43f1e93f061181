"""bench: reading etcd's benchmark tool output and /proc (the measuring half of `make bench`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: `bench` lives there

from bench import flame, procstat
from bench.report import NoReport, parse_report

# Real output of `benchmark --precise put --total 50 --val-size 256` (the progress bar included).
PUT_OUTPUT = """\
 0 / 50    0.00% 50 / 50  100.00% 0s

Summary:
  Total:\t0.062598687 secs.
  Slowest:\t0.020482243 secs.
  Fastest:\t0.000246403 secs.
  Average:\t0.0012470201600000002 secs.
  Stddev:\t0.003526728166256947 secs.
  Requests/sec:\t798.7387978281397

Response time histogram:
  0.000246403 [1]\t|
  0.0022699870000000002 [46]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎
  0.020482243 [1]\t|

Latency distribution:
  10% in 0.000315978 secs.
  25% in 0.000352296 secs.
  50% in 0.000427904 secs.
  75% in 0.000494371 secs.
  90% in 0.001032302 secs.
  95% in 0.0155093 secs.
  99% in 0.019 secs.
  99.9% in 0.020482243 secs.
"""

# Real output when every request failed: no summary at all, only the error distribution.
FAILED_OUTPUT = (
    "bench with linearizable range\n"
    " 0 / 20    0.00% 20 / 20  100.00% 0s\n"
    "\n"
    "Error distribution:\n"
    "  [20]\trpc error: code = Unimplemented desc = Unexpected <class 'NotImplementedError'>: "
    "Method not implemented!\n"
)


def test_summary_and_percentiles() -> None:
    report = parse_report(PUT_OUTPUT)
    assert report.requests_per_second == pytest.approx(798.7387978281397)
    assert report.total_seconds == pytest.approx(0.062598687)
    assert report.operations == 50
    assert report.percentile(50) == pytest.approx(0.000427904)
    assert report.percentile(99) == pytest.approx(0.019)
    assert report.percentile(99.9) == pytest.approx(0.020482243)
    assert report.errors == {}


def test_some_requests_failed() -> None:
    text = PUT_OUTPUT + "\nError distribution:\n  [3]\tetcdserver: request timed out\n  [1]\tEOF\n"
    report = parse_report(text)
    assert report.errors == {"etcdserver: request timed out": 3, "EOF": 1}
    assert report.operations == 50  # the rate counts successes only


def test_every_request_failed() -> None:
    report = parse_report(FAILED_OUTPUT)
    assert report.requests_per_second == 0
    assert report.operations == 0
    assert list(report.errors.values()) == [20]
    assert "Unimplemented" in next(iter(report.errors))


def test_no_summary_at_all() -> None:
    with pytest.raises(NoReport):
        parse_report("panic: failed to find a leader endpoint\n")


def test_stat_fields_after_a_command_name_with_spaces_and_parentheses() -> None:
    fields = ["S", "1", "4242"] + ["0"] * 8 + ["250", "150"] + ["0"] * 30
    text = "123 (a) b (c) " + " ".join(fields)
    stat = procstat.parse_stat(text, clock_ticks=100)
    assert stat.pgrp == 4242
    assert stat.cpu_seconds == pytest.approx(4.0)


def test_status_field_in_kib() -> None:
    status = "Name:\tpetcd\nVmPeak:\t  900 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   70000 kB\n"
    assert procstat.parse_status_kib(status, "VmHWM") == 81234
    assert procstat.parse_status_kib(status, "VmRSS") == 70000
    assert procstat.parse_status_kib("Name:\tzombie\n", "VmHWM") == 0


def test_this_process_group_from_the_real_proc() -> None:
    group = os.getpgid(0)
    assert os.getpid() in procstat.group_pids(group)
    busy = sum(i * i for i in range(200_000))  # some CPU of our own, so the sum cannot be zero
    assert busy > 0
    assert procstat.group_cpu_seconds(group) > 0
    own_rss = procstat.parse_status_kib(Path("/proc/self/status").read_text(), "VmRSS")
    assert procstat.group_memory_kib(group, "VmHWM") >= own_rss > 0


def own_peak_kib() -> int:
    return procstat.parse_status_kib(Path("/proc/self/status").read_text(), "VmHWM")


def test_peak_rss_reset_starts_a_new_window() -> None:
    block = bytearray(64 * 1024 * 1024)  # touched (zeroed) pages: RSS rises by 64 MiB, then falls
    block[::4096] = b"x" * len(block[::4096])
    del block
    before = own_peak_kib()
    procstat.reset_group_peak_rss(os.getpgid(0))
    assert own_peak_kib() < before - 32 * 1024


# Lines in the shape py-spy `record --format raw --threads --nolineno` writes them (thread names with
# spaces and parentheses included), along petcd's write path.
_LOOP = ("thread (12144): MainThread;<module> (petcd/cli.py);run (uvloop/__init__.py);"
         "Runner.run (asyncio/runners.py)")
COLLAPSED = f"""\
{_LOOP} 678
thread (12217): Thread-1 (_poll_wrapper);Thread._bootstrap (threading.py);Thread.run (threading.py) 127
{_LOOP};KVService.Put (petcd/api/kv.py);EtcdServer.put (petcd/server/etcdserver.py);\
propose (petcd/server/etcdserver.py);wait_for (asyncio/tasks.py) 40
{_LOOP};RaftLoop._run (petcd/server/raft_loop.py);RaftLoop._round (petcd/server/raft_loop.py);\
EtcdServer.apply_entries (petcd/server/etcdserver.py);StateMachine.apply (petcd/server/apply.py);\
MVCCStore.put (petcd/storage/mvcc.py) 30
thread (12300): asyncio_0;Thread.run (threading.py);_worker (concurrent/futures/thread.py);\
RaftDisk.save (petcd/storage/disk.py);fdatasync (petcd/storage/fsync.py) 20
not a stack line
"""


def test_collapsed_stacks_per_thread() -> None:
    stacks = flame.parse_collapsed(COLLAPSED)
    assert len(stacks) == 5
    assert flame.total(stacks) == 895
    assert flame.by_thread(stacks) == {"MainThread": 748, "Thread-1 (_poll_wrapper)": 127, "asyncio_0": 20}
    assert stacks[1].frames[-1] == "Thread.run (threading.py)"
    assert flame.thread_names(stacks) == {12144: "MainThread", 12217: "Thread-1 (_poll_wrapper)",
                                          12300: "asyncio_0"}


def test_layers_are_inclusive() -> None:
    layers = flame.inclusive(flame.parse_collapsed(COLLAPSED))
    assert layers["gRPC KV service (api/kv.py), inclusive"] == 40
    assert layers["EtcdServer.propose (serialise, register, wait)"] == 40
    assert layers["Ready loop round (server/raft_loop.py)"] == 30
    assert layers["apply (server/apply.py)"] == 30
    assert layers["MVCC store + LMDB (storage/mvcc, backend, kv, keyindex)"] == 30
    assert layers["WAL save + fsync (storage/disk, wal, fsync)"] == 20
    assert layers["Raft core (petcd/raft)"] == 0


def test_self_time_and_the_loop_in_c() -> None:
    stacks = flame.parse_collapsed(COLLAPSED)
    assert flame.loop_c_samples(stacks) == 678
    kinds = flame.self_kinds(stacks)
    assert kinds["asyncio's Python code (tasks, futures, events, wait_for)"] == 40  # not the loop's own run
    assert kinds["thread pool and locks (concurrent/futures, threading, queue)"] == 127
    assert flame.leaf_counts(stacks).most_common(1) == [("Runner.run (asyncio/runners.py)", 678)]

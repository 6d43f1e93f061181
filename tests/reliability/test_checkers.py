"""Every checker of the reliability runs passes a correct record and reports a broken one: a stale
read and a lost write (porcupine), watch streams with a gap, a duplicate, a split revision, a bad
resumption or an early progress notification, a revision going backwards, a key outliving its
lease, members whose HashKV disagree."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from harness.linearizability import check

from reliability.hashkv import MemberHash, check_hashes
from reliability.lease_check import check_lease_expiry
from reliability.nemesis import FAULT_KINDS, OPENING, plan
from reliability.revision_check import check_revisions
from reliability.run import acknowledged_writes
from reliability.watch_check import Write, check_watches
from reliability.watcher import Event, Response, Session, resume_revision
from reliability.workload import LeaseKey, Observation


def op(client: int, call: int, ret: int, given: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    return {"client": client, "call": call, "return": ret, "input": given, "output": output}


def put(key: str, value: str) -> dict[str, Any]:
    return {"op": "put", "key": key, "value": value}


GET = {"op": "get", "key": "x"}


# --- linearizability: the recorded format (with header revisions) through porcupine -------------

HISTORIES = {
    "linearizable": (
        "ok",
        [
            op(0, 0, 10, put("x", "1"), {"revision": 2}),
            op(1, 5, 20, GET, {"found": True, "value": "1", "revision": 2}),
            op(0, 30, 40, put("x", "2"), {"revision": 3}),
            op(1, 50, 60, GET, {"found": True, "value": "2", "revision": 3}),
        ],
    ),
    "stale read": (
        "illegal",
        [
            op(0, 0, 10, put("x", "1"), {"revision": 2}),
            op(0, 20, 30, put("x", "2"), {"revision": 3}),
            op(1, 40, 50, GET, {"found": True, "value": "1", "revision": 3}),
        ],
    ),
    "lost write": (
        "illegal",
        [
            op(0, 0, 10, put("x", "1"), {"revision": 2}),
            op(1, 20, 30, put("x", "2"), {"revision": 3}),
            op(0, 40, 50, GET, {"found": True, "value": "1", "revision": 3}),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_porcupine_judges_recorded_histories(name: str, tmp_path: Path) -> None:
    expected, operations = HISTORIES[name]
    assert check(json.dumps({"operations": operations}), tmp_path).result == expected


def test_acknowledged_writes_are_puts_successful_sets_and_real_deletes() -> None:
    operations = [
        op(0, 0, 1, put("x", "1"), {"revision": 2}),
        op(
            0,
            2,
            3,
            {"op": "cas", "key": "x", "expected": "0", "value": "2"},
            {"succeeded": False, "revision": 2},
        ),
        op(
            0,
            4,
            5,
            {"op": "cas", "key": "x", "expected": "1", "value": "3"},
            {"succeeded": True, "revision": 3},
        ),
        op(0, 6, 7, {"op": "delete", "key": "y"}, {"deleted": 0, "revision": 3}),
        op(0, 8, 9, {"op": "delete", "key": "x"}, {"deleted": 1, "revision": 4}),
        op(0, 10, 11, put("x", "5"), {"unknown": True}),
    ]
    assert acknowledged_writes(operations) == [
        Write(2, "PUT", "x", "1"),
        Write(3, "PUT", "x", "3"),
        Write(4, "DELETE", "x"),
    ]


# --- watch streams -------------------------------------------------------------------------------


def events(*revisions: int, key: str = "k") -> Response:
    return Response("events", revisions[-1], tuple(Event(r, "PUT", key, str(r)) for r in revisions))


def progress(revision: int) -> Response:
    return Response("progress", revision)


def session(start: int, *responses: Response) -> Session:
    return Session("m", start, [Response("created", start - 1), *responses])


GOOD = [
    session(
        2, events(2), events(3), Response("events", 4, (Event(4, "PUT", "a", "4"), Event(4, "PUT", "b", "4")))
    ),
    session(5, progress(4), events(5), progress(5)),
    session(6, Response("canceled", 9, (), compact_revision=8)),
    session(8, events(8, 9)),
]


def test_a_correct_stream_with_resumptions_and_a_compaction_passes() -> None:
    writes = [Write(3, "PUT", "k", "3"), Write(4, "PUT", "b", "4")]
    assert check_watches([GOOD, GOOD], 2, writes) == []


def test_resumption_revision_follows_events_progress_and_compaction() -> None:
    assert [resume_revision(s, s.start_revision) for s in GOOD] == [5, 6, 8, 10]


BROKEN = {
    "gap": ([session(2, events(2), events(4))], "gap: revisions 3..3"),
    "duplicate": ([session(2, events(2, 3)), session(4, events(3))], "duplicate event"),
    "resumed too early": ([session(2, events(2)), session(2)], "resumed at 2, not at 3"),
    "resumed too late": ([session(2, events(2)), session(4, events(4))], "resumed at 4, not at 3"),
    "split revision": (
        [session(2, events(2), Response("events", 2, (Event(2, "PUT", "other", "2"),)))],
        "split across responses",
    ),
    "out of order": (
        [session(2, Response("events", 3, (Event(3, "PUT", "a", "3"), Event(2, "PUT", "b", "2"))))],
        "out of order",
    ),
    "early progress notification": ([session(2, events(2), progress(4))], "progress notification at 4"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_watch_streams_are_reported(name: str) -> None:
    sessions, expected = BROKEN[name]
    anomalies = check_watches([sessions], 2, [])
    assert any(expected in a.description for a in anomalies), anomalies


def test_watchers_that_disagree_are_reported() -> None:
    other = [session(2, Response("events", 2, (Event(2, "PUT", "k", "other"),)))]
    anomalies = check_watches([[session(2, events(2))], other], 2, [])
    assert [a.description.startswith("revision 2:") for a in anomalies] == [True]


def test_an_acknowledged_write_missing_from_its_revision_is_reported() -> None:
    anomalies = check_watches([[session(2, events(2))]], 2, [Write(2, "PUT", "k", "lost")])
    assert len(anomalies) == 1 and "missing from revision 2" in anomalies[0].description


# --- revisions -------------------------------------------------------------------------------------


def test_revisions_of_concurrent_operations_may_differ_either_way() -> None:
    operations = [
        op(0, 0, 100, put("x", "1"), {"revision": 5}),
        op(1, 10, 20, GET, {"found": False, "value": "", "revision": 4}),
        op(1, 110, 120, GET, {"found": True, "value": "1", "revision": 5}),
    ]
    assert check_revisions(operations) == []


def test_a_revision_going_backwards_is_reported() -> None:
    operations = [
        op(0, 0, 10, put("x", "1"), {"revision": 5}),
        op(0, 20, 30, GET, {"found": True, "value": "1", "revision": 4}),
        op(1, 40, 50, GET, {"found": True, "value": "1", "revision": 3}),
        op(1, 60, 70, put("x", "2"), {"unknown": True}),
    ]
    anomalies = check_revisions(operations)
    assert len(anomalies) == 2
    assert "saw revision 4 after client 0" in anomalies[0].description


# --- leases ------------------------------------------------------------------------------------------

KEY = LeaseKey("/lease/0-0", lease=7, ttl=3, renewed=100.0, written="ok")


def seen(at: float, *keys: str) -> Observation:
    return Observation(at, at + 0.1, frozenset(keys))


def test_a_key_gone_in_time_passes() -> None:
    observations = [seen(101, KEY.key), seen(104, KEY.key), seen(110)]
    assert check_lease_expiry([KEY], observations, [], election_timeout=1.0, slack=1.0) == []


def test_a_key_outliving_its_lease_is_reported() -> None:
    anomalies = check_lease_expiry([KEY], [seen(110, KEY.key), seen(111, KEY.key)], [], 1.0, 1.0)
    assert len(anomalies) == 1 and "still exists 10.0 s after" in anomalies[0].description


def test_a_disturbance_restarts_the_lease_clock() -> None:
    assert check_lease_expiry([KEY], [seen(110, KEY.key)], [(104.0, 106.0)], 1.0, 1.0) == []
    assert check_lease_expiry([KEY], [seen(110, KEY.key)], [(105.0, 111.0)], 1.0, 1.0) == []
    assert len(check_lease_expiry([KEY], [seen(115, KEY.key)], [(104.0, 106.0)], 1.0, 1.0)) == 1


def test_a_lease_key_nobody_wrote_is_reported() -> None:
    assert (
        "no client wrote it" in check_lease_expiry([], [seen(1, "/lease/ghost")], [], 1.0, 1.0)[0].description
    )


# --- HashKV ---------------------------------------------------------------------------------------------


def test_hashkv_agreement_passes_and_disagreement_is_reported() -> None:
    agree = [MemberHash(f"m{i}", 40, 1234, 10) for i in range(3)]
    assert check_hashes(agree) == []
    disagree = [*agree[:2], MemberHash("m2", 40, 999, 10)]
    anomalies = check_hashes(disagree)
    assert len(anomalies) == 1 and "m2: hash 999" in anomalies[0].description
    assert len(check_hashes([*agree[:2], MemberHash("m2", 40, 1234, 12)])) == 1


# --- the nemesis's plan ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_plans_are_bounded_and_open_with_a_kill_a_pause_and_a_partition(seed: int) -> None:
    faults = plan(random.Random(seed), duration=60.0, max_faults=12)
    assert {f.kind for f in faults[: len(OPENING)]} == set(OPENING)
    assert len(faults) <= 12 and all(f.kind in FAULT_KINDS for f in faults)
    assert sum(f.hold + f.quiet for f in faults[:-1]) < 60.0
    assert len(plan(random.Random(seed), duration=1000.0, max_faults=5)) == 5


def test_a_plan_of_chosen_kinds_opens_with_those_of_them_it_must() -> None:
    faults = plan(random.Random(1), duration=60.0, max_faults=10, kinds=["kill-all", "pause-follower"])
    assert faults[0].kind == "pause-follower"
    assert {f.kind for f in faults} == {"kill-all", "pause-follower"}
    with pytest.raises(ValueError, match="unknown fault kinds"):
        plan(random.Random(1), duration=60.0, max_faults=10, kinds=["unplug"])

"""The normaliser removes exactly the volatile parts of etcdctl output, and the script parser reads
the session language (pure functions; no processes)."""

from __future__ import annotations

import pytest

from .normalise import Identities, normalise_stderr, normalise_stdout, sort_json_lists
from .script import Command, ScriptError, Wait, parse, substitute

MEMBER = 12516471717809604450  # adb370b65543c762
CLUSTER = 16942901675539781708
LEASE = 0x0445A20F73473306


def identities() -> Identities:
    ids = Identities(
        {MEMBER: "etcd01"},
        CLUSTER,
        {"http://127.0.0.9:23791": "<client:etcd01>", "http://127.0.0.9:23801": "<peer:etcd01>"},
        "/tmp/scratch",
    )
    ids.add_lease(LEASE)
    return ids


def test_json_header_keeps_revisions_and_masks_identities_and_term() -> None:
    raw = (
        f'{{"header":{{"cluster_id":{CLUSTER},"member_id":{MEMBER},"revision":9,"raft_term":2}},'
        '"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":9,"version":4,"value":"YmFy",'
        f'"lease":{LEASE}}}],"count":1}}\n'
    )
    assert normalise_stdout(("get", "foo", "-w", "json"), raw, identities()) == (
        '{"header":{"cluster_id":"<cluster>","member_id":"<member:etcd01>","revision":9,"raft_term":"<term>"},'
        '"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":9,"version":4,"value":"YmFy",'
        '"lease":"<lease:1>"}],"count":1}\n'
    )


def test_hex_ids_padded_or_not_and_urls() -> None:
    raw = "adb370b65543c762, started, etcd01, http://127.0.0.9:23801, http://127.0.0.9:23791, false\n"
    expected = "<member:etcd01>, started, etcd01, <peer:etcd01>, <client:etcd01>, false\n"
    assert normalise_stdout(("member", "list"), raw, identities()) == expected
    granted = "lease 0445a20f73473306 granted with TTL(60s)\n"
    assert (
        normalise_stdout(("lease", "grant", "60"), granted, identities())
        == "lease <lease:1> granted with TTL(60s)\n"
    )


def test_endpoint_status_measurements_only() -> None:
    raw = "http://127.0.0.9:23791, adb370b65543c762, 3.4.23, 20 kB, true, false, 2, 8, 8, \n"
    assert normalise_stdout(("endpoint", "status"), raw, identities()) == (
        "<client:etcd01>, <member:etcd01>, 3.4.23, <size>, true, false, <term>, <index>, <index>, \n"
    )


def test_equal_hashes_share_a_placeholder_and_different_ones_do_not() -> None:
    ids = identities()
    raw = "http://127.0.0.9:23791, 3305255506\n"
    assert normalise_stdout(("endpoint", "hashkv"), raw, ids) == "<client:etcd01>, <hash:1>\n"
    assert normalise_stdout(("endpoint", "hashkv"), raw, ids) == "<client:etcd01>, <hash:1>\n"
    other = '[{"HashKV":{"hash":1234}}]\n'
    assert (
        normalise_stdout(("endpoint", "hashkv", "-w", "json"), other, ids)
        == '[{"HashKV":{"hash":"<hash:2>"}}]\n'
    )


def test_lease_time_to_live_masks_remaining_and_orders_keys() -> None:
    raw = "lease 0445a20f73473306 granted with TTL(600s), remaining(598s), attached keys([b a])\n"
    assert normalise_stdout(("lease", "timetolive", "--keys", "x"), raw, identities()) == (
        "lease <lease:1> granted with TTL(600s), remaining(<ttl>), attached keys([a b])\n"
    )


def test_check_perf_keeps_the_shape_of_the_verdicts() -> None:
    raw = (
        "\r 59 / 60  98.33% 00m01s\r 60 / 60 100.00%PASS: Throughput is 150 writes/s\nFAIL: Stddev is 0.1s\n"
    )
    assert normalise_stdout(("check", "perf"), raw, identities()) == (
        "<verdict>: Throughput is <n> writes/s\n<verdict>: Stddev is <n>s\n"
    )


def test_check_perf_verdicts_compare_whatever_the_timing() -> None:
    slow = (
        "\n 60 / 60 100.00%\nFAIL: Throughput too low: 120 writes/s\nSlowest request took too long: 0.6s\n"
        "Stddev too high: 0.2s\nFAIL\n"
    )
    fast = "PASS: Throughput is 150 writes/s\nPASS: Slowest request took 0.1s\nPASS: Stddev is 0.01s\nPASS\n"
    assert normalise_stdout(("check", "perf"), slow, identities()) == normalise_stdout(
        ("check", "perf"), fast, identities()
    )
    # ...but a missing check is still a difference
    assert normalise_stdout(("check", "perf"), fast.replace("PASS: Stddev is 0.01s\n", ""), identities()) != (
        normalise_stdout(("check", "perf"), fast, identities())
    )


def test_stderr_client_logs() -> None:
    raw = (
        '{"level":"warn","ts":"2026-11-24T21:24:32.057Z","target":"endpoint://client-b7e6ff61-c1ae-4eb6-ae2f-'
        'ed721b4cfff6/127.0.0.9:23791","error":"etcdserver: key not found"}\n'
        "http://127.0.0.9:23791 is healthy: successfully committed proposal: took = 1.06981ms\n"
    )
    assert normalise_stderr(raw, identities()) == (
        '{"level":"warn","ts":"<ts>","target":"endpoint://client-<uuid>/<client:etcd01>",'
        '"error":"etcdserver: key not found"}\n'
        "<client:etcd01> is healthy: successfully committed proposal: took = <took>\n"
    )


def test_unrelated_numbers_stay() -> None:
    raw = "compacted revision 12516471\n"
    assert normalise_stdout(("compaction", "12516471"), raw, identities()) == raw


def test_sort_json_lists_orders_member_lists() -> None:
    raw = '{"header":{},"members":[{"name":"b"},{"name":"a"}]}\n'
    assert sort_json_lists(raw) == '{"header":{},"members":[{"name":"a"},{"name":"b"}]}\n'


def test_parse_session_language() -> None:
    steps = parse(
        '# comment\n\n[sort, mask-exit] member list\ntxn <<END\nvalue("a") = "1"\n\nEND\n'
        "lease grant 60 => L1\n&W1 watch 'a b' --rev=1\nwait W1 3\n"
    )
    assert steps == [
        Command("[sort, mask-exit] member list", ("member", "list"), frozenset({"sort", "mask-exit"})),
        Command("txn <<END", ("txn",), stdin='value("a") = "1"\n\n'),
        Command("lease grant 60 => L1", ("lease", "grant", "60"), capture="L1"),
        Command("&W1 watch 'a b' --rev=1", ("watch", "a b", "--rev=1"), background="W1"),
        Wait("wait W1 3", "W1", 3),
    ]


@pytest.mark.parametrize("text", ["[bogus] get a", "txn <<END\nno end\n"])
def test_parse_rejects_bad_scripts(text: str) -> None:
    with pytest.raises(ScriptError):
        parse(text)


def test_substitute_variables() -> None:
    assert substitute(("put", "--lease=${L1}", "k"), {"L1": "abc"}) == ("put", "--lease=abc", "k")
    with pytest.raises(ScriptError):
        substitute(("${NOPE}",), {})

"""Normalising etcdctl output so that two implementations' transcripts compare byte for byte (pure).

Two kinds of volatility are removed, and nothing else:
- identities that differ between runs but are consistent within one: member and cluster IDs, URLs
  (random loopback addresses and ports), lease IDs, the scratch directory, KV hashes (they cover
  lease IDs). Each is replaced by a stable placeholder (`<member:etcd01>`, `<lease:1>`, `<hash:1>`), so
  "the same member/lease/hash" stays visible;
- measurements: raft term and index, database sizes, durations, timestamps, remaining TTLs and the
  figures of `check perf`.
- order where etcd has none: the keys attached to a lease come from a Go map (random order), and
  lists of members or of per-member results follow member IDs (the `sort` script options).
Revisions, versions, values, counts, error messages and exit statuses are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_JSON_MEASUREMENTS = {
    "raft_term": "<term>",
    "raftTerm": "<term>",
    "raftIndex": "<index>",
    "raftAppliedIndex": "<index>",
    "dbSize": "<size>",
    "dbSizeInUse": "<size>",
    "took": "<took>",
    "ts": "<ts>",
    "size": "<size>",
    "totalSize": "<size>",
    "RaftTerm": "<term>",
}
_JSON_FIELD = re.compile(r'"(' + "|".join(_JSON_MEASUREMENTS) + r')"(\s*:\s*)("[^"]*"|[-0-9.e+]+)')
_JSON_HASH = re.compile(r'"hash"(\s*:\s*)(\d+)')
_JSON_TTL = re.compile(r'"ttl"(\s*:\s*)(-?\d+)')
_ATTACHED_KEYS = re.compile(r"attached keys\(\[([^]]*)\]\)")
_JSON_KEYS = re.compile(r'"keys":\[([^]]*)\]')
_REMAINING = re.compile(r"remaining\(-?\d+s\)")
_TOOK = re.compile(r"took = [0-9.]+[µnm]?s")
_CLIENT_UUID = re.compile(r"client-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# check perf redraws a progress bar with carriage returns and prints its verdicts right after it.
_PERF_BAR = re.compile(r"\r?\s*\d+ / \d+\s+[0-9.]+%( \d+m\d+s)?\r?")
_PERF_FIGURES = re.compile(r"\d+(\.\d+)?")
_PERF_VERDICT = re.compile(r"\b(PASS|FAIL)\b")
# A verdict is a timing measurement, and tests never assert timings: etcdctl words a failed check
# differently ("Slowest request took too long: 0.6s" for "PASS: Slowest request took 0.1s"), so a
# failed check is written in the passed check's words. The checks' order and count still compare.
_PERF_FAILED_WORDING = (
    (re.compile(r"^(FAIL: )?Throughput too low: "), "PASS: Throughput is "),
    (re.compile(r"^(FAIL: )?Slowest request took too long: "), "PASS: Slowest request took "),
    (re.compile(r"^(FAIL: )?Stddev too high: "), "PASS: Stddev is "),
)
# Columns of `endpoint status` in etcdctl's simple format that are measurements.
_STATUS_MEASURED = {3: "<size>", 6: "<term>", 7: "<index>", 8: "<index>"}


@dataclass
class Identities:
    """The run's volatile identities and their placeholders; leases and hashes are numbered as seen."""

    member_ids: dict[int, str]  # member ID -> name
    cluster_id: int
    urls: dict[str, str]  # "http://127.0.0.5:4242" -> "<client:etcd01>"
    scratch: str
    leases: dict[int, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)

    def add_lease(self, lease_id: int) -> None:
        self.leases.setdefault(lease_id, f"<lease:{len(self.leases) + 1}>")

    def hash_placeholder(self, value: str) -> str:
        return self.hashes.setdefault(value, f"<hash:{len(self.hashes) + 1}>")

    def replacements(self) -> list[tuple[re.Pattern[str], str]]:
        """(pattern, placeholder) for every identity, in both the hex and the decimal spelling."""
        pairs: list[tuple[re.Pattern[str], str]] = []
        for url, placeholder in sorted(self.urls.items(), key=lambda kv: -len(kv[0])):
            pairs.append((re.compile(re.escape(url) + r"(?!\d)"), placeholder))
            bare = url.split("://", 1)[-1]
            pairs.append((re.compile(r"(?<![\w.])" + re.escape(bare) + r"(?!\d)"), placeholder))
        pairs.append((re.compile(re.escape(self.scratch)), "<scratch>"))
        named = [
            *((member_id, f"<member:{name}>") for member_id, name in self.member_ids.items()),
            (self.cluster_id, "<cluster>"),
            *self.leases.items(),
        ]
        for number, placeholder in named:
            # hex as printed by etcdctl: member IDs unpadded, lease IDs zero-padded to 16 digits
            pairs.append((re.compile(rf"\b0*{number:x}\b"), placeholder))
            pairs.append((re.compile(rf"\b{number}\b"), f'"{placeholder}"'))
        return pairs


def replace_identities(text: str, identities: Identities) -> str:
    for pattern, placeholder in identities.replacements():
        text = pattern.sub(placeholder, text)
    return text


def mask_json_measurements(text: str, identities: Identities) -> str:
    text = _JSON_FIELD.sub(lambda m: f'"{m.group(1)}"{m.group(2)}"{_JSON_MEASUREMENTS[m.group(1)]}"', text)
    return _JSON_HASH.sub(lambda m: f'"hash"{m.group(1)}"{identities.hash_placeholder(m.group(2))}"', text)


def _endpoint_status(line: str) -> str:
    columns = line.split(", ")
    if len(columns) < 9:
        return line
    return ", ".join(_STATUS_MEASURED.get(i, column) for i, column in enumerate(columns))


def _endpoint_hashkv(identities: Identities) -> Callable[[str], str]:
    def line_of(line: str) -> str:
        head, sep, value = line.rpartition(", ")
        return f"{head}{sep}{identities.hash_placeholder(value)}" if sep and value.isdigit() else line

    return line_of


def _check_perf(line: str) -> str:
    for failed, passed in _PERF_FAILED_WORDING:
        line = failed.sub(passed, line)
    return _PERF_VERDICT.sub("<verdict>", _PERF_FIGURES.sub("<n>", line))


def _per_line(text: str, rewrite: Callable[[str], str]) -> str:
    return "".join(rewrite(line) + "\n" for line in text.splitlines())


def normalise_stdout(args: tuple[str, ...], text: str, identities: Identities) -> str:
    """etcdctl's stdout for `args` with identities and measurements replaced."""
    command = [a for a in args if not a.startswith("-")][:2]
    if command == ["check", "perf"]:
        # etcd 3.4 ends its progress bar with an empty line, 3.5 does not
        lines = [line for line in _PERF_BAR.sub("", text).splitlines() if line]
        text = _per_line("\n".join(lines), _check_perf)
    if command == ["endpoint", "status"]:
        text = _per_line(text, _endpoint_status)
    if command == ["endpoint", "hashkv"]:
        text = _per_line(text, _endpoint_hashkv(identities))
    if command == ["lease", "timetolive"]:
        text = _REMAINING.sub("remaining(<ttl>)", _JSON_TTL.sub(r'"ttl"\1"<ttl>"', text))
        text = _ATTACHED_KEYS.sub(lambda m: f"attached keys([{' '.join(sorted(m.group(1).split()))}])", text)
        text = _JSON_KEYS.sub(lambda m: f'"keys":[{",".join(sorted(m.group(1).split(",")))}]', text)
    text = _TOOK.sub("took = <took>", text)
    return replace_identities(mask_json_measurements(text, identities), identities)


def normalise_stderr(text: str, identities: Identities) -> str:
    """etcdctl's stderr (errors, health reports, the client's JSON log lines)."""
    text = _CLIENT_UUID.sub("client-<uuid>", _TOOK.sub("took = <took>", text))
    return replace_identities(mask_json_measurements(text, identities), identities)


def sort_lines(text: str) -> str:
    return "".join(line + "\n" for line in sorted(text.splitlines()))


def _sorted_items(items: list[object]) -> list[object]:
    return [json.loads(i) for i in sorted(json.dumps(v, separators=(",", ":")) for v in items)]


def sort_json_lists(text: str) -> str:
    """JSON whose top-level array (or the arrays among its top-level fields) is in a canonical order:
    etcdctl lists members, and `--cluster` results, in member-ID order, and IDs differ between runs."""
    value = json.loads(text)
    if isinstance(value, list):
        value = _sorted_items(value)
    elif isinstance(value, dict):
        value = {k: _sorted_items(v) if isinstance(v, list) else v for k, v in value.items()}
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"

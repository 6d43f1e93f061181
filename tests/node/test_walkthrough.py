"""The walkthroughs (docs/walkthrough.md and its Chinese translation) run as written.

A fenced block whose info string is `sh runnable` is a command a reader types; the `text output`
block right after it is what the reader sees (stdout and stderr). The blocks of one document run in
order in one shell session, as in a terminal (variables, background members and the current
directory carry over), inside a private network namespace: the documents use the article's fixed
addresses (127.0.0.1-3, ports 2379/2380), which are then free whatever else runs on the machine, and
a PID namespace whose end kills every member the document started. A block fails when any of its
commands fails (`sh runnable fails`: when none does) or when its output differs from the shown one
after `normalise` (member IDs, times, durations, leader flags). Plain `sh` blocks are not run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness.process import child_environment

DOCS = Path(__file__).resolve().parents[2] / "docs"
WALKTHROUGHS = ("walkthrough.md", "walkthrough.zh.md")
BLOCK_TIMEOUT_SECONDS = 90.0
_FENCE = re.compile(r"^```(.*)$")


# --------------------------------------------------------------------------------------------------
# Pure: blocks of a document, output normalisation


@dataclass(frozen=True)
class Step:
    """One runnable block: its commands, the output shown after it (None: not shown), where it is."""

    line: int
    script: str
    expected: str | None
    fails: bool = False
    unordered: bool = False


def fenced_blocks(text: str) -> list[tuple[int, str, str]]:
    """(line number of the opening fence, info string, body) of every fenced block."""
    blocks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"line {index + 1}: fenced block never closed")
        blocks.append((index + 1, opening.group(1).strip(), "\n".join(lines[index + 1:end]) + "\n"))
        index = end + 1
    return blocks


def steps(text: str) -> list[Step]:
    """The runnable blocks in order, each with the output block that follows it (if any)."""
    result: list[Step] = []
    for line, info, body in fenced_blocks(text):
        words = info.split()
        if words[:2] == ["sh", "runnable"]:
            result.append(Step(line, body, None, fails="fails" in words[2:]))
        elif words[:2] == ["text", "output"]:
            if not result or result[-1].expected is not None:
                raise ValueError(f"line {line}: an output block must follow a runnable block")
            previous = result.pop()
            result.append(Step(previous.line, previous.script, body, previous.fails,
                               unordered="unordered" in words[2:]))
    return result


_NORMALISERS = (
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"took = [0-9.]+[µnm]?s"), "took = <duration>"),
    (re.compile(r"isLeader=(true|false)"), "isLeader=<bool>"),
)
_MEMBER_ID = re.compile(r"\b[0-9a-f]{12,16}\b")


def normalise(text: str, *, unordered: bool = False) -> list[str]:
    """The lines of `text` with what differs from run to run replaced: times, durations, leader
    flags; member and cluster IDs become <id1>, <id2>... in order of first appearance, so the same
    ID must still appear in the same places."""
    ids: dict[str, str] = {}

    def number_id(match: re.Match[str]) -> str:
        return ids.setdefault(match.group(0), f"<id{len(ids) + 1}>")

    lines = []
    for line in text.rstrip().splitlines():
        for pattern, replacement in _NORMALISERS:
            line = pattern.sub(replacement, line)
        lines.append(_MEMBER_ID.sub(number_id, line.rstrip()))
    return sorted(lines) if unordered else lines


# --------------------------------------------------------------------------------------------------
# The shell session


def namespaces_available() -> str | None:
    """Why private user/network/PID namespaces cannot be made here, or None when they can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) not found"
    probe = subprocess.run(["unshare", "--map-root-user", "--net", "--pid", "--fork", "true"],
                           capture_output=True, text=True, timeout=30, check=False)
    return None if probe.returncode == 0 else f"cannot create namespaces: {probe.stderr.strip()}"


# Runs inside the namespaces: loopback up, then each block named on fd 3, sourced with stdin from
# /dev/null, its output and status in files; the ERR trap records any command of it that failed.
# The driver's own variables have names no document uses.
_DRIVER = r"""
ip link set lo up
while read -r _wt_step <&3; do
    rm -f "$STEPS/$_wt_step.err"
    trap 'echo "line $LINENO: status $?" >> "$STEPS/$_wt_step.err"' ERR
    source "$STEPS/$_wt_step.sh" </dev/null >"$STEPS/$_wt_step.out" 2>&1 3<&-
    _wt_status=$?
    trap - ERR
    echo "$_wt_status" > "$STEPS/$_wt_step.status"
done 3<"$STEPS/fifo"
"""


@dataclass(frozen=True)
class Outcome:
    output: str
    status: int
    failed_commands: str


class Session:
    """One shell in fresh namespaces, working in `workdir`; `close` ends it and everything it started."""

    def __init__(self, workdir: Path) -> None:
        self.steps_dir = workdir / ".steps"
        self.steps_dir.mkdir(parents=True)
        tmp = workdir / ".tmp"  # petcd's private sockets go to $TMPDIR: not shared with other runs
        tmp.mkdir()
        fifo = self.steps_dir / "fifo"
        os.mkfifo(fifo)
        env = child_environment({"STEPS": str(self.steps_dir), "TMPDIR": str(tmp)})
        self.process = subprocess.Popen(
            ["unshare", "--map-root-user", "--net", "--pid", "--fork", "--kill-child",
             "bash", "--norc", "--noprofile", "-c", _DRIVER],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        # Read-write: opening a FIFO this way never blocks, even if the shell failed to start.
        self.commands = os.fdopen(os.open(fifo, os.O_RDWR), "w")
        self.count = 0

    def run(self, script: str, timeout: float = BLOCK_TIMEOUT_SECONDS) -> Outcome:
        self.count += 1
        name = str(self.count)
        (self.steps_dir / f"{name}.sh").write_text(script)
        self.commands.write(name + "\n")
        self.commands.flush()
        status_file = self.steps_dir / f"{name}.status"
        deadline = time.monotonic() + timeout
        while not status_file.exists() or not status_file.read_text().endswith("\n"):
            if self.process.poll() is not None:
                raise AssertionError(f"the shell session ended (status {self.process.returncode})")
            if time.monotonic() > deadline:
                output = (self.steps_dir / f"{name}.out").read_text(errors="replace")
                raise AssertionError(f"block still running after {timeout} s; its output so far:\n{output}")
            time.sleep(0.05)
        errors = self.steps_dir / f"{name}.err"
        return Outcome((self.steps_dir / f"{name}.out").read_text(errors="replace"),
                       int(status_file.read_text()), errors.read_text() if errors.exists() else "")

    def close(self) -> None:
        """Kill the shell's process group; with it the namespace's first process, and so every
        process in the namespace."""
        self.commands.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def require_namespaces() -> None:
    """Skip the calling test where namespaces cannot be made (fail instead in CI)."""
    reason = namespaces_available()
    if reason is None:
        return
    if os.environ.get("PETCD_REQUIRE_ALL_IMPLEMENTATIONS"):
        pytest.fail(reason)
    pytest.skip(reason)


def check_step(step: Step, outcome: Outcome, document: str) -> None:
    """AssertionError naming the block (document and line) when it did not do what it shows."""
    where = f"{document}:{step.line}"
    failed = outcome.status != 0 or bool(outcome.failed_commands)
    if step.fails and not failed:
        raise AssertionError(f"{where}: expected a command to fail, all succeeded:\n{outcome.output}")
    if not step.fails and failed:
        what = outcome.failed_commands.strip() or f"status {outcome.status}"
        raise AssertionError(f"{where}: a command failed ({what})\n--- block:\n{step.script}"
                             f"--- output:\n{outcome.output}")
    if step.expected is not None:
        shown = normalise(step.expected, unordered=step.unordered)
        seen = normalise(outcome.output, unordered=step.unordered)
        assert seen == shown, (f"{where}: output differs\n--- shown:\n{step.expected}"
                               f"--- printed:\n{outcome.output}")


def run_document(text: str, document: str, workdir: Path) -> int:
    """Run every runnable block of `text` in order; the number of blocks run. Stops at the first
    block that fails (AssertionError)."""
    runnable = steps(text)
    session = Session(workdir)
    try:
        for step in runnable:
            try:
                outcome = session.run(step.script)
            except AssertionError as exc:
                raise AssertionError(f"{document}:{step.line}: {exc}\n{log_tails(workdir)}") from None
            check_step(step, outcome, document)
    finally:
        session.close()
    return len(runnable)


def log_tails(workdir: Path, lines: int = 12) -> str:
    """The end of every log file the document's commands wrote, to show why a block hung."""
    return "\n".join(f"--- {log.name}:\n" + "\n".join(line[:400] for line in log.read_text(errors="replace")
                                                     .splitlines()[-lines:])
                     for log in sorted(workdir.glob("*.log")))


# --------------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def namespaces() -> None:
    require_namespaces()


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty directory for one run (short path: unix socket names are limited to 107 bytes)."""
    path = tmp_path_factory.mktemp("wt")
    yield path
    if not os.environ.get("PETCD_KEEP_SANDBOX"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("document", WALKTHROUGHS)
def test_walkthrough_runs_as_written(document: str, namespaces: None, workdir: Path) -> None:
    text = (DOCS / document).read_text(encoding="utf-8")
    assert run_document(text, document, workdir) >= 8


def _break(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, f"{old!r} is no longer in the walkthrough"
    return text.replace(old, new, 1)


@pytest.mark.parametrize(("old", "new", "complaint"), [
    ("etcdctl get site", "etcdctl get sight", "output differs"),  # the command works, prints other text
    ("etcdctl put site", "etcdctl putt site", "a command failed"),  # the command itself fails
])
def test_a_broken_command_fails_the_walkthrough(old: str, new: str, complaint: str, namespaces: None,
                                               workdir: Path) -> None:
    broken = _break((DOCS / "walkthrough.md").read_text(encoding="utf-8"), old, new)
    with pytest.raises(AssertionError, match=complaint) as failure:
        run_document(broken, "walkthrough.md (broken copy)", workdir)
    assert "walkthrough.md (broken copy):" in str(failure.value)


def test_the_translation_runs_the_same_commands() -> None:
    """The Chinese walkthrough is a translation: the same runnable blocks (comments aside) and the
    same shown output, in the same order."""
    def commands(document: str) -> list[tuple[list[str], str | None]]:
        text = (DOCS / document).read_text(encoding="utf-8")
        return [([line for line in s.script.splitlines() if not line.lstrip().startswith("#")], s.expected)
                for s in steps(text)]

    assert commands("walkthrough.zh.md") == commands("walkthrough.md")


def test_normalise_keeps_what_matters() -> None:
    listing = ("a90fc0dcf4d3f762, started, etcd01\n9952afdf8cb3c916, started, etcd03\n"
               "member a90fc0dcf4d3f762 is healthy\n")
    other_ids = listing.replace("a90fc0dcf4d3f762", "1111111111111111").replace(
        "9952afdf8cb3c916", "2222222222222222")
    assert normalise(listing) == normalise(other_ids)
    swapped = listing.replace("member a90fc0dcf4d3f762", "member 9952afdf8cb3c916")
    assert normalise(swapped) != normalise(listing)  # the same member must be named in both places
    assert normalise("x isLeader=true\ny isLeader=false") == normalise("x isLeader=false\ny isLeader=true")
    assert normalise("b\na\n", unordered=True) == normalise("a\nb", unordered=True)
    assert normalise("b\na\n") != normalise("a\nb")
    assert normalise("took = 1.2ms") == normalise("took = 30µs")


def test_steps_pair_commands_with_their_output() -> None:
    text = "x\n```sh runnable\necho a\n```\n\n```text output\na\n```\n```sh\nnot run\n```\n" \
           "```sh runnable fails\nfalse\n```\n"
    assert steps(text) == [Step(2, "echo a\n", "a\n"), Step(12, "false\n", None, fails=True)]
    with pytest.raises(ValueError, match="must follow"):
        steps("```text output\na\n```\n")

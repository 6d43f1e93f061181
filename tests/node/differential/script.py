"""The etcdctl session language: one etcdctl command per line, parsed into steps (pure).

    # comment                       ignored, as are blank lines
    put foo bar                     etcdctl arguments (shell-quoted); ${VAR} is substituted at run time
    [sort] member list              output options in brackets: sort (lines), sort-json (array
                                    elements), mask-exit (exit status and PASS/FAIL verdicts vary),
                                    etcdctl35 (run etcd 3.5's etcdctl: flags 3.4's lacks, e.g. --count-only)
    txn -w json <<END               a here-document: the lines up to END are etcdctl's stdin
                                    (${VAR} substituted there too)
    lease grant 60 => L1            capture: ${L1} is the ID of the lease this command granted
    &W1 watch --prefix foo          start in the background as W1 ...
    wait W1 6                       ... and collect it once it has printed 6 lines (bounded)

Variables the runner provides: ${EP1}..${EPn} (client URL of member n), ${ALL} (all client URLs),
${ID1}..${IDn} (member IDs in hex), ${IDLAST} (the last member's ID), ${TMP} (a scratch directory).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

OPTIONS = frozenset({"sort", "sort-json", "mask-exit", "etcdctl35"})
_OPTIONS = re.compile(r"^\[([a-z0-9, -]+)\]\s*")
_HEREDOC = re.compile(r"\s<<(\w+)$")
_CAPTURE = re.compile(r"\s=>\s*(\w+)$")
_BACKGROUND = re.compile(r"^&(\w+)\s+")
_WAIT = re.compile(r"^wait\s+(\w+)\s+(\d+)$")


@dataclass(frozen=True)
class Command:
    """Run etcdctl with `args`; its output is part of the transcript."""

    line: str  # as written in the script, shown in the transcript
    args: tuple[str, ...]
    options: frozenset[str] = frozenset()
    stdin: str | None = None
    capture: str | None = None
    background: str | None = None


@dataclass(frozen=True)
class Wait:
    """Collect background command `name` once its stdout has `lines` lines."""

    line: str
    name: str
    lines: int


Step = Command | Wait


class ScriptError(ValueError):
    pass


def parse(text: str) -> list[Step]:
    steps: list[Step] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i].strip()
        i += 1
        if not raw or raw.startswith("#"):
            continue
        wait = _WAIT.match(raw)
        if wait:
            steps.append(Wait(raw, wait.group(1), int(wait.group(2))))
            continue
        body, options, stdin, capture, background = raw, frozenset[str](), None, None, None
        if match := _OPTIONS.match(body):
            options = frozenset(o.strip() for o in match.group(1).split(","))
            if not options <= OPTIONS:
                raise ScriptError(f"line {i}: unknown options {sorted(options - OPTIONS)}")
            body = body[match.end() :]
        if match := _BACKGROUND.match(body):
            background, body = match.group(1), body[match.end() :]
        if match := _HEREDOC.search(body):
            end, body = match.group(1), body[: match.start()]
            try:
                stop = lines.index(end, i)
            except ValueError:
                raise ScriptError(f"line {i}: here-document {end} is not closed") from None
            stdin = "".join(line + "\n" for line in lines[i:stop])
            i = stop + 1
        if match := _CAPTURE.search(body):
            capture, body = match.group(1), body[: match.start()]
        steps.append(Command(raw, tuple(shlex.split(body)), options, stdin, capture, background))
    return steps


def substitute(args: tuple[str, ...], variables: dict[str, str]) -> tuple[str, ...]:
    """Replace ${NAME} in every argument; an unknown name is a script error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise ScriptError(f"unknown variable ${{{name}}}")
        return variables[name]

    return tuple(re.sub(r"\$\{(\w+)\}", value, arg) for arg in args)

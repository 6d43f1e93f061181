"""Running an etcdctl session against a live cluster and rendering its normalised transcript."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness import Cluster
from harness.implementations import ETCD35_BIN, ETCDCTL
from harness.process import child_environment

from .normalise import Identities, normalise_stderr, normalise_stdout, sort_json_lists, sort_lines
from .script import Command, ScriptError, Step, Wait, parse, substitute

COMMAND_TIMEOUT = 120.0  # check perf runs for 60 s
WAIT_TIMEOUT = 15.0
_LEASE_GRANTED = re.compile(r"^lease ([0-9a-f]+) granted")


@dataclass
class _Background:
    command: Command
    process: subprocess.Popen[str]
    stdout_path: Path
    stderr_path: Path


def identities_of(cluster: Cluster, scratch: Path) -> Identities:
    urls = {}
    for member in cluster.members:
        urls[member.address.client_url] = f"<client:{member.name}>"
        urls[member.address.peer_url] = f"<peer:{member.name}>"
    ids = cluster.member_ids()
    return Identities({i: n for n, i in ids.items()}, cluster.cluster_id(), urls, str(scratch))


def variables_of(cluster: Cluster, scratch: Path) -> dict[str, str]:
    ids = cluster.member_ids()
    variables = {"ALL": ",".join(cluster.endpoints), "TMP": str(scratch)}
    for n, member in enumerate(cluster.members, start=1):
        variables[f"EP{n}"] = member.client_url
        variables[f"ID{n}"] = f"{ids[member.name]:x}"
    variables["IDLAST"] = f"{ids[cluster.members[-1].name]:x}"
    return variables


class SessionRunner:
    """Runs one script's steps in order; endpoints default to member 1 (made leader beforehand)."""

    def __init__(self, cluster: Cluster, scratch: Path):
        self.cluster = cluster
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self.identities = identities_of(cluster, scratch)
        self.variables = variables_of(cluster, scratch)
        self.background: dict[str, _Background] = {}
        self.out: list[str] = []

    def argv(self, command: Command) -> list[str]:
        args = substitute(command.args, self.variables)
        endpoint = (
            [] if any(a.startswith("--endpoints") for a in args) else [f"--endpoints={self.variables['EP1']}"]
        )
        program = str(ETCD35_BIN / "etcdctl") if "etcdctl35" in command.options else ETCDCTL
        return [program, *endpoint, *args]

    def record(self, command: Command, stdout: str, stderr: str, status: int | None) -> None:
        args = substitute(command.args, self.variables)
        granted = _LEASE_GRANTED.match(stdout)
        if granted:
            self.identities.add_lease(int(granted.group(1), 16))
        if command.capture:
            if not granted:
                raise ScriptError(f"{command.line}: no lease ID to capture in {stdout!r}")
            self.variables[command.capture] = granted.group(1)
        stdout = normalise_stdout(args, stdout, self.identities)
        if "sort-json" in command.options and stdout.strip():
            stdout = sort_json_lists(stdout)
        stderr = normalise_stderr(stderr, self.identities)
        if "sort" in command.options:
            stdout, stderr = sort_lines(stdout), sort_lines(stderr)
        self.out.append(f"$ {command.line}\n")
        if command.stdin:
            self.out.append("".join(f"< {line}\n" for line in command.stdin.splitlines()))
        self.out.append(stdout if not stdout or stdout.endswith("\n") else stdout + "\n[no newline]\n")
        self.out.append("".join(f"! {line}\n" for line in stderr.splitlines()))
        shown = "<masked>" if "mask-exit" in command.options else status
        if shown != 0:
            self.out.append(f"[exit {shown}]\n")

    def run_command(self, command: Command) -> None:
        if command.background:
            name = command.background
            out, err = self.scratch / f"{name}.stdout", self.scratch / f"{name}.stderr"
            with open(out, "w") as o, open(err, "w") as e:
                process = subprocess.Popen(
                    self.argv(command),
                    stdout=o,
                    stderr=e,
                    text=True,
                    env=child_environment({"ETCDCTL_API": "3"}),
                )
            self.background[name] = _Background(command, process, out, err)
            return
        done = subprocess.run(
            self.argv(command),
            input=None if command.stdin is None else substitute((command.stdin,), self.variables)[0],
            capture_output=True,
            text=True,
            env=child_environment({"ETCDCTL_API": "3"}),
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        self.record(command, done.stdout, done.stderr, done.returncode)

    def run_wait(self, wait: Wait) -> None:
        job = self.background.pop(wait.name)
        deadline = time.monotonic() + WAIT_TIMEOUT
        while time.monotonic() < deadline and job.process.poll() is None:
            if len(job.stdout_path.read_text().splitlines()) >= wait.lines:
                break
            time.sleep(0.05)
        job.process.kill()
        job.process.wait(timeout=10)
        self.record(job.command, job.stdout_path.read_text(), job.stderr_path.read_text(), 0)
        self.out.append(f"# {wait.line}\n")

    def run(self, steps: list[Step]) -> str:
        try:
            for step in steps:
                if isinstance(step, Wait):
                    self.run_wait(step)
                else:
                    self.run_command(step)
        finally:
            for job in self.background.values():
                job.process.kill()
                job.process.wait(timeout=10)
        return "".join(self.out)


def run_session(cluster: Cluster, script: Path, scratch: Path) -> str:
    """The normalised transcript of `script` against `cluster`, after making member 1 the leader."""
    if len(cluster.members) > 1:
        cluster.move_leader(cluster.members[0])
    return SessionRunner(cluster, scratch).run(parse(script.read_text()))

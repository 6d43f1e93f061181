"""Running Debian's etcdctl (the one client every test uses) against test members."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from .implementations import ETCDCTL
from .process import child_environment


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Result:
        """Self, or AssertionError with the whole exchange when etcdctl failed."""
        if self.returncode != 0:
            command = " ".join(self.argv)
            raise AssertionError(
                f"{command} exited {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            )
        return self


def etcdctl(
    args: Sequence[str],
    endpoints: Sequence[str],
    *,
    api: str = "3",
    stdin: str | None = None,
    timeout: float = 30.0,
    program: str = ETCDCTL,
    wrapper: Sequence[str] = (),
) -> Result:
    """Run `etcdctl --endpoints=... args` with ETCDCTL_API=`api`; never hangs longer than `timeout`.
    Without endpoints etcdctl finds them itself (e.g. --discovery-srv); `wrapper` prefixes the argv."""
    endpoint_flag = [f"--endpoints={','.join(endpoints)}"] if endpoints else []
    argv = (*wrapper, program, *endpoint_flag, *args)
    done = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        env=child_environment({"ETCDCTL_API": api}),
        timeout=timeout,
        check=False,
    )
    return Result(argv, done.returncode, done.stdout, done.stderr)

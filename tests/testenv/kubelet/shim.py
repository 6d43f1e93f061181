"""The first process of a container, started by the kubelet as
`ip netns exec <pod netns> unshare --uts python3 shim.py <spec.json>`: it is already in the Pod's
network namespace and in a mount namespace of its own (ip netns exec makes one and bind-mounts the
Pod's /etc/hosts and /etc/resolv.conf there). It sets the hostname, bind-mounts the volumes at their
container paths (over the host's root filesystem, visible to this container only), then runs the
program as its child and writes its exit status to a file, so a restarted kubelet learns how a
container it did not start ended. Signals reach the program directly (the kubelet signals the whole
process group); the shim waits for it and ignores them. Standard library only.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path


def bind_mount(source: str, target: str, read_only: bool) -> None:
    target_path = Path(target)
    if Path(source).is_dir():
        target_path.mkdir(parents=True, exist_ok=True)
    else:
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target_path.touch(exist_ok=True)
    subprocess.run(["mount", "--bind", source, target], check=True)
    if read_only:
        subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    exit_file = Path(spec["exit_file"])
    socket.sethostname(spec["hostname"])
    for source, target, read_only in spec["mounts"]:
        bind_mount(source, target, read_only)
    # A handler, not SIG_IGN: an ignored signal would stay ignored in the program after exec.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    try:
        child = subprocess.Popen(spec["argv"], env=spec["env"], cwd=spec["workdir"])
    except OSError as error:
        print(f"exec {spec['argv'][0]}: {error}", file=sys.stderr, flush=True)
        exit_file.write_text("128")
        return 128
    Path(spec["started_file"]).write_text(str(child.pid))  # mounts done, program running
    code = child.wait()
    status = 128 - code if code < 0 else code
    exit_file.write_text(str(status))
    return status


if __name__ == "__main__":
    sys.exit(main())

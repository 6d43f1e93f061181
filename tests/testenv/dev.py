"""`make dev`: the local cluster for humans. Starts everything, prints the KUBECONFIG to use and
runs until interrupted."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from testenv.cluster import LocalCluster


def main() -> int:
    run_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    cluster = LocalCluster(run_dir)
    cluster.start(lambda line: print(line, flush=True))
    print(f"\nexport KUBECONFIG={cluster.kubeconfig}\n", flush=True)
    print("Ctrl-C stops the cluster.", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    print("stopping...", flush=True)
    cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

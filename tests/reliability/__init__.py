"""Reliability harness: a nemesis, a recorded workload and checkers, run against any implementation
in the node harness's registry (tests/node/harness).

The node harness is imported as the top-level package `harness`, as tests/node's own tests do; its
directory is put on sys.path here so that this package also works when tests/node is not collected.
"""

import sys
from pathlib import Path

_NODE_TESTS = str(Path(__file__).resolve().parents[1] / "node")
if _NODE_TESTS not in sys.path:
    sys.path.insert(0, _NODE_TESTS)

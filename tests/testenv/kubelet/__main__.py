"""`python -m testenv.kubelet <config.json>` (with the tests directory on PYTHONPATH)."""

import sys
from pathlib import Path

from testenv.kubelet.agent import main

main(Path(sys.argv[1]))

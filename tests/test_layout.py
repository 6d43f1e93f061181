"""Guards on the project's layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_operator_is_the_standard_library() -> None:
    # operator/ holds the petcd_operator package but must never shadow the stdlib's `operator`.
    # Run from the repository root, where a stray operator/__init__.py would win.
    out = subprocess.run(
        [sys.executable, "-c", "import operator, sys; print(operator.__file__); print(operator.itemgetter)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    first = out.splitlines()[0]
    assert not first.startswith(str(ROOT)), f"`import operator` resolved to the project: {first}"
    assert not (ROOT / "operator" / "__init__.py").exists()


def test_both_packages_import() -> None:
    import petcd
    import petcd_operator

    assert petcd.__version__ == petcd_operator.__version__

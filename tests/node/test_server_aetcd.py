"""The asyncio client aetcd (PyPI) against a petcd process: put/get/range/txn/watch/lease."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness import Implementation, Sandbox

PETCD = Implementation("petcd", ("petcd",))
SESSION = Path(__file__).parent / "clients" / "aetcd_session.py"


def test_aetcd_session(sandbox: Sandbox) -> None:
    PETCD.require()
    cluster = sandbox.static_cluster(PETCD, size=1, names=["solo"])
    host, port = cluster.endpoints[0].removeprefix("http://").split(":")
    run = subprocess.run(
        [sys.executable, str(SESSION), host, port], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["put_revision"] == 2
    assert seen["get"] == ["one", 1, 2]
    assert seen["prefix"] == ["/a/1", "/a/2"]
    assert seen["range"] == ["/a/1", "/a/2", "/b/1"]
    assert seen["txn"] == [True, False, "uno"]
    assert seen["watch"] == [["PUT", "/w/x", "1"], ["PUT", "/w/y", "2"], ["DELETE", "/w/x", ""]]
    assert seen["lease"] == [60, ["/leased"]]
    assert seen["after_revoke"] is True

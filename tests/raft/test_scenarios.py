"""Readable scenario scripts (tests/raft/testdata/*.txt, one per feature family): commands in, expected
state out, in the datadriven style of etcd-io/raft. REWRITE=1 rewrites the expected outputs (review the
diff before committing it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.raft.scenario import Interpreter, parse, render

TESTDATA = Path(__file__).parent / "testdata"
SCRIPTS = sorted(TESTDATA.glob("*.txt"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_scenario(script: Path) -> None:
    blocks = parse(script)
    interpreter = Interpreter()
    outputs = [interpreter.run(block.command) for block in blocks]
    if os.environ.get("REWRITE"):
        script.write_text(render(script, blocks, outputs))
        return
    for block, output in zip(blocks, outputs, strict=True):
        assert output == block.expected, f"{script.name}:{block.line}: {block.command}"


def test_every_feature_family_has_a_script() -> None:
    expected = {"figure8", "figure8_broken", "prevote", "check_quorum", "learner", "leader_transfer",
                "read_index", "snapshot", "remove_leader", "proposals", "membership"}
    assert expected <= {script.stem for script in SCRIPTS}

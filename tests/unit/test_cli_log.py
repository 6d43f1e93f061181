"""petcd.log: zap-style JSON lines, the member name in each, --log-level honoured."""

from __future__ import annotations

import json
import re
from pathlib import Path

from petcd import log


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_lines_like_zap(tmp_path: Path) -> None:
    output = tmp_path / "petcd.log"
    log.configure("infra0", "info", [str(output)])
    logger = log.get_logger("server")
    logger.info("became leader", term=3, members=("a", "b"), ctx=b"\x01x")
    logger.debug("not shown at info")
    [line] = read_lines(output)
    assert list(line)[:5] == ["level", "ts", "caller", "msg", "name"]
    assert line["level"] == "info"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["ts"]))
    assert str(line["caller"]).startswith("test_cli_log.py:")
    assert (line["msg"], line["name"]) == ("became leader", "infra0")
    assert (line["term"], line["members"]) == (3, ["a", "b"])
    assert line["ctx"] == "\x01x"


def test_level_is_honoured(tmp_path: Path) -> None:
    output = tmp_path / "petcd.log"
    log.configure("m", "warn", [str(output)])
    logger = log.get_logger("transport")
    logger.info("hidden")
    logger.warn("shown", peer="8e9e05c52164694d")
    logger.error("also shown")
    shown = [(line["level"], line["msg"]) for line in read_lines(output)]
    assert shown == [("warn", "shown"), ("error", "also shown")]
    assert not logger.enabled("info") and logger.enabled("error")


def test_exceptions_carry_the_error_and_a_stacktrace_on_one_line(tmp_path: Path) -> None:
    output = tmp_path / "petcd.log"
    log.configure("m", "debug", [str(output)])
    try:
        raise ValueError("bad frame")
    except ValueError:
        log.get_logger("transport").exception("dropping connection", peer=1)
    [line] = read_lines(output)
    assert line["error"] == "ValueError: bad frame"
    assert "Traceback" in str(line["stacktrace"])


def test_reconfiguring_replaces_the_outputs(tmp_path: Path) -> None:
    first, second = tmp_path / "1.log", tmp_path / "2.log"
    log.configure("m", "info", [str(first)])
    log.configure("m", "info", [str(second)])
    log.get_logger("x").info("once")
    assert first.read_text() == ""
    assert len(read_lines(second)) == 1

"""Structured logs as etcd's zap logger writes them: one JSON object per line.

    {"level":"info","ts":"2026-11-24T21:16:54.947Z","caller":"server/loop.py:88","msg":"...","name":"m1",...}

`configure(name, level, outputs)` is called once at start; `get_logger("server")` gives a `Logger` whose
methods take the message and the fields as keywords: `log.info("became leader", term=3)`. The member's
name is in every line. Built on the standard `logging` module, so library logs (aiohttp, grpc) come out in
the same shape.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

# zap's level names; etcd's --log-level takes these.
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "dpanic": logging.CRITICAL,
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
_ZAP_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
              logging.CRITICAL: "fatal"}
ROOT = "petcd"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller(pathname: str, lineno: int) -> str:
    """`server/loop.py:88` for petcd's own files (like zap's short caller), else the file's base name."""
    path = os.path.abspath(pathname)
    if path.startswith(_PACKAGE_DIR + os.sep):
        path = os.path.relpath(path, _PACKAGE_DIR)
    else:
        path = os.path.basename(path)
    return f"{path}:{lineno}"


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class ZapJSONFormatter(logging.Formatter):
    """Renders a record as one zap-style JSON line, with the member name and the record's fields."""

    def __init__(self, member_name: str) -> None:
        super().__init__()
        self.member_name = member_name

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        line: dict[str, Any] = {
            "level": _ZAP_NAMES.get(record.levelno, "info"),
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "caller": _caller(record.pathname, record.lineno),
            "msg": record.getMessage(),
            "name": self.member_name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
            line["stacktrace"] = self.formatException(record.exc_info)
        return json.dumps(line, default=_json_default, ensure_ascii=False, separators=(",", ":"))


class Logger:
    """A thin front to a standard logger: messages plus keyword fields."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, msg: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, "%s", msg, extra={"fields": fields}, stacklevel=3, exc_info=exc_info)

    def debug(self, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, msg, fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, fields)

    def exception(self, msg: str, **fields: Any) -> None:
        """An error with the current exception's traceback in `stacktrace`."""
        self._log(logging.ERROR, msg, fields, exc_info=True)

    def enabled(self, level: str) -> bool:
        return self._logger.isEnabledFor(LEVELS[level])


def get_logger(component: str) -> Logger:
    """The logger of one part of petcd, e.g. get_logger("transport")."""
    return Logger(logging.getLogger(f"{ROOT}.{component}"))


def _open_output(output: str) -> IO[str]:
    if output == "stderr":
        return sys.stderr
    if output == "stdout":
        return sys.stdout
    return open(output, "a", encoding="utf-8")  # kept open for the process's life


def configure(member_name: str, level: str = "info", outputs: Sequence[str] = ("stderr",)) -> None:
    """Route every log record (petcd's and libraries') to `outputs` as zap JSON lines at `level`."""
    formatter = ZapJSONFormatter(member_name)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "petcd", False):
            root.removeHandler(handler)
    for output in outputs:
        handler = logging.StreamHandler(_open_output(output))
        handler.setFormatter(formatter)
        handler.petcd = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(LEVELS[level])
    # Libraries are chatty at debug; keep them at warn unless petcd itself is at debug.
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)

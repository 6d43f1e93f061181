"""petcd.notify: READY=1 to $NOTIFY_SOCKET, received on a real unix datagram socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from petcd import notify


def test_ready_reaches_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        receiver.settimeout(10)
        assert notify.ready({"NOTIFY_SOCKET": path}) is True
        assert receiver.recv(4096) == b"READY=1"
        assert notify.stopping({"NOTIFY_SOCKET": path}) is True
        assert receiver.recv(4096) == b"STOPPING=1"


def test_ready_reaches_an_abstract_socket() -> None:
    name = f"petcd-test-{os.getpid()}-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(b"\0" + name.encode())
        receiver.settimeout(10)
        assert notify.ready({"NOTIFY_SOCKET": "@" + name}) is True
        assert receiver.recv(4096) == b"READY=1"


def test_without_notify_socket_nothing_is_sent() -> None:
    assert notify.ready({}) is False
    assert notify.ready({"NOTIFY_SOCKET": ""}) is False


def test_a_missing_socket_is_an_error_the_caller_sees(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        notify.ready({"NOTIFY_SOCKET": str(tmp_path / "absent.sock")})

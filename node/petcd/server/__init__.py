"""The server shell: Ready loop, apply, request waiting, read index, leases, watches, membership."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from petcd.config import Config


def run(config: Config) -> int:
    """Serve as one member until SIGTERM/SIGINT (called by petcd.cli). Imported lazily so that
    `petcd --help` and the pure modules under petcd.server do not load the whole server."""
    from petcd.server.run import run as run_member

    return run_member(config)

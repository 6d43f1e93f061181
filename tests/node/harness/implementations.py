"""The etcd-compatible servers the node tests can start, by name.

Adding an implementation (e.g. petcd) is one line in IMPLEMENTATIONS. Every implementation takes
etcd's flags; the harness only chooses the program and its environment.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_REPOSITORY = Path(__file__).resolve().parents[3]


def _pinned_etcd_version() -> str:
    """The etcd 3.5 version tools/etcd/go.mod pins (what tools/etcd/build.sh builds)."""
    go_mod = (_REPOSITORY / "tools" / "etcd" / "go.mod").read_text()
    match = re.search(r"^\s*go\.etcd\.io/etcd/server/v3 v(\S+)", go_mod, re.MULTILINE)
    if match is None:
        raise RuntimeError("tools/etcd/go.mod does not pin go.etcd.io/etcd/server/v3")
    return match.group(1)


ETCD35_VERSION = _pinned_etcd_version()
TOOLS_DIR = Path(os.environ.get("PETCD_TOOLS_DIR", Path.home() / ".cache" / "petcd-tools"))
ETCD35_BIN = TOOLS_DIR / f"etcd-{ETCD35_VERSION}" / "bin"

# Debian's etcd 3.4 refuses to start on architectures it calls unsupported unless told otherwise.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x"}
_ETCD34_SUPPORTED = {"amd64", "ppc64le"}


def _etcd34_env() -> dict[str, str]:
    goarch = _GOARCH.get(platform.machine(), platform.machine())
    return {} if goarch in _ETCD34_SUPPORTED else {"ETCD_UNSUPPORTED_ARCH": goarch}


@dataclass(frozen=True)
class Implementation:
    """How to run one etcd-compatible server: its argv prefix and extra environment."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    # The version the server reports (Status.version, /version); None when it is not etcd.
    etcd_version: str | None = None
    how_to_install: str = ""

    def missing(self) -> str | None:
        """Why this implementation cannot run here, or None when it can."""
        program = self.argv[0]
        if shutil.which(program) is None:
            return f"{self.name}: {program} not found {self.how_to_install}".rstrip()
        return None

    def require(self) -> None:
        """Skip the calling test when the implementation is not installed (fail instead in CI)."""
        reason = self.missing()
        if reason is None:
            return
        if os.environ.get("PETCD_REQUIRE_ALL_IMPLEMENTATIONS"):
            pytest.fail(reason)
        pytest.skip(reason)


IMPLEMENTATIONS: dict[str, Implementation] = {
    "etcd34": Implementation(
        "etcd34", ("/usr/bin/etcd",), _etcd34_env(), "3.4.23", "(apt-get install etcd-server)"
    ),
    "etcd35": Implementation("etcd35", (str(ETCD35_BIN / "etcd"),), {}, ETCD35_VERSION, "(make tools-etcd)"),
    "petcd": Implementation("petcd", ("petcd",), {}, None, "(pip install -e .)"),
}

# The Debian etcdctl 3.4 is the one client all tests use (API v3 by default, v2 with ETCDCTL_API=2).
ETCDCTL = "/usr/bin/etcdctl"
BENCHMARK = ETCD35_BIN / "benchmark"

"""The Go programs the local control plane runs: where they are, and building them once.

kube-apiserver, kube-controller-manager and kube-scheduler (and kubectl when none is on PATH) come from
k8s.io/kubernetes pinned in tools/k8s/go.mod; CoreDNS and helm from their pinned module versions.
Everything lands in ~/.cache/petcd-tools/<key>/bin, the key naming every pinned version and a hash of
the go.mod/go.sum, so a changed pin builds a fresh set and an unchanged one builds nothing.
KUBEBUILDER_ASSETS, when set, is searched first (the envtest layout: a directory of binaries).

Run `python3 tests/testenv/toolchain.py` to build (or just print) the directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.34.4"
COREDNS_MODULE = "github.com/coredns/coredns"
COREDNS_VERSION = "v1.14.7"
HELM_MODULE = "helm.sh/helm/v3"
HELM_VERSION = "v3.21.4"

GO_MODULE_DIR = Path(__file__).resolve().parents[2] / "tools" / "k8s"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ALL_TOOLS = (*CONTROL_PLANE, "kubectl", "coredns", "helm")
HEARTBEAT_SECONDS = 20.0
Say = Callable[[str], None]


class ToolchainError(RuntimeError):
    """A tool could not be found or built; the message says which and where its build log is."""


@dataclass(frozen=True)
class Toolchain:
    paths: dict[str, Path]

    def __getitem__(self, name: str) -> str:
        return str(self.paths[name])


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "petcd-tools"


def version_key() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((GO_MODULE_DIR / name).read_bytes())
    return f"k8s-{KUBERNETES_VERSION}_coredns-{COREDNS_VERSION}_helm-{HELM_VERSION}_{digest.hexdigest()[:12]}"


def bin_dir() -> Path:
    return cache_root() / version_key() / "bin"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def locate(name: str) -> Path | None:
    """KUBEBUILDER_ASSETS first, then the build cache; kubectl may also come from PATH."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    candidates = [Path(assets) / name] if assets else []
    candidates.append(bin_dir() / name)
    for candidate in candidates:
        if _executable(candidate):
            return candidate
    if name == "kubectl" and (found := shutil.which("kubectl")):
        return Path(found)
    return None


def _k8s_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    base = "k8s.io/component-base/version"
    return (
        f"-s -w -X {base}.gitVersion={KUBERNETES_VERSION} -X {base}.gitMajor={major} "
        f"-X {base}.gitMinor={minor} -X {base}.gitTreeState=clean"
    )


@dataclass(frozen=True)
class BuildStep:
    """One `go` invocation producing `outputs` in the staging directory."""

    title: str
    outputs: tuple[str, ...]
    argv: tuple[str, ...]
    in_module: bool


def plan_builds(missing: Sequence[str], staging: Path) -> list[BuildStep]:
    steps: list[BuildStep] = []
    k8s = [name for name in (*CONTROL_PLANE, "kubectl") if name in missing]
    if k8s:
        packages = [f"k8s.io/kubernetes/cmd/{name}" for name in k8s]
        argv: tuple[str, ...] = ("go", "build", "-v", "-mod=readonly", "-ldflags", _k8s_ldflags())
        argv += ("-o", f"{staging}/", *packages)
        steps.append(BuildStep(", ".join(k8s) + f" {KUBERNETES_VERSION}", tuple(k8s), argv, True))
    if "coredns" in missing:
        argv = ("go", "install", "-v", "-ldflags", "-s -w", f"{COREDNS_MODULE}@{COREDNS_VERSION}")
        steps.append(BuildStep(f"coredns {COREDNS_VERSION}", ("coredns",), argv, False))
    if "helm" in missing:
        ldflags = f"-s -w -X {HELM_MODULE}/internal/version.version={HELM_VERSION}"
        argv = ("go", "install", "-v", "-ldflags", ldflags, f"{HELM_MODULE}/cmd/helm@{HELM_VERSION}")
        steps.append(BuildStep(f"helm {HELM_VERSION}", ("helm",), argv, False))
    return steps


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run_with_progress(step: BuildStep, staging: Path, log_path: Path, say: Say) -> None:
    env = dict(os.environ, GOBIN=str(staging), GOFLAGS=os.environ.get("GOFLAGS", "-buildvcs=false"))
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            step.argv,
            cwd=GO_MODULE_DIR if step.in_module else staging,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        while True:
            try:
                proc.wait(timeout=HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                compiled = sum(1 for _ in log_path.open())
                say(f"  ... {step.title}: {compiled} packages compiled, {time.monotonic() - started:.0f}s")
    if proc.returncode != 0:
        tail = log_path.read_text().splitlines()[-15:]
        raise ToolchainError(f"building {step.title} failed (log: {log_path}):\n" + "\n".join(tail))
    say(f"  built {step.title} in {time.monotonic() - started:.0f}s")


def ensure(say: Say = print) -> Toolchain:
    """Every tool's path, building the missing ones into the cache first."""
    missing = [name for name in ALL_TOOLS if locate(name) is None]
    if missing:
        if shutil.which("go") is None:
            raise ToolchainError(f"missing {', '.join(missing)} and no `go` on PATH to build them")
        target = bin_dir()
        with _exclusive(target.parent / ".lock"):
            missing = [name for name in ALL_TOOLS if locate(name) is None]  # another process may have built
            staging = target.parent / f"staging-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            steps = plan_builds(missing, staging)
            say(f"building {', '.join(missing)} into {target} (a cold build takes minutes)")
            target.mkdir(parents=True, exist_ok=True)
            for number, step in enumerate(steps, 1):
                say(f"[{number}/{len(steps)}] {step.title}")
                _run_with_progress(step, staging, target.parent / f"build-{step.outputs[0]}.log", say)
                for output in step.outputs:
                    os.replace(staging / output, target / output)
            shutil.rmtree(staging, ignore_errors=True)
    paths: dict[str, Path] = {}
    for name in ALL_TOOLS:
        found = locate(name)
        if found is None:
            raise ToolchainError(f"{name} is still missing after the build")
        paths[name] = found
    return Toolchain(paths)


def main() -> int:
    started = time.monotonic()
    try:
        tools = ensure(lambda line: print(line, flush=True))
    except ToolchainError as error:
        print(error, file=sys.stderr)
        return 1
    for name, path in tools.paths.items():
        print(f"{name:24} {path}")
    print(f"tools ready in {time.monotonic() - started:.1f}s: {bin_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

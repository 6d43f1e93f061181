"""Which local program a container image stands for.

There is no container runtime: an image name is mapped to a profile (its ENTRYPOINT, CMD and the
executables it ships, each mapped to a program installed on this machine). The petcd image's
ENTRYPOINT/CMD are read from the project's Dockerfile, so the test kubelet starts what the image
would. Upstream etcd images run Debian's etcd. Any other image is refused (ErrImagePull).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[3] / "Dockerfile"
UPSTREAM_ETCD_REPOSITORIES = ("quay.io/coreos/etcd", "gcr.io/etcd-development/etcd", "registry.k8s.io/etcd")
PETCD_REPOSITORY_NAMES = ("petcd", "petcd-operator")


class ImageError(Exception):
    """A container cannot start; `reason` is the kubelet's waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ImageProfile:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    # basename of an executable inside the image -> the name of the local program to run instead
    executables: Mapping[str, str] = field(default_factory=dict)


def repository(image: str) -> str:
    """`registry/path/name:tag@digest` -> `registry/path/name`."""
    without_digest = image.split("@", 1)[0]
    last_slash = without_digest.rfind("/")
    colon = without_digest.rfind(":")
    return without_digest[:colon] if colon > last_slash else without_digest


def dockerfile_instruction(text: str, instruction: str) -> tuple[str, ...] | None:
    """The last exec-form (JSON array) value of ENTRYPOINT or CMD in a Dockerfile, if any."""
    found: tuple[str, ...] | None = None
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        match = re.match(rf"\s*{instruction}\s+(\[.*\])\s*$", line, re.IGNORECASE)
        if match:
            found = tuple(json.loads(match.group(1)))
    return found


def petcd_profile(dockerfile: Path = DOCKERFILE) -> ImageProfile:
    text = dockerfile.read_text() if dockerfile.exists() else ""
    entrypoint = dockerfile_instruction(text, "ENTRYPOINT")
    cmd = dockerfile_instruction(text, "CMD") or ()
    python = Path(sys.executable).name
    return ImageProfile(
        entrypoint=entrypoint if entrypoint is not None else ("petcd",),
        cmd=cmd,
        executables={
            "petcd": "petcd",
            "petcd-operator": "petcd-operator",
            "python": python,
            "python3": python,
        },
    )


UPSTREAM_ETCD = ImageProfile(
    entrypoint=(),
    cmd=("/usr/local/bin/etcd",),
    executables={"etcd": "etcd", "etcdctl": "etcdctl"},
)


def profile_for(image: str) -> ImageProfile:
    name = repository(image)
    if name in UPSTREAM_ETCD_REPOSITORIES:
        return UPSTREAM_ETCD
    if name.rsplit("/", 1)[-1] in PETCD_REPOSITORY_NAMES:
        return petcd_profile()
    raise ImageError(
        "ErrImagePull",
        f'image "{image}" has no local equivalent in the test kubelet (it runs petcd images and '
        f"upstream etcd images: {', '.join(UPSTREAM_ETCD_REPOSITORIES)})",
    )


def container_argv(
    profile: ImageProfile,
    command: Sequence[str] | None,
    args: Sequence[str] | None,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """Kubernetes' rule: `command` replaces ENTRYPOINT (and drops CMD), `args` replaces CMD; then the
    program is mapped to its local equivalent."""
    entry = list(command) if command else list(profile.entrypoint)
    rest = list(args) if args else ([] if command else list(profile.cmd))
    argv = entry + rest
    if not argv:
        raise ImageError("CreateContainerConfigError", "no command specified")
    program = argv[0]
    base = program.rsplit("/", 1)[-1]
    if base in profile.executables:
        found = which(profile.executables[base])
    elif "/" in program:
        found = program if Path(program).exists() else which(base)
    else:
        found = which(program)
    if found is None:
        raise ImageError(
            "RunContainerError", f'exec: "{program}": executable file not found in $PATH (on this machine)'
        )
    return [found, *argv[1:]]

"""A Pod's volumes as host directories, and each container's mounts (host path -> container path).

emptyDir, configMap, secret, downwardAPI and projected volumes are written under the Pod's own
directory and vanish with it; a persistentVolumeClaim resolves to its bound PersistentVolume's
directory (hostPath or local), which outlives the Pod; hostPath is the host's path itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from testenv.kubelet.images import ImageError
from testenv.kubelet.podenv import PodContext, Sources, field_value, resource_value

Obj = dict[str, Any]
TOKEN_SECONDS = 3607


class VolumeSources(Sources, Protocol):
    def claim_path(self, namespace: str, claim: str) -> Path | None:
        """The directory of the PersistentVolume bound to the claim, None while unbound."""
        ...

    def token(
        self, namespace: str, service_account: str, audience: str | None, seconds: int, pod: Obj
    ) -> str:
        """A bound service-account token (TokenRequest)."""
        ...


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


def _write_files(directory: Path, files: dict[str, str], mode: int) -> None:
    """Make `directory` hold exactly `files`, in place: a container has the directory bind-mounted,
    so it sees updates (refreshed tokens, changed ConfigMaps) only if the directory itself stays."""
    directory.mkdir(parents=True, exist_ok=True)
    for existing in [path for path in directory.rglob("*") if path.is_file()]:
        if str(existing.relative_to(directory)) not in files:
            existing.unlink()
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.tmp")
        staging.write_text(content)
        staging.chmod(mode)
        staging.replace(path)


def _select(
    data: dict[str, str] | None, items: list[Obj] | None, what: str, optional: bool
) -> dict[str, str]:
    if data is None:
        if optional:
            return {}
        raise ImageError("CreateContainerConfigError", f"{what} not found")
    if not items:
        return dict(data)
    selected = {}
    for item in items:
        if item["key"] not in data:
            if optional or item.get("optional"):
                continue
            raise ImageError("CreateContainerConfigError", f"{what} has no key {item['key']}")
        selected[item["path"]] = data[item["key"]]
    return selected


def _keyed_files(source: Obj, kind: str, context: PodContext, sources: VolumeSources) -> dict[str, str]:
    name = source.get("name") or source.get("secretName", "")
    lookup = sources.config_map if kind == "configMap" else sources.secret
    data = lookup(context.namespace, name)
    return _select(
        dict(data) if data is not None else None,
        source.get("items"),
        f'{kind} "{name}"',
        bool(source.get("optional", False)),
    )


def _downward_files(items: list[Obj], context: PodContext) -> dict[str, str]:
    files = {}
    containers = {c["name"]: c for c in context.pod["spec"]["containers"]}
    for item in items:
        if "fieldRef" in item:
            files[item["path"]] = field_value(context, item["fieldRef"]["fieldPath"])
        else:
            ref = item["resourceFieldRef"]
            container = containers.get(ref.get("containerName", ""), {})
            files[item["path"]] = resource_value(container, ref["resource"])
    return files


def _projected_files(volume: Obj, context: PodContext, sources: VolumeSources) -> dict[str, str]:
    files: dict[str, str] = {}
    pod = context.pod
    for source in volume.get("sources", []):
        if "configMap" in source:
            files.update(_keyed_files(source["configMap"], "configMap", context, sources))
        elif "secret" in source:
            files.update(_keyed_files(source["secret"], "secret", context, sources))
        elif "downwardAPI" in source:
            files.update(_downward_files(source["downwardAPI"].get("items", []), context))
        elif "serviceAccountToken" in source:
            token = source["serviceAccountToken"]
            files[token["path"]] = sources.token(
                context.namespace,
                pod["spec"].get("serviceAccountName", "default"),
                token.get("audience"),
                int(token.get("expirationSeconds", TOKEN_SECONDS)),
                pod,
            )
        else:
            raise ImageError("CreateContainerConfigError", f"unsupported projected source {sorted(source)}")
    return files


def materialize(volume: Obj, pod_dir: Path, context: PodContext, sources: VolumeSources) -> Path:
    """The host directory holding the volume's content, written now where the volume is generated."""
    name = volume["name"]
    local: Path = pod_dir / "volumes" / str(name)
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]["claimName"]
        path = sources.claim_path(context.namespace, claim)
        if path is None:
            raise ImageError("ContainerCreating", f'persistentvolumeclaim "{claim}" is not bound yet')
        path.mkdir(parents=True, exist_ok=True)
        return path
    if "hostPath" in volume:
        path = Path(volume["hostPath"]["path"])
        if volume["hostPath"].get("type") in ("DirectoryOrCreate", None, ""):
            path.mkdir(parents=True, exist_ok=True)
        return path
    if "emptyDir" in volume:
        local.mkdir(parents=True, exist_ok=True)
        return local
    if "configMap" in volume or "secret" in volume:
        kind = "configMap" if "configMap" in volume else "secret"
        files = _keyed_files(volume[kind], kind, context, sources)
        mode = int(volume[kind].get("defaultMode", 0o644))
    elif "downwardAPI" in volume:
        files = _downward_files(volume["downwardAPI"].get("items", []), context)
        mode = int(volume["downwardAPI"].get("defaultMode", 0o644))
    elif "projected" in volume:
        files = _projected_files(volume["projected"], context, sources)
        mode = int(volume["projected"].get("defaultMode", 0o644))
    else:
        raise ImageError("CreateContainerConfigError", f"volume {name!r}: unsupported volume type")
    _write_files(local, files, mode)
    return local


def generated(volume: Obj) -> bool:
    """Whether the kubelet writes the volume's content (and so refreshes it while the Pod runs)."""
    return any(kind in volume for kind in ("configMap", "secret", "downwardAPI", "projected"))


def container_mounts(container: Obj, volume_paths: dict[str, Path]) -> list[Mount]:
    mounts = []
    for mount in container.get("volumeMounts", []):
        if mount["name"] not in volume_paths:
            raise ImageError("CreateContainerConfigError", f"volume {mount['name']!r} not found in the Pod")
        source = volume_paths[mount["name"]]
        if mount.get("subPath"):
            source = source / mount["subPath"]
            if not source.exists():
                source.mkdir(parents=True)
        mounts.append(Mount(str(source), mount["mountPath"], bool(mount.get("readOnly", False))))
    return mounts

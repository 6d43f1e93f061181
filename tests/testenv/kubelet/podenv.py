"""A container's environment and command line, as the kubelet builds them: envFrom, then env (with
fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef), `$(VAR)` expansion, and the variables an
in-cluster client needs. Pure: ConfigMaps and Secrets come from the `Sources` given."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from testenv.kubelet.images import ImageError

Obj = dict[str, Any]


class Sources(Protocol):
    def config_map(self, namespace: str, name: str) -> Mapping[str, str] | None: ...

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        """The Secret's data, base64-decoded."""
        ...


@dataclass(frozen=True)
class PodContext:
    pod: Obj
    pod_ip: str
    host_ip: str
    api_host: str
    api_port: int

    @property
    def namespace(self) -> str:
        namespace: str = self.pod["metadata"]["namespace"]
        return namespace


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: a defined variable is replaced, an undefined one is kept as
    written, `$$` is an escaped `$`."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(context: PodContext, path: str) -> str:
    """The value of a downward-API fieldRef."""
    pod = context.pod
    metadata = pod["metadata"]
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        return str(metadata.get(subscript.group(1), {}).get(subscript.group(2), ""))
    values = {
        "metadata.name": metadata["name"],
        "metadata.namespace": metadata["namespace"],
        "metadata.uid": metadata["uid"],
        "metadata.labels": "\n".join(f'{k}="{v}"' for k, v in sorted(metadata.get("labels", {}).items())),
        "metadata.annotations": "\n".join(
            f'{k}="{v}"' for k, v in sorted(metadata.get("annotations", {}).items())
        ),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.podIP": context.pod_ip,
        "status.podIPs": context.pod_ip,
        "status.hostIP": context.host_ip,
        "status.hostIPs": context.host_ip,
    }
    if path not in values:
        raise ImageError("CreateContainerConfigError", f"unsupported fieldRef fieldPath {path!r}")
    return str(values[path])


def resource_value(container: Obj, resource: str) -> str:
    """resourceFieldRef: the container's own limit or request, else a node-sized default."""
    kind, _, name = resource.partition(".")
    resources = container.get("resources", {})
    value = resources.get(kind, {}).get(name) or resources.get("requests", {}).get(name)
    if value is not None:
        return str(value)
    return "1" if name == "cpu" else "0"


def _key_ref(sources: Sources, namespace: str, ref: Obj, kind: str) -> str | None:
    lookup = sources.config_map if kind == "configmap" else sources.secret
    data = lookup(namespace, ref["name"])
    optional = bool(ref.get("optional", False))
    if data is None:
        if optional:
            return None
        raise ImageError("CreateContainerConfigError", f'{kind} "{ref["name"]}" not found')
    if ref["key"] not in data:
        if optional:
            return None
        raise ImageError(
            "CreateContainerConfigError",
            f"couldn't find key {ref['key']} in {kind.capitalize()} {namespace}/{ref['name']}",
        )
    return data[ref["key"]]


def in_cluster_env(context: PodContext) -> dict[str, str]:
    host, port = context.api_host, str(context.api_port)
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "KUBERNETES_SERVICE_PORT_HTTPS": port,
        "KUBERNETES_PORT": f"tcp://{host}:{port}",
        f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
        f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
        f"KUBERNETES_PORT_{port}_TCP_PORT": port,
        f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
    }


def container_env(context: PodContext, container: Obj, sources: Sources, hostname: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "HOSTNAME": hostname,
        **in_cluster_env(context),
    }
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref, data = (
                source["configMapRef"],
                sources.config_map(context.namespace, source["configMapRef"]["name"]),
            )
            kind = "configmap"
        else:
            ref, data = source["secretRef"], sources.secret(context.namespace, source["secretRef"]["name"])
            kind = "secret"
        if data is None:
            if ref.get("optional"):
                continue
            raise ImageError("CreateContainerConfigError", f'{kind} "{ref["name"]}" not found')
        env.update({prefix + key: value for key, value in data.items()})
    for variable in container.get("env", []):
        value = _env_value(context, container, sources, variable, env)
        if value is not None:
            env[variable["name"]] = value
    return env


def _env_value(
    context: PodContext, container: Obj, sources: Sources, variable: Obj, env: Mapping[str, str]
) -> str | None:
    if "valueFrom" not in variable:
        return expand(str(variable.get("value", "")), env)
    source = variable["valueFrom"]
    if "fieldRef" in source:
        return field_value(context, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        return resource_value(container, source["resourceFieldRef"]["resource"])
    if "configMapKeyRef" in source:
        return _key_ref(sources, context.namespace, source["configMapKeyRef"], "configmap")
    if "secretKeyRef" in source:
        return _key_ref(sources, context.namespace, source["secretKeyRef"], "secret")
    raise ImageError("CreateContainerConfigError", f"unsupported valueFrom {sorted(source)}")

"""What Pods refer to, fetched from the API server: ConfigMaps, Secrets, bound volumes, tokens."""

from __future__ import annotations

import base64
from pathlib import Path

from testenv.kubeapi import KubeApi, Obj


class ApiSources:
    def __init__(self, api: KubeApi) -> None:
        self.api = api

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.api.get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if found is None:
            return None
        data: dict[str, str] = dict(found.get("data") or {})
        for key, value in (found.get("binaryData") or {}).items():
            data[key] = base64.b64decode(value).decode(errors="replace")
        return data

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.api.get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if found is None:
            return None
        return {
            key: base64.b64decode(value).decode(errors="replace")
            for key, value in (found.get("data") or {}).items()
        }

    def claim_path(self, namespace: str, claim: str) -> Path | None:
        pvc = self.api.get_or_none(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
        if pvc is None or pvc.get("status", {}).get("phase") != "Bound":
            return None
        pv = self.api.get_or_none(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
        if pv is None:
            return None
        spec = pv["spec"]
        source = spec.get("hostPath") or spec.get("local")
        return Path(source["path"]) if source else None

    def token(
        self, namespace: str, service_account: str, audience: str | None, seconds: int, pod: Obj
    ) -> str:
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    **{k: pod["metadata"][k] for k in ("name", "uid")},
                },
            },
        }
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        token: str = self.api.create(path, request)["status"]["token"]
        return token

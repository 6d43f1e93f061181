"""A small JSON client for the Kubernetes API, for test infrastructure that wants objects as plain
dicts (camelCase, every field) rather than the kubernetes package's models. Authenticates with a
kubeconfig's client certificate or bearer token."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import urllib3
import yaml

Obj = dict[str, Any]


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status


def _pem_file(directory: Path, name: str, data: str) -> str:
    path = directory / name
    path.write_bytes(base64.b64decode(data))
    path.chmod(0o600)
    return str(path)


class KubeApi:
    def __init__(self, kubeconfig: Path, timeout: float = 10.0) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        self.server: str = cluster["server"].rstrip("/")
        ssl_context = ssl.create_default_context()
        if "certificate-authority-data" in cluster:
            ssl_context.load_verify_locations(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )
        elif "certificate-authority" in cluster:
            ssl_context.load_verify_locations(cafile=cluster["certificate-authority"])
        self._headers = {"Accept": "application/json"}
        if "client-certificate-data" in user:
            self._keys = tempfile.TemporaryDirectory(prefix="kubeapi-")
            keys = Path(self._keys.name)
            ssl_context.load_cert_chain(
                _pem_file(keys, "client.crt", user["client-certificate-data"]),
                _pem_file(keys, "client.key", user["client-key-data"]),
            )
        elif "client-certificate" in user:
            ssl_context.load_cert_chain(user["client-certificate"], user["client-key"])
        if "token" in user:
            self._headers["Authorization"] = f"Bearer {user['token']}"
        self._pool = urllib3.PoolManager(
            ssl_context=ssl_context, timeout=urllib3.Timeout(total=timeout), retries=False, maxsize=4
        )

    def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        url = self.server + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = dict(self._headers, **({"Content-Type": content_type} if body is not None else {}))
        payload = json.dumps(body).encode() if body is not None else None
        response = self._pool.request(method, url, body=payload, headers=headers)
        text = response.data.decode(errors="replace")
        if response.status >= 300:
            raise ApiError(method, path, response.status, text)
        result: Obj = json.loads(text) if text else {}
        return result

    def get(self, path: str, query: dict[str, str] | None = None) -> Obj:
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str) -> Obj | None:
        try:
            return self.get(path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def items(self, path: str, query: dict[str, str] | None = None) -> list[Obj]:
        items: list[Obj] = self.get(path, query)["items"]
        return items

    def create(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, body: Obj) -> Obj:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str, body: Obj | None = None) -> Obj | None:
        try:
            return self.request("DELETE", path, body)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

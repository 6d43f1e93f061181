"""A dynamic provisioner for the default StorageClass: every pending claim of that class gets a
PersistentVolume backed by a directory of its own, which outlives the Pods using it and is removed
when the claim is (reclaim policy Delete)."""

from __future__ import annotations

import shutil
from pathlib import Path

from testenv.kubeapi import ApiError, KubeApi, Obj

STORAGE_CLASS = "standard"
PROVISIONER = "testenv.petcd.dev/local-directory"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


def storage_class() -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def volume_for(claim: Obj, directory: Path) -> Obj:
    metadata, spec = claim["metadata"], claim["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": directory.name, "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
            "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": spec.get("storageClassName", STORAGE_CLASS),
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "hostPath": {"path": str(directory), "type": "DirectoryOrCreate"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": metadata["namespace"],
                "name": metadata["name"],
                "uid": metadata["uid"],
            },
        },
    }


class Provisioner:
    def __init__(self, api: KubeApi, volumes: Path) -> None:
        self.api = api
        self.volumes = volumes
        self._classes: set[str] = set()

    def install(self) -> None:
        try:
            self.api.create("/apis/storage.k8s.io/v1/storageclasses", storage_class())
        except ApiError as error:
            if error.status != 409:
                raise

    def _ours(self, class_name: str | None) -> bool:
        if not class_name:
            return False
        if class_name not in self._classes:
            found = self.api.get_or_none(f"/apis/storage.k8s.io/v1/storageclasses/{class_name}")
            if found is None or found.get("provisioner") != PROVISIONER:
                return False
            self._classes.add(class_name)
        return True

    def sync(self) -> None:
        for claim in self.api.items("/api/v1/persistentvolumeclaims"):
            spec = claim["spec"]
            pending = claim["status"].get("phase") == "Pending" and not spec.get("volumeName")
            deleting = bool(claim["metadata"].get("deletionTimestamp"))
            if pending and not deleting and self._ours(spec.get("storageClassName")):
                self._provision(claim)
        for volume in self.api.items("/api/v1/persistentvolumes"):
            annotations = volume["metadata"].get("annotations", {})
            if annotations.get(PROVISIONED_BY) == PROVISIONER and volume["status"].get("phase") == "Released":
                shutil.rmtree(volume["spec"]["hostPath"]["path"], ignore_errors=True)
                self.api.delete(f"/api/v1/persistentvolumes/{volume['metadata']['name']}")

    def _provision(self, claim: Obj) -> None:
        directory = self.volumes / f"pvc-{claim['metadata']['uid']}"
        directory.mkdir(parents=True, exist_ok=True)
        try:
            self.api.create("/api/v1/persistentvolumes", volume_for(claim, directory))
        except ApiError as error:
            if error.status != 409:
                raise

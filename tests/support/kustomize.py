"""A renderer for the part of kustomize that deploy/k8s uses, so the manifests render and
validate offline, with or without a kustomize binary on the machine.

Supported, and nothing else (anything more is refused, so a new feature in a kustomization
fails loudly here instead of rendering differently): ``resources`` (files and directories with
their own kustomization), ``namespace``, ``images`` (newName/newTag) and ``patches`` holding
JSON 6902 operations (add, replace, remove), targeted by kind, name and label selector. When
``kubectl`` is installed, the tests also compare this renderer's output with ``kubectl kustomize``.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class KustomizeError(Exception):
    pass


def render(directory: Path) -> list[Obj]:
    """Every object the kustomization in ``directory`` produces."""
    kfile = directory / "kustomization.yaml"
    spec = yaml.safe_load(kfile.read_text(encoding="utf-8"))
    unsupported = set(spec) - SUPPORTED
    if unsupported:
        raise KustomizeError(f"{kfile}: unsupported fields {sorted(unsupported)}")
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(render(path))
        else:
            docs = yaml.safe_load_all(path.read_text(encoding="utf-8"))
            objects.extend(doc for doc in docs if doc)
    for patch in spec.get("patches", []):
        apply_patch(directory, patch, objects)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        for obj in objects:
            set_image(obj, image)
    return objects


def apply_patch(directory: Path, patch: Obj, objects: list[Obj]) -> None:
    if set(patch) - {"path", "patch", "target"}:
        raise KustomizeError(f"unsupported patch fields: {sorted(patch)}")
    text = (directory / patch["path"]).read_text() if "path" in patch else patch["patch"]
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise KustomizeError("only JSON 6902 patches (a list of operations) are supported")
    targets = [obj for obj in objects if matches(obj, patch.get("target", {}))]
    if not targets:
        raise KustomizeError(f"patch {patch} matches no object")
    for obj in targets:
        for operation in operations:
            apply_operation(obj, operation)


def matches(obj: Obj, target: Obj) -> bool:
    if set(target) - {"kind", "name", "labelSelector"}:
        raise KustomizeError(f"unsupported target fields: {sorted(target)}")
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    if "name" in target and obj["metadata"]["name"] != target["name"]:
        return False
    labels = obj["metadata"].get("labels", {})
    for term in filter(None, target.get("labelSelector", "").split(",")):
        key, sep, value = term.partition("=")
        if not sep or labels.get(key.strip()) != value.strip():
            return False
    return True


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply_operation(obj: Obj, operation: Obj) -> None:
    """One JSON 6902 operation (RFC 6902: add, replace, remove) on ``obj``, in place."""
    op, parts = operation["op"], _pointer(operation["path"])
    parent: Any = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op == "add":
            parent.insert(index, value)
        elif op == "replace":
            parent[index] = value
        elif op == "remove":
            del parent[index]
        else:
            raise KustomizeError(f"unsupported op {op}")
        return
    if op in {"replace", "remove"} and last not in parent:
        raise KustomizeError(f"{op} {operation['path']}: no such field")
    if op in {"add", "replace"}:
        parent[last] = value
    elif op == "remove":
        del parent[last]
    else:
        raise KustomizeError(f"unsupported op {op}")


def set_image(obj: Obj, image: Obj) -> None:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("initContainers", []) + pod.get("containers", []):
        name, _, tag = container["image"].partition(":")
        if name != image["name"]:
            continue
        name = image.get("newName", name)
        tag = image.get("newTag", tag)
        container["image"] = f"{name}:{tag}" if tag else name


def key(obj: Obj) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def kubectl_render(directory: Path) -> list[Obj] | None:
    """``kubectl kustomize`` of ``directory``, or None where kubectl is not installed."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def canonical(objects: list[Obj]) -> list[str]:
    return sorted(json.dumps(obj, sort_keys=True) for obj in objects)

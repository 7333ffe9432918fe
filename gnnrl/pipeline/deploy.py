"""Deploy step: render the scaler manifests for a promoted model, apply them in-cluster.

Rendering (pure): every YAML document of ``gnnrl/manifests/*.yaml`` gets the target namespace;
the scaler ConfigMap's ``scaler.json`` gets ``model = models:/gnnrl-scaler@champion``, the
mode, the namespace and the dial the model was judged at (`ScalerConfig.dial`); the
Deployment's pod template gets the annotation ``gnnrl.io/model-version: <version>`` (a new
version rolls the pods, and ``kubectl describe`` shows which version runs), the image and
``MLFLOW_TRACKING_URI`` when given.

The scaler follows the alias (`gnnrl.scaler.model_source`: ``models:/NAME@ALIAS`` only), so
the alias is what is rendered; the version is pinned by the annotation.

Applying: inside a pod (``KUBERNETES_SERVICE_HOST`` set, the in-cluster contract of
client-go's rest.InClusterConfig) the documents are server-side applied with the
``kubernetes`` client (field manager ``gnnrl-deploy``); elsewhere they are only written to
``out_dir/scaler.yaml`` and the result says so.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from gnnrl.config import ConfigError, atomic_write_text
from gnnrl.contracts.observation import DEFAULT_DIAL, check_dial

MODEL_NAME = "gnnrl-scaler"
MODEL_ALIAS = "champion"
VERSION_ANNOTATION = "gnnrl.io/model-version"
FIELD_MANAGER = "gnnrl-deploy"
SCALER_CONFIG_KEY = "scaler.json"
MODES = ("shadow", "active")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
#: kinds without a namespace (kubectl api-resources --namespaced=false)
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PriorityClass", "StorageClass"}


class DeployError(RuntimeError):
    """Rendering or applying the scaler manifests failed; the message names the document."""


@dataclasses.dataclass(frozen=True)
class DeployResult:
    """``action`` is "applied" (in-cluster) or "rendered" (written only)."""

    action: str
    model_uri: str
    version: str
    rendered_path: Path
    applied: tuple[str, ...]


def default_manifest_dir() -> Path:
    """``$GNNRL_MANIFESTS``, else the scaler manifests shipped with the package
    (``gnnrl/manifests``)."""
    env = os.environ.get("GNNRL_MANIFESTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "manifests"


def _read_yaml(path: Path) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise DeployError(f"{path}: cannot read YAML: {exc}") from exc


def _kustomization(folder: Path) -> dict[str, Any] | None:
    for name in KUSTOMIZATION_FILES:
        if (folder / name).is_file():
            (doc,) = _read_yaml(folder / name) or [{}]
            return doc
    return None


def _kustomize_image(doc: dict[str, Any], images: list[dict[str, Any]]) -> None:
    """Apply kustomize's ``images`` transformer (name -> newName:newTag) to containers."""
    by_name = {i["name"]: i for i in images if "name" in i}
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        rule = by_name.get(str(container.get("image", "")).split(":")[0])
        if rule:
            name = rule.get("newName", rule["name"])
            container["image"] = f"{name}:{rule['newTag']}" if "newTag" in rule else name


def load_manifests(manifest_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The scaler's Kubernetes objects from ``manifest_dir``.

    With a ``kustomization.yaml``: its ``resources`` in order, with its ``images`` and
    metadata ``labels`` applied (the subset of kustomize the scaler manifests use; see
    https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/). Without one:
    every ``*.yaml`` in name order.
    """
    folder = Path(manifest_dir)
    kust = _kustomization(folder)
    if kust is not None:
        files = [folder / r for r in kust.get("resources", [])]
    else:
        files = sorted(list(folder.glob("*.yaml")) + list(folder.glob("*.yml")))
    if not files:
        raise DeployError(f"no scaler manifests (*.yaml) in {folder}")
    docs = []
    for path in files:
        for doc in _read_yaml(path):
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                raise DeployError(f"{path}: a document lacks kind/apiVersion")
            if str(doc["apiVersion"]).startswith("kustomize.config.k8s.io"):
                continue
            if kust is not None:
                _kustomize_image(doc, kust.get("images", []))
                for group in kust.get("labels", []):
                    doc.setdefault("metadata", {}).setdefault("labels", {}).update(
                        group.get("pairs", {}))
            docs.append(doc)
    return docs


def _render_config_map(doc: dict[str, Any], model_uri: str, namespace: str, mode: str,
                       dial: float = DEFAULT_DIAL) -> None:
    data = doc.get("data") or {}
    if SCALER_CONFIG_KEY not in data:
        return
    try:
        cfg = json.loads(data[SCALER_CONFIG_KEY])
    except json.JSONDecodeError as exc:
        raise DeployError(f"ConfigMap {doc['metadata'].get('name')}: {SCALER_CONFIG_KEY} "
                          f"is not JSON: {exc}") from exc
    cfg.update({"model": model_uri, "mode": mode, "namespace": namespace, "dial": dial})
    data[SCALER_CONFIG_KEY] = json.dumps(cfg, indent=2, sort_keys=True)


def _render_deployment(doc: dict[str, Any], version: str, image: str | None,
                       mlflow_uri: str | None, mode: str | None = None) -> None:
    template = doc.setdefault("spec", {}).setdefault("template", {})
    meta = template.setdefault("metadata", {})
    meta.setdefault("annotations", {})[VERSION_ANNOTATION] = str(version)
    for container in template.get("spec", {}).get("containers", []):
        if image:
            container["image"] = image
        if mode:  # a --mode flag on the command line wins over the ConfigMap: keep them equal
            container["args"] = [f"--mode={mode}" if str(a).startswith("--mode=") else a
                                 for a in container.get("args", [])]
        if mlflow_uri:
            env = [e for e in container.get("env", []) if e.get("name") != "MLFLOW_TRACKING_URI"]
            env.append({"name": "MLFLOW_TRACKING_URI", "value": mlflow_uri})
            container["env"] = env


def render(
    docs: Iterable[dict[str, Any]],
    version: str,
    namespace: str,
    mode: str = "shadow",
    mlflow_uri: str | None = None,
    image: str | None = None,
    dial: float = DEFAULT_DIAL,
) -> list[dict[str, Any]]:
    """Rendered copies of ``docs`` for model ``version`` (see the module docstring).

    Raises:
        ConfigError: empty namespace/version, an unknown mode or a dial outside [0, 1].
    """
    try:
        dial = check_dial(dial)
    except ValueError as exc:
        raise ConfigError(f"deploy: {exc}") from None
    if not namespace:
        raise ConfigError("deploy: namespace must be non-empty")
    if not str(version).strip():
        raise ConfigError("deploy: model version must be non-empty")
    if mode not in MODES:
        raise ConfigError(f"deploy: mode must be one of {', '.join(MODES)}, got {mode!r}")
    model_uri = f"models:/{MODEL_NAME}@{MODEL_ALIAS}"
    out = []
    for original in docs:
        doc = copy.deepcopy(original)
        kind = doc["kind"]
        if kind not in CLUSTER_SCOPED:
            doc.setdefault("metadata", {})["namespace"] = namespace
        for subject in doc.get("subjects", []) or []:
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace
        if kind == "ConfigMap":
            _render_config_map(doc, model_uri, namespace, mode, dial)
        elif kind == "Deployment":
            _render_deployment(doc, version, image, mlflow_uri, mode)
        out.append(doc)
    return out


def in_cluster() -> bool:
    """True inside a Kubernetes pod (the service-host variable every pod gets)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def apply(docs: list[dict[str, Any]], api_client: Any | None = None) -> list[str]:
    """Server-side apply ``docs`` (field manager ``gnnrl-deploy``); return ``kind/name``s.

    Raises:
        DeployError: the API refused a document (the message names it and the status).
    """
    from kubernetes import config as k8s_config
    from kubernetes.client import ApiClient
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic import DynamicClient

    if api_client is None:
        k8s_config.load_incluster_config()
        api_client = ApiClient()
    dyn = DynamicClient(api_client)
    done = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            dyn.server_side_apply(
                resource,
                body=doc,
                name=doc["metadata"]["name"],
                namespace=doc["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as exc:
            raise DeployError(f"apply {name}: HTTP {exc.status} {exc.reason}") from exc
        done.append(name)
    return done


def deploy(
    model_version: str,
    namespace: str,
    out_dir: str | os.PathLike[str],
    mode: str = "shadow",
    mlflow_uri: str | None = None,
    image: str | None = None,
    manifest_dir: str | os.PathLike[str] | None = None,
    apply_in_cluster: bool | None = None,
    dial: float = DEFAULT_DIAL,
) -> DeployResult:
    """Render the scaler manifests for ``model_version`` at ``dial`` into
    ``out_dir/scaler.yaml`` and, in a cluster (or when ``apply_in_cluster`` is True), apply
    them."""
    docs = render(
        load_manifests(manifest_dir or default_manifest_dir()),
        model_version, namespace, mode, mlflow_uri or None, image or None, dial,
    )
    out = Path(out_dir)
    path = out / "scaler.yaml"
    atomic_write_text(path, yaml.safe_dump_all(docs, sort_keys=False))
    model_uri = f"models:/{MODEL_NAME}/{model_version}"
    should_apply = in_cluster() if apply_in_cluster is None else apply_in_cluster
    if should_apply:
        applied = apply(docs)
        print(f"deploy: applied {len(applied)} objects to namespace {namespace} "
              f"for {model_uri} ({', '.join(applied)})")
        return DeployResult("applied", model_uri, str(model_version), path, tuple(applied))
    print(f"deploy: not in a cluster; rendered manifests for {model_uri} written to {path} "
          f"(apply with: kubectl apply --server-side -f {path})")
    return DeployResult("rendered", model_uri, str(model_version), path, ())

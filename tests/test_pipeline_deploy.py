"""Deploy step: scaler manifests rendered for the promoted version; written locally, applied
in-cluster with server-side apply (against `gnnrl.testing.k8s_fake.FakeKubernetes`)."""

from __future__ import annotations

import json

import pytest
import yaml

from gnnrl.config import ConfigError
from gnnrl.pipeline.deploy import (
    VERSION_ANNOTATION,
    DeployError,
    apply,
    deploy,
    load_manifests,
    render,
)
from gnnrl.testing.k8s_fake import APPLY_PATCH

MANIFESTS = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: gnnrl-scaler}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: gnnrl-scaler}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: gnnrl-scaler}
subjects: [{kind: ServiceAccount, name: gnnrl-scaler, namespace: default}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: gnnrl-scaler}
data:
  scaler.json: '{"namespace": "default", "mode": "shadow", "model": "", "interval_s": 15}'
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: gnnrl-scaler}
spec:
  selector: {matchLabels: {app: gnnrl-scaler}}
  template:
    metadata: {labels: {app: gnnrl-scaler}}
    spec:
      containers:
        - name: scaler
          image: ghcr.io/gnnrl/gnnrl:0.1.0
          env: [{name: MLFLOW_TRACKING_URI, value: "http://old:5000"}]
"""


@pytest.fixture
def manifest_dir(tmp_path):
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "scaler.yaml").write_text(MANIFESTS)
    return folder


def _by_kind(docs):
    return {d["kind"]: d for d in docs}


def test_render_points_the_scaler_at_the_champion_and_pins_the_version(manifest_dir):
    docs = render(load_manifests(manifest_dir), "7", "shop", mode="active",
                  mlflow_uri="http://mlflow.mlflow:5000", image="registry.local/gnnrl:1")
    kinds = _by_kind(docs)
    cfg = json.loads(kinds["ConfigMap"]["data"]["scaler.json"])
    assert cfg == {"namespace": "shop", "mode": "active", "model": "models:/gnnrl-scaler@champion",
                   "interval_s": 15, "dial": 0.5}
    template = kinds["Deployment"]["spec"]["template"]
    assert template["metadata"]["annotations"][VERSION_ANNOTATION] == "7"
    (container,) = template["spec"]["containers"]
    assert container["image"] == "registry.local/gnnrl:1"
    assert container["env"] == [{"name": "MLFLOW_TRACKING_URI",
                                 "value": "http://mlflow.mlflow:5000"}]
    assert all(d["metadata"]["namespace"] == "shop" for d in docs)
    assert kinds["RoleBinding"]["subjects"][0]["namespace"] == "shop"


def test_render_leaves_the_source_manifests_untouched(manifest_dir):
    original = load_manifests(manifest_dir)
    render(original, "3", "shop")
    assert "namespace" not in original[0]["metadata"]


@pytest.mark.parametrize(
    ("version", "namespace", "mode", "field"),
    [("", "shop", "shadow", "version"), ("1", "", "shadow", "namespace"),
     ("1", "shop", "yolo", "mode")],
)
def test_render_refuses_bad_inputs_naming_them(manifest_dir, version, namespace, mode, field):
    with pytest.raises(ConfigError, match=field):
        render(load_manifests(manifest_dir), version, namespace, mode)


def test_render_refuses_a_dial_outside_0_1(manifest_dir):
    with pytest.raises(ConfigError, match="dial"):
        render(load_manifests(manifest_dir), "1", "shop", dial=1.5)


def test_outside_a_cluster_deploy_writes_the_manifests_and_says_so(
    manifest_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = deploy("4", "shop", tmp_path / "out", manifest_dir=manifest_dir)
    assert result.action == "rendered" and result.applied == ()
    written = list(yaml.safe_load_all(result.rendered_path.read_text()))
    assert len(written) == 4
    assert "rendered manifests for models:/gnnrl-scaler/4 written to" in capsys.readouterr().out


def test_missing_manifests_is_a_clear_error(tmp_path):
    with pytest.raises(DeployError, match="no scaler manifests"):
        load_manifests(tmp_path)


def test_in_cluster_apply_is_server_side_apply_of_every_document(manifest_dir, kube):
    docs = render(load_manifests(manifest_dir), "5", "shop")
    applied = apply(docs, api_client=kube.api_client())
    assert applied == ["ServiceAccount/gnnrl-scaler", "RoleBinding/gnnrl-scaler",
                       "ConfigMap/gnnrl-scaler", "Deployment/gnnrl-scaler"]
    patches = [r for r in kube.writes if r.method == "PATCH"]
    assert patches[3].path == "/apis/apps/v1/namespaces/shop/deployments/gnnrl-scaler"
    # force=True: the apiserver parses it with strconv.ParseBool, which accepts "True"
    assert all(r.query["fieldManager"] == "gnnrl-deploy" and r.query["force"].lower() == "true"
               for r in patches)
    sent = kube.applied[3]
    assert sent["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION] == "5"
    assert all(r.content_type == APPLY_PATCH for r in patches)


def test_a_refused_apply_names_the_object_and_status(manifest_dir, kube):
    kube.inject(status=403, method="PATCH", path="/rolebindings/")
    docs = render(load_manifests(manifest_dir), "5", "shop")
    with pytest.raises(DeployError, match="RoleBinding/gnnrl-scaler: HTTP 403"):
        apply(docs, api_client=kube.api_client())


def test_the_repository_manifests_render_to_valid_kubernetes_objects():
    import kubernetes_validate

    from gnnrl.pipeline.deploy import default_manifest_dir

    docs = render(load_manifests(default_manifest_dir()), "9", "shop", mode="active")
    kinds = [d["kind"] for d in docs]
    assert "Kustomization" not in kinds and {"ConfigMap", "Deployment"} <= set(kinds)
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)
    deployment = _by_kind(docs)["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/gnnrl/gnnrl:0.1.0", "kustomize images applied"
    assert "--mode=active" in container["args"], "the command-line mode follows the render"
    cfg = json.loads(_by_kind(docs)["ConfigMap"]["data"]["scaler.json"])
    assert (cfg["model"], cfg["mode"], cfg["namespace"]) == (
        "models:/gnnrl-scaler@champion", "active", "shop")

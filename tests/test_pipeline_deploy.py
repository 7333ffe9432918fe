"""Deploy step: scaler manifests rendered for the promoted version; written locally, applied
in-cluster with server-side apply (against an HTTP-level fake API server)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from typing import ClassVar

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


class FakeApiServer(BaseHTTPRequestHandler):
    """Discovery for v1/apps/rbac plus PATCH (server-side apply) recording."""

    RESOURCES: ClassVar[dict] = {
        "/api/v1": ("v1", [("serviceaccounts", "ServiceAccount"), ("configmaps", "ConfigMap")]),
        "/apis/apps/v1": ("apps/v1", [("deployments", "Deployment")]),
        "/apis/rbac.authorization.k8s.io/v1": (
            "rbac.authorization.k8s.io/v1", [("rolebindings", "RoleBinding")]),
    }
    patches: ClassVar[list] = []
    fail_kind: ClassVar[str | None] = None

    def log_message(self, *args):
        pass

    def _json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/version":
            return self._json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0"})
        if path == "/api":
            return self._json(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                       "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}}
                      for g in ("apps", "rbac.authorization.k8s.io")]
            return self._json(200, {"kind": "APIGroupList", "groups": groups})
        if path in self.RESOURCES:
            gv, res = self.RESOURCES[path]
            return self._json(200, {"kind": "APIResourceList", "groupVersion": gv, "resources": [
                {"name": n, "kind": k, "namespaced": True, "singularName": "",
                 "verbs": ["get", "patch", "create"]} for n, k in res]})
        return self._json(404, {"kind": "Status", "code": 404})

    def do_PATCH(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        doc = json.loads(body) if body.strip().startswith(b"{") else yaml.safe_load(body)
        if doc["kind"] == self.fail_kind:
            return self._json(403, {"kind": "Status", "code": 403, "reason": "Forbidden"})
        type(self).patches.append((self.path, self.headers["Content-Type"], doc))
        return self._json(200, doc)


@pytest.fixture
def fake_api():
    FakeApiServer.patches = []
    FakeApiServer.fail_kind = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _api_client(host, tmp_path):
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = host
    return client.ApiClient(cfg)


def test_in_cluster_apply_is_server_side_apply_of_every_document(
    manifest_dir, fake_api, tmp_path
):
    docs = render(load_manifests(manifest_dir), "5", "shop")
    applied = apply(docs, api_client=_api_client(fake_api, tmp_path))
    assert applied == ["ServiceAccount/gnnrl-scaler", "RoleBinding/gnnrl-scaler",
                       "ConfigMap/gnnrl-scaler", "Deployment/gnnrl-scaler"]
    paths = [p for p, _, _ in FakeApiServer.patches]
    assert paths[3].split("?")[0] == "/apis/apps/v1/namespaces/shop/deployments/gnnrl-scaler"
    # force=True: the apiserver parses it with strconv.ParseBool, which accepts "True"
    assert all("fieldManager=gnnrl-deploy" in p and "force=true" in p.lower() for p in paths)
    sent = FakeApiServer.patches[3][2]
    assert sent["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION] == "5"
    assert all(ct == "application/apply-patch+yaml" for _, ct, _ in FakeApiServer.patches)


def test_a_refused_apply_names_the_object_and_status(manifest_dir, fake_api, tmp_path):
    FakeApiServer.fail_kind = "RoleBinding"
    docs = render(load_manifests(manifest_dir), "5", "shop")
    with pytest.raises(DeployError, match="RoleBinding/gnnrl-scaler: HTTP 403"):
        apply(docs, api_client=_api_client(fake_api, tmp_path))


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

"""The scaler's manifests: valid against Kubernetes' schemas, kustomize-able, least privilege.

The RBAC check is behavioural too: a scaler tick in active mode (Lease, scale write, Event)
against the fake API server records every call it makes, and each must be allowed by the
Role, while every rule of the Role must be needed by some call the scaler or its graph
source makes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from scaler_support import NS, config, fake_cluster, scaler_for

from gnnrl.scaler.clock import FakeClock
from gnnrl.scaler.config import ScalerConfig
from gnnrl.scaler.leader import LeaseElector
from gnnrl.testing.k8s_fake import FakeKubernetes

MANIFESTS = Path(__file__).resolve().parents[1] / "gnnrl" / "manifests"
K8S_VERSION = "1.30.0"


def load(name: str) -> dict:
    return yaml.safe_load((MANIFESTS / name).read_text())


def resources() -> list[str]:
    return load("kustomization.yaml")["resources"]


@pytest.mark.parametrize("name", ["serviceaccount.yaml", "role.yaml", "rolebinding.yaml",
                                  "configmap.yaml", "deployment.yaml", "service.yaml",
                                  "poddisruptionbudget.yaml", "networkpolicy.yaml"])
def test_manifest_is_valid_against_the_kubernetes_schema(name):
    kubernetes_validate.validate(load(name), K8S_VERSION, strict=True)
    assert name in resources()


def test_kustomize_builds_the_whole_set():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    out = subprocess.run([kubectl, "kustomize", str(MANIFESTS)], capture_output=True,
                         text=True, check=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert sorted(d["kind"] for d in docs) == sorted(
        ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service",
         "PodDisruptionBudget", "NetworkPolicy"])
    for d in docs:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        assert d["metadata"]["namespace"] == "online-boutique"


def rules() -> list[dict]:
    return load("role.yaml")["rules"]


def allowed(group: str, resource: str, verb: str, name: str | None) -> list[tuple[int, str]]:
    """(rule index, verb) of the Role's rules that allow the request (RBAC is a union)."""
    hits = []
    for i, r in enumerate(rules()):
        if group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] \
                and ("resourceNames" not in r or name in r["resourceNames"]):
            hits.append((i, verb))
    return hits


#: (apiGroup, resource, resourceNames) -> verbs: exactly what the scaler calls
#: (gnnrl/kube/client.py through gnnrl/scaler/kube.py; gnnrl/scaler/leader.py, events.py;
#: gnnrl/sources/kubernetes.py).
EXPECTED_RULES = {
    ("apps", "deployments", None): ["list"],
    ("apps", "deployments/scale", None): ["get", "patch"],
    ("", "pods", None): ["list"],
    ("metrics.k8s.io", "pods", None): ["list"],
    ("coordination.k8s.io", "leases", None): ["create"],
    ("coordination.k8s.io", "leases", ("gnnrl-scaler",)): ["get", "update"],
    ("", "events", None): ["create"],
}


def test_role_grants_exactly_the_verbs_the_scaler_calls():
    got = {}
    for r in rules():
        for group in r["apiGroups"]:
            for resource in r["resources"]:
                names = tuple(r["resourceNames"]) if "resourceNames" in r else None
                got[(group, resource, names)] = sorted(r["verbs"])
    assert got == EXPECTED_RULES


def test_role_grants_nothing_beyond_the_scaler_needs():
    text = (MANIFESTS / "role.yaml").read_text()
    assert "*" not in text and "secrets" not in text
    for r in rules():
        if "deployments" in r["resources"]:
            assert set(r["verbs"]) <= {"get", "list", "watch"}  # no write on Deployments
    assert load("role.yaml")["kind"] == "Role"  # namespaced, never a ClusterRole
    binding = load("rolebinding.yaml")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "gnnrl-scaler"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gnnrl-scaler"}]


_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/[^/]+/"
                   r"(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")
_VERB = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def test_every_call_of_an_active_scaler_is_allowed_and_every_rule_is_used():
    kube = FakeKubernetes().start()
    try:
        fake_cluster(kube, {"cartservice": (2, 1.4)})
        clock = FakeClock()
        elector = LeaseElector(kube.api_client(), NS, "gnnrl-scaler", "a", clock)
        elector.try_acquire_or_renew()  # create
        clock.advance(2)
        elector.try_acquire_or_renew()  # get + update
        scaler = scaler_for(kube, config({"cartservice": (1, 10)}), clock, elector=elector)
        scaler.tick()
        assert kube.scale_writes() and kube.events  # it really wrote a scale and an Event
        from gnnrl.sources.kubernetes import KubernetesSource

        KubernetesSource(kube.api_client(), namespace=NS).snapshot()  # the graph's k8s part
    finally:
        kube.stop()
    used: set[tuple[int, str]] = set()
    for req in kube.requests:
        m = _PATH.match(req.path)
        assert m, req.path
        resource = m["resource"] + (f"/{m['sub']}" if m["sub"] else "")
        verb = _VERB.get(req.method) or ("get" if m["name"] else "list")
        hits = allowed(m["group"] or "", resource, verb, m["name"])
        assert hits, f"{req.method} {req.path} is not allowed by gnnrl/manifests/role.yaml"
        used.update(hits)
    granted = {(i, verb) for i, r in enumerate(rules()) for verb in r["verbs"]}
    never = sorted((rules()[i]["resources"][0], verb) for i, verb in granted - used)
    assert never == [], f"verbs no call needs: {never}"


def deployment_container() -> dict:
    return load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]


def test_deployment_runs_non_root_read_only_with_resources_and_probes():
    spec = load("deployment.yaml")["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    c = deployment_container()
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(c["resources"]) == {"requests", "limits"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--mode=shadow" in c["args"]
    assert spec["serviceAccountName"] == "gnnrl-scaler"


def test_configmap_is_a_valid_scaler_config_and_ports_agree():
    cfg = ScalerConfig.from_dict(json.loads(load("configmap.yaml")["data"]["scaler.json"]))
    assert cfg.mode == "shadow" and cfg.services
    port = deployment_container()["ports"][0]
    assert port["containerPort"] == cfg.metrics_port
    svc = load("service.yaml")["spec"]["ports"][0]
    assert svc["targetPort"] == port["name"] and svc["port"] == cfg.metrics_port
    assert load("kustomization.yaml")["namespace"] == cfg.namespace


def test_two_replicas_prefer_separate_nodes_and_one_survives_a_drain():
    deployment = load("deployment.yaml")
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (term,) = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == labels
    pdb = load("poddisruptionbudget.yaml")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": labels}}


def test_network_policy_admits_only_metrics_in_and_the_scalers_peers_out():
    policy = load("networkpolicy.yaml")["spec"]
    assert policy["podSelector"]["matchLabels"] == load("deployment.yaml")["spec"][
        "template"]["metadata"]["labels"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]     # default deny both ways
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    assert all("namespaceSelector" in peer for peer in ingress["from"])
    egress_ports = {(p["protocol"], p["port"]) for rule in policy["egress"]
                    for p in rule["ports"]}
    cfg = json.loads(load("configmap.yaml")["data"]["scaler.json"])
    env = {e["name"]: e.get("value", "") for e in deployment_container()["env"]}
    assert ("UDP", 53) in egress_ports and ("TCP", 443) in egress_ports        # DNS, API
    for url in (env["GNNRL_KIALI_URL"], env["MLFLOW_TRACKING_URI"]):          # Kiali, MLflow
        assert ("TCP", int(url.rsplit(":", 1)[1].split("/")[0])) in egress_ports
    assert ("TCP", 9090) in egress_ports and cfg["source"] in ("kiali", "prometheus")

"""A small HTTP-level fake of the Kubernetes API for tests (no real API server in CI).

The official `kubernetes` client talks to it exactly as to a kube-apiserver: real HTTP on
127.0.0.1, real JSON bodies, real status codes and `Retry-After` headers. It serves

=======================================================  ==============================
path                                                     verbs
=======================================================  ==============================
/apis/apps/v1/namespaces/{ns}/deployments                GET (list, labelSelector)
/apis/apps/v1/namespaces/{ns}/deployments/{name}         GET, PUT, PATCH
/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale   GET, PUT, PATCH
/api/v1/namespaces/{ns}/pods[/{name}]                    GET (list, labelSelector)
/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods        GET (PodMetricsList)
/apis/coordination.k8s.io/v1/namespaces/{ns}/leases      GET, POST; /{name}: GET PUT PATCH DELETE
/api/v1/namespaces/{ns}/events                           GET, POST
/apis/events.k8s.io/v1/namespaces/{ns}/events            GET, POST
/version, /api, /apis, /api/v1, /apis/{group}/{version}  GET (discovery, `DISCOVERY`)
any namespaced object of `DISCOVERY` (server-side apply)  PATCH apply-patch+yaml
=======================================================  ==============================

Semantics kept from the real server (https://kubernetes.io/docs/reference/using-api/api-concepts/):

* every object has a `metadata.resourceVersion`; a PUT (or a PATCH whose body carries a
  `metadata.resourceVersion`) with a stale version answers **409 Conflict**;
* the `scale` subresource (`autoscaling/v1` `Scale`) shares the Deployment's
  resourceVersion and writes its `spec.replicas`
  (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/);
* errors are `Status` objects (`kind: Status`, `reason`, `code`, `message`) and 429 carries
  `Retry-After` (https://kubernetes.io/docs/reference/using-api/api-concepts/#retry-after);
* a dict PATCH body (the client sends it as strategic-merge-patch) is applied as a
  recursive merge; a list body as a JSON patch (add / replace / remove; a failed `test`
  op answers 422).
* a server-side apply (PATCH with ``Content-Type: application/apply-patch+yaml``, what
  `kubernetes.dynamic.DynamicClient.server_side_apply` sends) of any namespaced kind listed
  in `DISCOVERY` stores the document as sent in `applied` and answers it back
  (https://kubernetes.io/docs/reference/using-api/server-side-apply/); field ownership is
  not modelled.

Faults are scripted with `inject(Fault(...))`: a status (409/429/403/404/5xx) for the next
`times` matching requests, optionally after a delay (a delay longer than the client's
timeout is a timeout); `status=None` with a delay serves the request normally but late.
A faulted request changes nothing. Everything the server receives is in `requests`; the
successful mutating ones are in `writes`.

Usage::

    with FakeKubernetes() as kube:
        kube.add_deployment("cartservice", namespace="shop", replicas=2)
        kube.set_usage("cartservice", namespace="shop", cpu_m_per_pod=120, mem_mi_per_pod=80)
        apps = kubernetes.client.AppsV1Api(kube.api_client())
        apps.patch_namespaced_deployment_scale("cartservice", "shop", {"spec": {"replicas": 3}})
        assert kube.replicas("cartservice", "shop") == 3
        kube.inject(Fault(status=429, retry_after_s=7, method="PATCH", path=r"/scale$"))
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import http.server
import json
import re
import threading
import time
import urllib.parse
from typing import Any

import kubernetes

from gnnrl.testing.loopback import LoopbackServer
from gnnrl.testing.base import LoopbackFake

#: when every fake pod started (and last changed readiness): hours before the metrics'
#: timestamp, so no pod is inside the HPA's CPU initialisation period
POD_START_TIME = "2025-12-31T00:00:00Z"
#: seconds from a fake pod's creation to its Ready transition (`set_startup` changes it)
POD_STARTUP_S = 20.0

_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 409: "Conflict", 410: "Gone", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 502: "BadGateway",
    503: "ServiceUnavailable", 504: "Timeout",
}

_NS = r"/namespaces/(?P<ns>[a-z0-9.-]+)"
_NAME = r"(?P<name>[a-z0-9.-]+)"
_ROUTES: list[tuple[str, re.Pattern[str]]] = [
    ("scale", re.compile(rf"^/apis/apps/v1{_NS}/deployments/{_NAME}/scale$")),
    ("deployment", re.compile(rf"^/apis/apps/v1{_NS}/deployments/{_NAME}$")),
    ("deployments", re.compile(rf"^/apis/apps/v1{_NS}/deployments$")),
    ("pod", re.compile(rf"^/api/v1{_NS}/pods/{_NAME}$")),
    ("pods", re.compile(rf"^/api/v1{_NS}/pods$")),
    ("podmetrics", re.compile(rf"^/apis/metrics.k8s.io/v1beta1{_NS}/pods$")),
    ("lease", re.compile(rf"^/apis/coordination.k8s.io/v1{_NS}/leases/{_NAME}$")),
    ("leases", re.compile(rf"^/apis/coordination.k8s.io/v1{_NS}/leases$")),
    ("events", re.compile(rf"^/api/v1{_NS}/events$")),
    ("events", re.compile(rf"^/apis/events.k8s.io/v1{_NS}/events$")),
]

#: group/version -> (plural, kind) of the namespaced resources the discovery endpoints
#: announce (what `DynamicClient.resources.get` looks up before a server-side apply)
DISCOVERY: dict[str, tuple[tuple[str, str], ...]] = {
    "v1": (("configmaps", "ConfigMap"), ("events", "Event"), ("pods", "Pod"),
           ("serviceaccounts", "ServiceAccount"), ("services", "Service")),
    "apps/v1": (("deployments", "Deployment"),),
    "coordination.k8s.io/v1": (("leases", "Lease"),),
    "rbac.authorization.k8s.io/v1": (("roles", "Role"), ("rolebindings", "RoleBinding")),
}
APPLY_PATCH = "application/apply-patch+yaml"
_APPLY = re.compile(rf"^/(?:api/(?P<core>v1)|apis/(?P<gv>[a-z0-9.-]+/v[a-z0-9]+))"
                    rf"{_NS}/(?P<plural>[a-z]+)/{_NAME}$")
_DISCOVERY_PATHS = {"/version", "/api", "/apis", "/api/v1",
                    *(f"/apis/{gv}" for gv in DISCOVERY if "/" in gv)}


@dataclasses.dataclass
class Fault:
    """A scripted answer for the next `times` requests matching `method` and `path`.

    Attributes:
        status: HTTP status to answer (e.g. 409, 429, 403, 404, 500, 503); None serves the
            request normally after `delay_s` (a slow but successful server).
        method: HTTP verb to match ("GET", "PATCH", ...); None matches any.
        path: regular expression searched in the URL path; None matches any.
        times: how many matching requests it answers; -1 for all of them.
        retry_after_s: value of the `Retry-After` header (seconds), if any.
        delay_s: seconds to wait before answering (longer than the client's read timeout
            makes the client time out).
        message: the Status message.
    """

    status: int | None = 500
    method: str | None = None
    path: str | None = None
    times: int = 1
    retry_after_s: float | None = None
    delay_s: float = 0.0
    message: str = "injected by FakeKubernetes"

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclasses.dataclass
class Request:
    """One request the fake received. `status` is what it answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    content_type: str
    status: int = 0
    t: float = dataclasses.field(default_factory=time.monotonic)


class _Reply(Exception):
    """Control flow inside the handler: answer `code` with `body`."""

    def __init__(self, code: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(code)
        self.code, self.body, self.headers = code, body, headers or {}


def status_body(code: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """A `meta/v1 Status` failure object as the API server returns it."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason or _REASONS.get(code, "Unknown"), "code": code}


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 merge patch (null deletes), applied recursively in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _json_patch(target: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    """RFC 6902 JSON patch with add / replace / remove / test on object paths."""
    for op in ops:
        if not isinstance(op, dict) or "path" not in op or "op" not in op:
            raise _Reply(400, status_body(400, f"invalid JSON patch operation {op!r}"))
        keys = [k.replace("~1", "/").replace("~0", "~") for k in op["path"].split("/")[1:]]
        parent = target
        for key in keys[:-1]:
            parent = parent.setdefault(key, {})
        last = keys[-1]
        if op["op"] in ("add", "replace"):
            parent[last] = copy.deepcopy(op.get("value"))
        elif op["op"] == "remove":
            parent.pop(last, None)
        elif op["op"] == "test":
            if parent.get(last) != op.get("value"):
                raise _Reply(422, status_body(422, f"JSON patch test failed at {op['path']}"))
        else:
            raise _Reply(400, status_body(400, f"unsupported JSON patch op {op['op']!r}"))
    return target


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors ("a=b,c==d,e!=f")."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.strip() not in labels:
            return False
    return True


def _pod_hash(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:10]


class FakeKubernetes(LoopbackFake):
    """Threaded fake kube-apiserver on 127.0.0.1 (see the module docstring).

    Args:
        auto_ready: when a scale write changes `spec.replicas`, `status.readyReplicas`
            follows immediately (set False to model pods that take time to start and
            move them with `set_ready`).
    """

    def __init__(self, *, auto_ready: bool = True) -> None:
        self.auto_ready = auto_ready
        self.requests: list[Request] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._rv = 1000
        self._deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self._usage: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
        self._startup: dict[tuple[str, str], tuple[float, ...]] = {}
        self._leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        #: documents received by server-side apply, in order
        self.applied: list[dict[str, Any]] = []
        self._server: LoopbackServer | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeKubernetes:
        self._server = LoopbackServer(_make_handler(self), name="FakeKubernetes").start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port()}"

    def configuration(self) -> kubernetes.client.Configuration:
        """A client `Configuration` pointing at this server (urllib3 retries disabled, so
        a test sees each request it caused)."""
        config = kubernetes.client.Configuration()
        config.host = self.url
        config.retries = False
        return config

    def api_client(self) -> kubernetes.client.ApiClient:
        return kubernetes.client.ApiClient(self.configuration())

    # ----------------------------------------------------------------- scripting
    def inject(self, fault: Fault | None = None, **kwargs: Any) -> Fault:
        """Queue a fault (a `Fault` or its fields as keywords). Faults match in order."""
        fault = fault or Fault(**kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def writes(self) -> list[Request]:
        """Successful mutating requests (POST/PUT/PATCH/DELETE answered < 400), in order."""
        with self._lock:
            return [r for r in self.requests
                    if r.method in ("POST", "PUT", "PATCH", "DELETE") and 0 < r.status < 400]

    def scale_writes(self) -> list[tuple[str, str, int]]:
        """(namespace, deployment, replicas) of every successful write to a scale."""
        out = []
        for r in self.writes:
            m = _ROUTES[0][1].match(r.path)
            if m and isinstance(r.body, dict):
                replicas = r.body.get("spec", {}).get("replicas")
                out.append((m["ns"], m["name"], replicas))
            elif m and isinstance(r.body, list):
                for op in r.body:
                    if op.get("path") == "/spec/replicas":
                        out.append((m["ns"], m["name"], op.get("value")))
        return out

    # ----------------------------------------------------------------- state
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def add_deployment(
        self,
        name: str,
        namespace: str = "default",
        replicas: int = 1,
        *,
        ready_replicas: int | None = None,
        cpu_request: str | None = "100m",
        mem_request: str | None = "64Mi",
        cpu_limit: str | None = "200m",
        mem_limit: str | None = "128Mi",
        sidecar: bool = True,
        annotations: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a Deployment (selector `app=<name>`) and its pods.

        The pod template has one container `server` with the given requests/limits (None
        leaves that quantity out) and, with `sidecar`, an `istio-proxy` container
        requesting 10m CPU / 40Mi. Returns a copy of the Deployment object.
        """
        containers: list[dict[str, Any]] = [{"name": "server", "image": f"example/{name}:1",
                                             "resources": _resources(cpu_request, mem_request,
                                                                     cpu_limit, mem_limit)}]
        if sidecar:
            containers.append({"name": "istio-proxy", "image": "istio/proxyv2:1.22",
                               "resources": _resources("10m", "40Mi", "2000m", "1Gi")})
        match = {"app": name}
        with self._lock:
            dep = {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                             "resourceVersion": self._next_rv(), "generation": 1,
                             "labels": {**match, **(labels or {})},
                             "annotations": dict(annotations or {})},
                "spec": {"replicas": replicas, "selector": {"matchLabels": match},
                         "template": {"metadata": {"labels": dict(match)},
                                      "spec": {"containers": containers}}},
                "status": {"observedGeneration": 1, "replicas": replicas,
                           "readyReplicas": replicas if ready_replicas is None else ready_replicas,
                           "availableReplicas": replicas if ready_replicas is None
                           else ready_replicas},
            }
            self._deployments[(namespace, name)] = dep
            self._sync_pods(dep)
            return copy.deepcopy(dep)

    def deployment(self, name: str, namespace: str = "default") -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._deployments[(namespace, name)])

    def replicas(self, name: str, namespace: str = "default") -> int:
        return int(self.deployment(name, namespace)["spec"]["replicas"])

    def set_ready(self, name: str, namespace: str, ready: int) -> None:
        """Set `status.readyReplicas` (pods starting up or crashing)."""
        with self._lock:
            dep = self._deployments[(namespace, name)]
            dep["status"]["readyReplicas"] = ready
            dep["status"]["availableReplicas"] = ready
            self._sync_pods(dep)

    def set_startup(self, name: str, namespace: str, seconds: float | list[float]) -> None:
        """Seconds from creation to Ready of the Deployment's pods: one value for all, or
        one per pod (in pod order; the last repeats). Pods are created that long before
        `POD_START_TIME`, when their Ready condition turned."""
        with self._lock:
            values = [seconds] if isinstance(seconds, int | float) else list(seconds)
            self._startup[(namespace, name)] = tuple(float(v) for v in values)
            self._sync_pods(self._deployments[(namespace, name)])

    def set_usage(self, name: str, namespace: str = "default", *, cpu_m_per_pod: float,
                  mem_mi_per_pod: float, sidecar_cpu_m: float = 5.0,
                  sidecar_mem_mi: float = 30.0) -> None:
        """metrics.k8s.io usage of every pod of a Deployment, written the way
        metrics-server writes it (CPU in nanocores "n", memory in "Ki")."""
        usage = {"server": {"cpu": f"{round(cpu_m_per_pod * 1e6)}n",
                            "memory": f"{round(mem_mi_per_pod * 1024)}Ki"},
                 "istio-proxy": {"cpu": f"{round(sidecar_cpu_m * 1e6)}n",
                                 "memory": f"{round(sidecar_mem_mi * 1024)}Ki"}}
        with self._lock:
            self._usage[(namespace, name)] = usage

    def set_pod_usage(self, pod: str, namespace: str, containers: dict[str, dict[str, str]]
                      ) -> None:
        """Raw per-pod usage strings, e.g. {"server": {"cpu": "1.5e-1", "memory": "1Gi"}}."""
        with self._lock:
            self._usage[(namespace, "pod:" + pod)] = containers

    def pods(self, namespace: str = "default") -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(p) for (ns, _), p in sorted(self._pods.items())
                    if ns == namespace]

    def lease(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        with self._lock:
            lease = self._leases.get((namespace, name))
            return copy.deepcopy(lease) if lease else None

    def _sync_pods(self, dep: dict[str, Any]) -> None:
        """Make the Deployment's pods match spec.replicas and status.readyReplicas."""
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        rs = f"{name}-{_pod_hash(name)}"
        for key in [k for k, p in self._pods.items()
                    if k[0] == ns and p["metadata"]["name"].startswith(rs + "-")]:
            del self._pods[key]
        ready = int(dep["status"].get("readyReplicas") or 0)
        startup = self._startup.get((ns, name), (POD_STARTUP_S,))
        for i in range(int(dep["spec"]["replicas"])):
            pod_name = f"{rs}-{i:05d}"
            spec = copy.deepcopy(dep["spec"]["template"]["spec"])
            is_ready = "True" if i < ready else "False"
            created = _before(POD_START_TIME, startup[min(i, len(startup) - 1)])
            self._pods[(ns, pod_name)] = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": ns, "resourceVersion": self._next_rv(),
                             "creationTimestamp": created,
                             "labels": dict(dep["spec"]["template"]["metadata"]["labels"]),
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                  "name": rs, "uid": f"uid-{rs}",
                                                  "controller": True}]},
                "spec": spec,
                # started long before the metric's window: past the HPA's CPU
                # initialisation period, so only the Ready condition decides
                "status": {"phase": "Running", "startTime": POD_START_TIME,
                           "conditions": [{"type": "Ready", "status": is_ready,
                                           "lastTransitionTime": POD_START_TIME}]},
            }

    # ----------------------------------------------------------------- serving
    def handle(self, method: str, path: str, query: dict[str, str], body: Any,
               content_type: str = "") -> tuple[int, Any]:
        """Answer one request (called by the HTTP handler under the lock)."""
        if method == "GET" and path in _DISCOVERY_PATHS:
            return 200, _discovery(path)
        apply = _APPLY.match(path)
        if method == "PATCH" and content_type.startswith(APPLY_PATCH) and apply:
            return self._server_side_apply(apply["core"] or apply["gv"], apply["plural"], body)
        for kind, pattern in _ROUTES:
            m = pattern.match(path)
            if m:
                fn = getattr(self, f"_serve_{kind}")
                return fn(method, m["ns"], m.groupdict().get("name"), query, body)
        raise _Reply(404, status_body(404, f"the server could not find the requested resource "
                                           f"({method} {path})"))

    def _dep(self, ns: str, name: str) -> dict[str, Any]:
        dep = self._deployments.get((ns, name))
        if dep is None:
            raise _Reply(404, status_body(404, f'deployments.apps "{name}" not found'))
        return dep

    @staticmethod
    def _check_rv(current: dict[str, Any], body: Any, kind: str) -> None:
        sent = body.get("metadata", {}).get("resourceVersion") if isinstance(body, dict) else None
        if sent is not None and str(sent) != current["metadata"]["resourceVersion"]:
            name = current["metadata"]["name"]
            raise _Reply(409, status_body(
                409, f'Operation cannot be fulfilled on {kind} "{name}": the object has been '
                     "modified; please apply your changes to the latest version and try again"))

    def _scale_of(self, dep: dict[str, Any]) -> dict[str, Any]:
        sel = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
        meta = dep["metadata"]
        return {"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                             "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
                "spec": {"replicas": dep["spec"]["replicas"]},
                "status": {"replicas": dep["status"]["replicas"], "selector": sel}}

    def _write_replicas(self, dep: dict[str, Any], replicas: Any) -> None:
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise _Reply(422, status_body(
                422, f"spec.replicas: Invalid value: {replicas!r}: must be a non-negative integer"))
        dep["spec"]["replicas"] = replicas
        dep["metadata"]["resourceVersion"] = self._next_rv()
        dep["metadata"]["generation"] += 1
        dep["status"]["observedGeneration"] = dep["metadata"]["generation"]
        dep["status"]["replicas"] = replicas
        if self.auto_ready:
            dep["status"]["readyReplicas"] = replicas
            dep["status"]["availableReplicas"] = replicas
        self._sync_pods(dep)

    def _patched(self, current: dict[str, Any], body: Any) -> dict[str, Any]:
        new = copy.deepcopy(current)
        if isinstance(body, list):
            return _json_patch(new, body)
        if isinstance(body, dict):
            return _merge(new, body)
        raise _Reply(400, status_body(400, "patch body must be an object or a list"))

    def _serve_scale(self, method, ns, name, query, body):
        dep = self._dep(ns, name)
        if method == "GET":
            return 200, self._scale_of(dep)
        if method not in ("PUT", "PATCH"):
            raise _Reply(405, status_body(405, f"{method} not allowed on scale"))
        scale = self._scale_of(dep)
        self._check_rv(scale, body, "deployments.apps")
        new = body if method == "PUT" else self._patched(scale, body)
        self._write_replicas(dep, new.get("spec", {}).get("replicas"))
        return 200, self._scale_of(dep)

    def _serve_deployment(self, method, ns, name, query, body):
        dep = self._dep(ns, name)
        if method == "GET":
            return 200, copy.deepcopy(dep)
        if method not in ("PUT", "PATCH"):
            raise _Reply(405, status_body(405, f"{method} not allowed on deployments"))
        self._check_rv(dep, body, "deployments.apps")
        new = body if method == "PUT" else self._patched(dep, body)
        replicas = new.get("spec", {}).get("replicas", dep["spec"]["replicas"])
        for field in ("labels", "annotations"):
            if field in new.get("metadata", {}):
                dep["metadata"][field] = dict(new["metadata"][field] or {})
        self._write_replicas(dep, replicas)
        return 200, copy.deepcopy(dep)

    def _list(self, kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": str(self._rv)},
                "items": [copy.deepcopy(i) for i in items]}

    def _serve_deployments(self, method, ns, name, query, body):
        if method != "GET":
            raise _Reply(405, status_body(405, f"{method} not allowed on deployments"))
        sel = query.get("labelSelector", "")
        items = [d for (n, _), d in sorted(self._deployments.items())
                 if n == ns and _selector_matches(sel, d["metadata"]["labels"])]
        return 200, {**self._list("DeploymentList", items), "apiVersion": "apps/v1"}

    def _serve_pods(self, method, ns, name, query, body):
        if method != "GET":
            raise _Reply(405, status_body(405, f"{method} not allowed on pods"))
        sel = query.get("labelSelector", "")
        items = [p for (n, _), p in sorted(self._pods.items())
                 if n == ns and _selector_matches(sel, p["metadata"]["labels"])]
        return 200, self._list("PodList", items)

    def _serve_pod(self, method, ns, name, query, body):
        pod = self._pods.get((ns, name))
        if method != "GET" or pod is None:
            raise _Reply(404, status_body(404, f'pods "{name}" not found'))
        return 200, copy.deepcopy(pod)

    def _serve_podmetrics(self, method, ns, name, query, body):
        if method != "GET":
            raise _Reply(405, status_body(405, f"{method} not allowed on pod metrics"))
        sel = query.get("labelSelector", "")
        items = []
        for (n, pod_name), pod in sorted(self._pods.items()):
            if n != ns or not _selector_matches(sel, pod["metadata"]["labels"]):
                continue
            app = pod["metadata"]["labels"].get("app", "")
            usage = self._usage.get((ns, "pod:" + pod_name)) or self._usage.get((ns, app))
            if usage is None:      # metrics-server has not scraped this pod (yet)
                continue
            items.append({"metadata": {"name": pod_name, "namespace": ns,
                                       "labels": dict(pod["metadata"]["labels"])},
                          "timestamp": "2026-01-01T00:00:00Z", "window": "30s",
                          "containers": [{"name": c, "usage": dict(u)} for c, u in usage.items()]})
        return 200, {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                     "metadata": {}, "items": items}

    def _serve_leases(self, method, ns, name, query, body):
        if method == "GET":
            items = [v for (n, _), v in sorted(self._leases.items()) if n == ns]
            return 200, {**self._list("LeaseList", items), "apiVersion": "coordination.k8s.io/v1"}
        if method != "POST" or not isinstance(body, dict):
            raise _Reply(405, status_body(405, f"{method} not allowed on leases"))
        lease_name = body.get("metadata", {}).get("name")
        if not lease_name:
            raise _Reply(422, status_body(422, "metadata.name: Required value"))
        if (ns, lease_name) in self._leases:
            raise _Reply(409, status_body(409, f'leases.coordination.k8s.io "{lease_name}" '
                                               "already exists", reason="AlreadyExists"))
        lease = copy.deepcopy(body)
        lease.setdefault("apiVersion", "coordination.k8s.io/v1")
        lease.setdefault("kind", "Lease")
        lease["metadata"].update(namespace=ns, resourceVersion=self._next_rv())
        self._leases[(ns, lease_name)] = lease
        return 201, copy.deepcopy(lease)

    def _serve_lease(self, method, ns, name, query, body):
        lease = self._leases.get((ns, name))
        if lease is None:
            raise _Reply(404, status_body(404, f'leases.coordination.k8s.io "{name}" not found'))
        if method == "GET":
            return 200, copy.deepcopy(lease)
        if method == "DELETE":
            del self._leases[(ns, name)]
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Success", "code": 200}
        if method not in ("PUT", "PATCH"):
            raise _Reply(405, status_body(405, f"{method} not allowed on leases"))
        self._check_rv(lease, body, "leases.coordination.k8s.io")
        new = copy.deepcopy(body) if method == "PUT" else self._patched(lease, body)
        new.setdefault("metadata", {}).update(name=name, namespace=ns,
                                              resourceVersion=self._next_rv())
        self._leases[(ns, name)] = new
        return 200, copy.deepcopy(new)

    def _serve_events(self, method, ns, name, query, body):
        if method == "GET":
            return 200, self._list("EventList", [e for e in self.events
                                                 if e["metadata"].get("namespace") == ns])
        if method != "POST" or not isinstance(body, dict):
            raise _Reply(405, status_body(405, f"{method} not allowed on events"))
        event = copy.deepcopy(body)
        meta = event.setdefault("metadata", {})
        meta.setdefault("name", meta.get("generateName", "event.") + str(len(self.events)))
        meta.update(namespace=ns, resourceVersion=self._next_rv())
        self.events.append(event)
        return 201, copy.deepcopy(event)

    def _server_side_apply(self, group_version: str, plural: str, body: Any
                           ) -> tuple[int, Any]:
        if plural not in {p for p, _ in DISCOVERY.get(group_version, ())}:
            raise _Reply(404, status_body(404, f"the server could not find the requested "
                                               f"resource ({group_version} {plural})"))
        if not isinstance(body, dict):
            raise _Reply(400, status_body(400, "a server-side apply body is one object"))
        self.applied.append(copy.deepcopy(body))
        return 200, copy.deepcopy(body)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            del self._faults[i]
                    return fault
        return None


def _before(stamp: str, seconds: float) -> str:
    """The RFC 3339 time `seconds` before `stamp` (whole seconds, as the API writes it)."""
    t = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    t -= datetime.timedelta(seconds=round(seconds))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _resources(cpu_req: str | None, mem_req: str | None, cpu_lim: str | None,
               mem_lim: str | None) -> dict[str, dict[str, str]]:
    requests = {k: v for k, v in (("cpu", cpu_req), ("memory", mem_req)) if v is not None}
    limits = {k: v for k, v in (("cpu", cpu_lim), ("memory", mem_lim)) if v is not None}
    return {"requests": requests, "limits": limits}


def _discovery(path: str) -> dict[str, Any]:
    """The discovery document at `path` (/version, /api, /apis, /api/v1, /apis/{g}/{v})."""
    if path == "/version":
        return {"major": "1", "minor": "30", "gitVersion": "v1.30.0"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"]}
    if path == "/apis":
        groups = [{"name": gv.split("/")[0],
                   "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                   "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
                  for gv in DISCOVERY if "/" in gv]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    gv = path.removeprefix("/apis/").removeprefix("/api/")
    return {"kind": "APIResourceList", "groupVersion": gv, "resources": [
        {"name": plural, "kind": kind, "namespaced": True, "singularName": "",
         "verbs": ["create", "delete", "get", "list", "patch", "update"]}
        for plural, kind in DISCOVERY[gv]]}


def _make_handler(fake: FakeKubernetes) -> type[http.server.BaseHTTPRequestHandler]:
    class FakeKubernetesHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # the stdlib handler writes headers and body separately: with Nagle's algorithm and
        # delayed ACKs each request would cost ~40 ms
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            pass

        def _handle(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            ctype = self.headers.get("Content-Type", "")
            req = Request(self.command, url.path, query, None, ctype)
            with fake._lock:
                fake.requests.append(req)
            headers: dict[str, str] = {}
            try:
                try:
                    req.body = json.loads(raw) if raw else None
                except ValueError as exc:
                    raise _Reply(400, status_body(400, f"invalid JSON body: {exc}")) from exc
                fault = fake._take_fault(self.command, url.path)
                if fault is not None and fault.delay_s > 0:
                    time.sleep(fault.delay_s)
                if fault is not None and fault.status is not None:
                    if fault.retry_after_s is not None:
                        headers["Retry-After"] = f"{fault.retry_after_s:g}"
                    raise _Reply(fault.status, status_body(fault.status, fault.message))
                with fake._lock:
                    code, body = fake.handle(self.command, url.path, query, req.body, ctype)
            except _Reply as reply:
                code, body = reply.code, reply.body
                headers.update(reply.headers)
            req.status = code
            payload = json.dumps(body).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return FakeKubernetesHandler

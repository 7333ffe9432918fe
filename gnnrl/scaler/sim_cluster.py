"""`SimCluster`: the simulator (`gnnrl.sim.BatchedSim`, N=1) behind the scaler's cluster
interface, for `gnnrl scaler run --sim`, the soak test and the tick benchmark.

It behaves like the Kubernetes API the scaler talks to: a `spec.replicas` per Deployment with
a resourceVersion (a write against a stale version is a 409), pods with per-pod CPU samples
(the simulator's service total spread over the ready pods, `pods_from_aggregate`), and a
traffic graph as the scaler reads it on a cluster: the Kiali graph a mesh with this traffic
would answer (`kiali_payload`, parsed by the same `parse_graph`) merged with what the
Kubernetes source reports (`graph_snapshot`). The simulation advances one interval each time the
scaler's clock passes an interval boundary, so a `FakeClock` makes a closed-loop run as fast
as the CPU allows.

`SimFaults` injects, with seeded probabilities, the faults of docs/reliability.md: typed API
errors (409, 429 with Retry-After, 5xx/timeouts), pods without metrics, NaN metrics, a
failing graph source, and hand-made changes of spec.replicas (to 0, or outside [min, max]).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.core.envs.cluster_view import is_request_protocol
from gnnrl.data.snapshot import NODE_COLUMNS, GraphSnapshot
from gnnrl.hpa.calculator import pods_from_aggregate
from gnnrl.scaler.clock import Clock
from gnnrl.scaler.observe import ScaleState, ServiceState
from gnnrl.sim import AppSpec, BatchedSim, SimConfig, load_app_spec, make_trace
from gnnrl.kube.errors import (
    K8sConflict,
    K8sError,
    K8sNotFound,
    K8sTooManyRequests,
    K8sUnavailable,
)
from gnnrl.sources.errors import SourceUnavailable
from gnnrl.sources.kiali_graph import parse_graph


@dataclasses.dataclass
class SimFaults(JsonConfig):
    """Per-call probabilities of injected faults (0 = never).

    Attributes:
        conflict, throttle, unavailable: a write answers 409 / 429 (Retry-After
            `retry_after_s`) / 5xx-or-timeout.
        read_unavailable: a scale read answers 5xx-or-timeout.
        missing_pod_metrics: each pod independently has no metric sample.
        nan_metrics: a service's CPU (and graph row) is NaN for a tick.
        graph_fail: the graph source fails for a tick.
        hand_zero: per tick and service, someone scales it to 0 (it comes back later with
            probability `hand_restore`).
        hand_out_of_bounds: per tick and service, someone sets replicas outside [min, max].
    """

    conflict: float = 0.0
    throttle: float = 0.0
    unavailable: float = 0.0
    read_unavailable: float = 0.0
    missing_pod_metrics: float = 0.0
    nan_metrics: float = 0.0
    graph_fail: float = 0.0
    hand_zero: float = 0.0
    hand_restore: float = 0.2
    hand_out_of_bounds: float = 0.0
    retry_after_s: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "retry_after_s":
                if not (math.isfinite(v) and v >= 0):
                    raise ConfigError(f"retry_after_s: must be >= 0, got {v}")
            elif not 0.0 <= v <= 1.0:
                raise ConfigError(f"{f.name}: a probability in [0, 1], got {v}")


class SimCluster:
    """One simulated application as "the cluster".

    Args:
        app: an `AppSpec`, a built-in name or a spec path.
        clock: the scaler's clock; the simulation follows it, one step per interval.
        interval_s: simulated seconds per step.
        trace: entry req/s per step (repeats when exhausted); default a diurnal trace.
        faults: injected faults (None = none).
        seed: seeds the simulator and the faults.

    Attributes:
        writes: (t, service, replicas) of every successful write.
        limits: service -> (min, max) of the application spec.
    """

    def __init__(self, app: AppSpec | str, clock: Clock, interval_s: float = 15.0,
                 trace: np.ndarray | None = None, faults: SimFaults | None = None,
                 seed: int = 0, namespace: str = "sim") -> None:
        self.app = app if isinstance(app, AppSpec) else load_app_spec(app)
        self.clock, self.interval_s, self.namespace = clock, interval_s, namespace
        self.sim = BatchedSim(self.app, 1, SimConfig(interval_s=interval_s), seed=seed)
        self.sim.reset()
        self.names = list(self.sim.service_names)
        self.trace = (np.asarray(trace, dtype=float) if trace is not None else
                      make_trace("diurnal", steps=240, interval_s=interval_s, peak_rps=150.0,
                                 seed=seed))
        self.faults = faults or SimFaults()
        self.rng = np.random.default_rng(seed + 1)
        self.spec = {n: int(self.sim.replicas[0, i]) for i, n in enumerate(self.names)}
        self.rv = dict.fromkeys(self.names, 1)
        self.limits = {n: (int(s.min_replicas), int(s.max_replicas))
                       for n, s in self.app.services.items()}
        self.writes: list[tuple[float, str, int]] = []
        self.removed: set[str] = set()
        self.steps = 0
        self._t_next = clock.monotonic()
        self._nan: set[str] = set()
        self.metrics = self.sim.step(np.array([self.trace[0]]), self._targets())

    # ------------------------------------------------------------------ simulation
    def _targets(self) -> np.ndarray:
        return np.array([[0 if n in self.removed else self.spec[n] for n in self.names]],
                        dtype=np.int64)

    def _sync(self) -> None:
        while self.clock.monotonic() >= self._t_next:
            rps = self.trace[self.steps % len(self.trace)]
            self.metrics = self.sim.step(np.array([rps]), self._targets())
            self.steps += 1
            self._t_next += self.interval_s
            self._hand_changes()
            p = self.faults.nan_metrics
            self._nan = {n for n in self.names if p and self.rng.random() < p}

    def _hand_changes(self) -> None:
        f = self.faults
        for n in self.names:
            lo, hi = self.limits[n]
            if self.spec[n] == 0 and f.hand_zero and self.rng.random() < f.hand_restore:
                self.set_by_hand(n, lo)
            elif f.hand_zero and self.rng.random() < f.hand_zero:
                self.set_by_hand(n, 0)
            elif f.hand_out_of_bounds and self.rng.random() < f.hand_out_of_bounds:
                self.set_by_hand(n, hi + 1 + int(self.rng.integers(0, 3)))

    def remove_service(self, name: str) -> None:
        """The Deployment is deleted (its pods go at once; reads answer 404)."""
        self.sim.set_active(name, False)
        self.removed.add(name)

    def add_service(self, name: str) -> None:
        """The Deployment is (re)created at its min_replicas (its pods start like new pods)."""
        self.sim.set_active(name, True)
        self.removed.discard(name)
        self.spec[name] = self.limits[name][0]
        self.rv[name] += 1

    def set_by_hand(self, name: str, replicas: int) -> None:
        """Someone (kubectl scale) sets spec.replicas."""
        self.spec[name] = int(replicas)
        self.rv[name] += 1

    def _maybe(self, p: float) -> bool:
        return bool(p) and self.rng.random() < p

    # ------------------------------------------------------------------ Cluster
    def deployment_names(self) -> list[str]:
        return [n for n in self.names if n not in self.removed]

    def read_scale(self, name: str) -> ScaleState:
        self._sync()
        if name in self.removed:
            raise K8sNotFound(f'deployments.apps "{name}" not found', status=404)
        if self._maybe(self.faults.read_unavailable):
            raise K8sUnavailable(f"read scale {name}: HTTP 503 (injected)", status=503)
        return ScaleState(name, self.spec[name], str(self.rv[name]), f"app={name}")

    def read_service(self, scale: ScaleState) -> ServiceState:
        cpu = math.nan if scale.name in self._nan else None
        svc = service_state(self.sim, self.metrics, scale, cpu_m=cpu)
        p = self.faults.missing_pod_metrics
        if p:
            svc.pods = [dataclasses.replace(q, usage_m=None) if self.rng.random() < p else q
                        for q in svc.pods]
        return svc

    def graph(self, timeout_s: float = math.inf) -> GraphSnapshot | None:
        """The simulated graph (in memory: `timeout_s` is never reached)."""
        self._sync()
        if self._maybe(self.faults.graph_fail):
            raise SourceUnavailable("graph: injected outage", source="sim")
        snap = graph_snapshot(self.sim, self.metrics, self.namespace, self.clock.monotonic())
        if self._nan:  # injected NaN metrics: the service's CPU and traffic are unknown
            bad = snap.nodes["service"].isin(sorted(self._nan)).to_numpy()
            snap.nodes.loc[bad, ["cpu_m", "rps_in"]] = np.nan
        return snap

    def write_scale(self, scale: ScaleState, replicas: int) -> ScaleState:
        name = scale.name
        f = self.faults
        if str(self.rv[name]) != scale.resource_version or self._maybe(f.conflict):
            raise K8sConflict(f"patch scale {name}: HTTP 409", status=409)
        if self._maybe(f.throttle):
            raise K8sTooManyRequests(f"patch scale {name}: HTTP 429",
                                     retry_after_s=f.retry_after_s)
        if self._maybe(f.unavailable):
            raise K8sUnavailable(f"patch scale {name}: timeout (injected)")
        if name in self.removed:
            raise K8sNotFound(f'deployments.apps "{name}" not found', status=404)
        if replicas < 0:
            raise K8sError(f"patch scale {name}: HTTP 422 negative replicas", status=422)
        self.spec[name] = int(replicas)
        self.rv[name] += 1
        self.writes.append((self.clock.monotonic(), name, int(replicas)))
        return ScaleState(name, int(replicas), str(self.rv[name]), scale.selector)


# ---------------------------------------------------------------------------- what a cluster shows
def service_state(sim: BatchedSim, m: Any, scale: ScaleState, copy: int = 0,
                  cpu_m: float | None = None) -> ServiceState:
    """What the scaler's per-Deployment read gives for service ``scale.name`` of copy
    `copy` of `m` (a `StepMetrics`): its pods with CPU samples (`pods_from_aggregate`:
    the service's CPU spread over its ready pods; pods not ready yet have no sample) and
    their memory; the spec's CPU limit, and its start-up time once a pod is Ready (what
    `KubeCluster` measures: creation -> Ready). `cpu_m` overrides the CPU total (NaN: no
    pod has a sample)."""
    i = sim.index[scale.name]
    total = float(m.cpu_m[copy, i]) if cpu_m is None else cpu_m
    ready = int(m.ready[copy, i])
    pods = pods_from_aggregate(int(m.replicas[copy, i]), ready, total,
                               float(sim.cpu_request[i]))
    spec = sim.app.services[scale.name]
    assert spec.cpu_limit_m is not None  # ServiceSpec.__post_init__ fills it
    return ServiceState(scale, pods, float(m.mem_mi[copy, i]),
                        cpu_limit_m=float(spec.cpu_limit_m),
                        startup_s=float(spec.startup_s) if ready > 0 else None)


#: the Kiali node of the mesh's ingress gateway (its traffic is the entry load)
_GATEWAY = {"id": "gateway", "nodeType": "workload", "namespace": "istio-system",
            "workload": "istio-ingressgateway", "app": "istio-ingressgateway",
            "isGateway": {"ingressInfo": {"hostnames": ["*"]}}}


def _num(x: float) -> str:
    # Kiali prints rates with 2 decimals; full precision here so that the scaler's view
    # of a simulated step equals the env's exactly (the test of the observation builder)
    return repr(float(x))


def kiali_payload(sim: BatchedSim, m: Any, namespace: str, ts_s: float,
                  copy: int = 0) -> dict[str, Any]:
    """The Kiali workload graph (``/api/namespaces/graph``, the appenders `KialiClient`
    asks for) that a mesh running copy `copy` of `m` would answer.

    Nodes: the active services and the ingress gateway. Edges: gateway -> entry (http,
    the entry's received req/s, with the end-to-end p95 and error share: what the
    gateway's proxy sees) and every call between active services that carried
    traffic (Kiali lists only edges with telemetry in the window). HTTP/gRPC calls carry
    their rate, ``<protocol>PercentErr`` and ``responseTime`` (the callee's p95, ms);
    any other protocol is TCP to Istio (bytes only: ``tcp`` rate in bytes/s, no response
    time). ``isMTLS`` is the mTLS share in percent.
    """
    names = sim.service_names
    active = m.active[copy]
    nodes = [{"data": dict(_GATEWAY)}] + [
        {"data": {"id": f"w{i}", "nodeType": "workload", "namespace": namespace,
                  "workload": names[i], "app": names[i]}}
        for i in np.flatnonzero(active)]
    entry = sim.index[sim.app.entry]
    edges = [{"data": {"id": "e-gateway", "source": "gateway", "target": f"w{entry}",
                       "traffic": {"protocol": "http", "rates": {
                           "http": _num(m.rps_in[copy, entry]),
                           "httpPercentErr": _num(100.0 * m.e2e_err_rate[copy])}},
                       "responseTime": _num(m.e2e_p95_ms[copy])}}]
    for k, (i, j) in enumerate(sim.edges):
        qps = float(m.edge_qps[copy, k])
        if not (active[i] and active[j] and qps > 0):
            continue
        data: dict[str, Any] = {"id": f"e{k}", "source": f"w{i}", "target": f"w{j}",
                                "isMTLS": _num(100.0 * m.edge_mtls[copy, k])}
        protocol = sim.edge_protocols[k]
        if is_request_protocol(protocol):
            protocol = protocol.lower()
            data["traffic"] = {"protocol": protocol, "rates": {
                protocol: _num(qps),
                f"{protocol}PercentErr": _num(100.0 * m.edge_err[copy, k])}}
            data["responseTime"] = _num(m.edge_p95_ms[copy, k])
        else:
            data["traffic"] = {"protocol": "tcp",
                               "rates": {"tcp": _num(qps * 1000.0 * sim.req_kb[j])}}
        edges.append({"data": data})
    return {"timestamp": int(ts_s), "duration": 60, "graphType": "workload",
            "elements": {"nodes": nodes, "edges": edges}}


def graph_snapshot(sim: BatchedSim, m: Any, namespace: str, ts_s: float,
                   copy: int = 0) -> GraphSnapshot:
    """The scaler's graph of copy `copy` of `m`: `kiali_payload` through `parse_graph`,
    merged with the Kubernetes source's nodes (replicas = pods that exist, ready
    replicas, CPU and memory of all pods), as `gnnrl scaler run` merges them."""
    graph = parse_graph(kiali_payload(sim, m, namespace, ts_s, copy), namespace)
    on = np.flatnonzero(m.active[copy])
    nan = np.full(len(on), np.nan)
    kube = pd.DataFrame({
        "service": pd.array([sim.service_names[i] for i in on], dtype="string"),
        "replicas": m.replicas[copy, on].astype(float),
        "ready_replicas": m.ready[copy, on].astype(float), "cpu_m": m.cpu_m[copy, on],
        "mem_mi": m.mem_mi[copy, on], "rx_kbps": nan, "tx_kbps": nan, "rps_in": nan},
        columns=list(NODE_COLUMNS))
    return graph.merged(GraphSnapshot(graph.ts, namespace, kube))

"""`SimSource`: snapshots of the simulator, in the same schema as a real cluster's.

`gnnrl collect --source sim` uses it so the whole pipeline (collect -> calibrate -> train)
runs on one machine with no cluster, and so calibration can be checked against known
parameters. Each `fetch` advances a one-copy `gnnrl.sim.BatchedSim` by one interval under a
traffic trace, with replicas chosen by a simple replica policy:

* ``hpa``: the Kubernetes HPA algorithm on CPU utilisation of the request
  (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details:
  ``desired = ceil(current * currentUtilisation / targetUtilisation)``, no change within the
  0.1 tolerance, scale-down stabilised over a 300 s window, clamped to min/max).
* ``static``: every service sized once for the trace's peak at ``static_utilisation`` of
  its capacity.

What a real source would show is mirrored: a client's calls to the entry appear as an edge
(``loadgenerator -> frontend``, like Kiali's edge from the load generator workload or the
ingress gateway) with the end-to-end p95; edges without traffic are left out, as Kiali
hides idle edges unless ``includeIdleEdges=true``
(https://kiali.io/docs/features/topology/#graph-find-and-hide).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.data.snapshot import EDGE_COLUMNS, NODE_COLUMNS, GraphSnapshot
from gnnrl.sim import BatchedSim, SimConfig, StepMetrics, load_app_spec, trace_from_spec

POLICIES = ("hpa", "static")
#: HPA defaults (kube-controller-manager flags / autoscaling/v2 behavior defaults).
HPA_TOLERANCE = 0.1
HPA_DOWNSCALE_WINDOW_S = 300.0


@dataclasses.dataclass
class SimSourceConfig(JsonConfig):
    """What the simulated cluster runs.

    Attributes:
        app: built-in app name or path to an app spec (YAML/JSON).
        trace: a trace kind (`gnnrl.sim.TRACE_KINDS`) or a replay file (t_s, rps).
        peak_rps: the trace's maximum at the entry, req/s.
        trace_steps: trace length in intervals (repeated when collecting longer).
        interval_s: seconds per snapshot (the simulator's step).
        policy: replica policy, ``"hpa"`` or ``"static"``.
        hpa_target: HPA target CPU utilisation, fraction of the CPU request.
        static_utilisation: ``static`` sizing: peak load / (replicas x capacity).
        seed: seed of the trace and the simulator's noise.
        namespace: namespace written in the rows.
    """

    app: str = "onlineboutique"
    trace: str = "diurnal"
    peak_rps: float = 150.0
    trace_steps: int = 120
    interval_s: float = 30.0
    policy: str = "hpa"
    hpa_target: float = 0.7
    static_utilisation: float = 0.6
    seed: int = 0
    namespace: str = "sim"

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(f"policy: must be one of {POLICIES}, got {self.policy!r}")
        for name in ("peak_rps", "interval_s", "hpa_target"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.static_utilisation <= 1:
            raise ConfigError(f"static_utilisation: must be in (0, 1], got "
                              f"{self.static_utilisation!r}")
        if not isinstance(self.trace_steps, int) or self.trace_steps < 1:
            raise ConfigError(f"trace_steps: must be an integer >= 1, got {self.trace_steps!r}")


class SimSource:
    """A `SnapshotSource` backed by the simulator (see the module docstring).

    Attributes:
        app: the `AppSpec` simulated (ground truth for calibration tests).
        trace: (trace_steps,) entry req/s.
        sim: the `BatchedSim` (one copy).
    """

    name = "sim"

    def __init__(self, config: SimSourceConfig | None = None) -> None:
        self.config = config or SimSourceConfig()
        c = self.config
        self.app = load_app_spec(c.app)
        self.trace = trace_from_spec(c.trace, c.trace_steps, c.interval_s, c.peak_rps, c.seed)
        self.sim = BatchedSim(self.app, num_copies=1, config=SimConfig(interval_s=c.interval_s),
                              seed=c.seed)
        self._k = 0
        self._history: list[np.ndarray] = []  # HPA recommendations, newest last
        peak = self.sim.propagate(np.array([self.trace.max()]))[0]
        self._static = self._size_for(peak, c.static_utilisation)
        start = self.sim.propagate(np.array([self.trace[0]]))[0]
        self.sim.reset(self._static if c.policy == "static"
                       else self._size_for(start, c.hpa_target * self._request_share()))
        self._last: StepMetrics | None = None

    def _request_share(self) -> np.ndarray:
        """CPU request as a share of the CPU a pod burns at capacity (its limit)."""
        limit = self.sim.idle_m + self.sim.cpu_per_req * self.sim.cap
        return self.sim.cpu_request / limit

    def _size_for(self, load_rps: np.ndarray, utilisation: np.ndarray | float) -> np.ndarray:
        want = np.ceil(load_rps / (np.asarray(utilisation) * self.sim.cap))
        return np.clip(want, self.sim.min_replicas, self.sim.max_replicas).astype(np.int64)

    def _hpa(self, m: StepMetrics) -> np.ndarray:
        """The HPA algorithm on the previous step's CPU (see the module docstring)."""
        s = self.sim
        current = m.replicas[0].astype(float)
        ready = np.maximum(m.ready[0], 1)
        util = m.cpu_m[0] / (ready * s.cpu_request)
        ratio = util / self.config.hpa_target
        desired = np.where(np.abs(ratio - 1.0) <= HPA_TOLERANCE, current,
                           np.ceil(current * ratio))
        desired = np.clip(desired, s.min_replicas, s.max_replicas).astype(np.int64)
        window = max(1, math.ceil(HPA_DOWNSCALE_WINDOW_S / self.config.interval_s))
        self._history = [*self._history[-(window - 1):], desired] if window > 1 else [desired]
        stabilised = np.max(np.stack(self._history), axis=0)  # scale-down uses the window max
        return np.where(desired > current, desired, np.minimum(stabilised, current)).astype(
            np.int64)

    def fetch(self, ts: pd.Timestamp) -> GraphSnapshot:
        """Advance one interval and return it as the snapshot for `ts`."""
        target = None
        if self.config.policy == "hpa" and self._last is not None:
            target = self._hpa(self._last)[None, :]
        rps = float(self.trace[self._k % len(self.trace)])
        self._k += 1
        m = self.sim.step(np.array([rps]), target)
        self._last = m
        return self._snapshot(m, ts)

    def _snapshot(self, m: StepMetrics, ts: pd.Timestamp) -> GraphSnapshot:
        s = self.sim
        on = m.active[0]
        names = np.array(s.service_names, dtype=object)
        nodes = pd.DataFrame({
            "service": names[on],
            "replicas": m.replicas[0][on].astype(float),
            "ready_replicas": m.ready[0][on].astype(float),
            "cpu_m": m.cpu_m[0][on], "mem_mi": m.mem_mi[0][on],
            "rx_kbps": m.rx_kbps[0][on], "tx_kbps": m.tx_kbps[0][on],
            "rps_in": m.rps_in[0][on],
        })[list(NODE_COLUMNS)]
        rows = []
        entry = s.index[self.app.entry]
        for call in self.app.calls:
            if call.src in self.app.clients and call.dst == self.app.entry and on[entry]:
                rows.append((call.src, call.dst, call.protocol, float(m.rps_in[0, entry]),
                             float(m.e2e_p95_ms[0]), float(m.e2e_err_rate[0]), call.mtls))
        for e, (i, j) in enumerate(s.edges):
            if m.edge_qps[0, e] > 0:
                rows.append((names[i], names[j], s.edge_protocols[e], float(m.edge_qps[0, e]),
                             float(m.edge_p95_ms[0, e]), float(m.edge_err[0, e]),
                             float(m.edge_mtls[0, e])))
        edges = pd.DataFrame(rows, columns=list(EDGE_COLUMNS))
        edges = edges.astype({"source": "string", "target": "string", "protocol": "string"})
        return GraphSnapshot(pd.Timestamp(ts), self.config.namespace, nodes, edges)

"""The batched, discrete-time fluid queueing-network simulator.

`BatchedSim` steps N independent copies of one application as numpy arrays of shape
(N, S) (S = services that ever exist in the scenario). The Gymnasium env runs a copy with
N=1 on top of the same code, so there is exactly one model.

One step of `interval_s` seconds (default 15 s, the HPA controller's sync period):

1. **Scaling.** Each service's pod count moves to the target. New pods start *pending*
   and serve only after ``startup_s`` (a pod that becomes Ready part-way through a step
   serves that fraction of it). Removed pods go first from the pending ones (the
   ReplicaSet controller deletes not-ready pods before ready ones:
   ``pkg/controller/replicaset`` ``getPodsToDelete`` / ``ActivePods`` ordering), and stop
   serving at once.
2. **Traffic.** The entry receives the trace's req/s (with Poisson noise on the count);
   every service ``s`` sends ``calls_per_request[s, d]`` calls to ``d`` for each request
   it *serves* (dropped requests make no downstream calls).
3. **Service.** Capacity = effective ready pods x ``capacity_rps``. Work not served this
   step stays in a backlog; backlog older than ``timeout_ms`` is dropped (errors). With
   no ready pod at all, requests fail at once (Envoy answers 503 "no healthy upstream").
4. **Latency.** See `gnnrl.sim.queueing`: per-pod M/M/1 + fixed service time + backlog
   delay, summed along the call graph; p95 from a gamma fit.
5. **Resources.** CPU = idle x pods + served x CPU-per-request (a pod saturates at its
   CPU limit), with 2 % measurement noise; memory = base x pods + per-req/s growth;
   network from request/response sizes.

Everything random comes from the ``numpy.random.Generator`` passed in or seeded here.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.sim.queueing import gamma_p95, mm1_sojourn_moments
from gnnrl.sim.spec import AppSpec, topological_order


@dataclasses.dataclass
class SimConfig(JsonConfig):
    """Simulator settings.

    Attributes:
        interval_s: control interval, s (Kubernetes HPA's default sync period is 15 s).
        arrival_noise: apply Poisson noise to the number of arrivals per step.
        metric_noise: relative std of CPU/memory measurement noise.
    """

    interval_s: float = 15.0
    arrival_noise: bool = True
    metric_noise: float = 0.02

    def __post_init__(self) -> None:
        if not (self.interval_s > 0 and math.isfinite(self.interval_s)):
            raise ConfigError(f"interval_s: must be > 0, got {self.interval_s}")
        if self.metric_noise < 0:
            raise ConfigError(f"metric_noise: must be >= 0, got {self.metric_noise}")


@dataclasses.dataclass
class StepMetrics:
    """What one step measured. Arrays are (N, S) unless noted; E = number of edges.

    replicas: pods that exist (starting ones included); ready: pods serving;
    rps_in: offered req/s; served_rps: req/s completed; cpu_m: millicores, all pods;
    mem_mi: MiB, all pods; rx_kbps / tx_kbps: kbit/s; p95_ms / mean_ms: response time of
    the service including its downstream calls; err_rate: share of its requests that
    failed (here or downstream); backlog: requests queued at the end of the step;
    out_rps: req/s the service sent to its callees; edge_qps / edge_p95_ms / edge_err /
    edge_mtls: (N, E); e2e_p95_ms / e2e_mean_ms / e2e_err_rate: (N,) at the entry;
    active: (N, S) bool.
    """

    replicas: np.ndarray
    ready: np.ndarray
    rps_in: np.ndarray
    served_rps: np.ndarray
    cpu_m: np.ndarray
    mem_mi: np.ndarray
    rx_kbps: np.ndarray
    tx_kbps: np.ndarray
    p95_ms: np.ndarray
    mean_ms: np.ndarray
    err_rate: np.ndarray
    backlog: np.ndarray
    out_rps: np.ndarray
    edge_qps: np.ndarray
    edge_p95_ms: np.ndarray
    edge_err: np.ndarray
    edge_mtls: np.ndarray
    e2e_p95_ms: np.ndarray
    e2e_mean_ms: np.ndarray
    e2e_err_rate: np.ndarray
    active: np.ndarray


class BatchedSim:
    """N independent copies of one application, stepped together.

    Args:
        app: the application (for scenarios with added services, pass the universe from
            `gnnrl.sim.scenario.universe` and deactivate the not-yet-added ones).
        num_copies: N.
        config: SimConfig.
        seed: seed or a numpy Generator.
        inactive: services that start inactive in every copy.

    Attributes:
        service_names: list of S names; column order of every (N, S) array.
        edges: list of E (src, dst) column-index pairs (client edges excluded).
    """

    def __init__(self, app: AppSpec, num_copies: int = 1, config: SimConfig | None = None,
                 seed: int | np.random.Generator | None = 0,
                 inactive: set[str] | frozenset[str] = frozenset()) -> None:
        if num_copies < 1:
            raise ConfigError(f"num_copies: must be >= 1, got {num_copies}")
        self.app = app
        self.config = config or SimConfig()
        self.n = num_copies
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        topo = topological_order(app.service_names, app.calls)
        # Order services by depth in the call DAG (callers first) so that each depth is a
        # contiguous column slice: one vectorised update per depth, on views.
        depth = dict.fromkeys(topo, 0)
        for s in topo:
            for c in app.calls:
                if c.src == s and c.dst in depth:
                    depth[c.dst] = max(depth[c.dst], depth[s] + 1)
        names = sorted(topo, key=lambda x: (depth[x], topo.index(x)))
        self.service_names: list[str] = names
        self.index = {s: i for i, s in enumerate(names)}
        S = len(names)
        specs = [app.services[s] for s in names]
        f = lambda attr: np.array([float(getattr(x, attr)) for x in specs])  # noqa: E731
        self.cap = f("capacity_rps")
        self.st_s = f("service_time_ms") / 1000.0
        self.startup = f("startup_s")
        self.idle_m = f("idle_cpu_m")
        self.cpu_per_req = np.array([x.cpu_per_request_m for x in specs])
        self.mem_base = f("mem_base_mi")
        self.mem_per_rps = f("mem_per_rps_mi")
        self.req_kb = f("req_kb")
        self.resp_kb = f("resp_kb")
        self.timeout_s = f("timeout_ms") / 1000.0
        self.cpu_request = f("cpu_request_m")
        self.mem_request = f("mem_request_mi")
        self.min_replicas = f("min_replicas").astype(np.int64)
        self.max_replicas = f("max_replicas").astype(np.int64)

        self.P = np.zeros((S, S))
        self.entry_vec = np.zeros(S)
        self.entry_vec[self.index[app.entry]] = 1.0
        self.edges: list[tuple[int, int]] = []
        mtls = []
        self.edge_protocols: list[str] = []
        for c in app.calls:
            if c.src not in self.index:  # a client: its traffic is the trace itself
                continue
            i, j = self.index[c.src], self.index[c.dst]
            self.P[i, j] = c.per_request
            self.edges.append((i, j))
            mtls.append(c.mtls)
            self.edge_protocols.append(c.protocol)
        self.edge_src = np.array([e[0] for e in self.edges], dtype=np.int64)
        self.edge_dst = np.array([e[1] for e in self.edges], dtype=np.int64)
        self.edge_mtls_vec = np.array(mtls, dtype=float)
        levels = np.array([depth[x] for x in names])
        self.levels = [slice(int(np.argmax(levels == k)), int(S - np.argmax(levels[::-1] == k)))
                       for k in range(int(levels.max()) + 1)]

        dt = self.config.interval_s
        self.K = max(1, math.ceil(self.startup.max() / dt) + 1)
        j = np.arange(self.K)
        remaining = self.startup[:, None] - j[None, :] * dt  # (S, K) s left at step start
        # (K, S): share of the step a pod k steps after creation serves; Ready by step end
        self.pending_frac = np.ascontiguousarray(np.clip((dt - remaining) / dt, 0.0, 1.0).T)
        self.pending_done = np.ascontiguousarray((remaining <= dt).T)
        # Precomputed matrices: kbit/s of responses from / requests to callees per served req/s
        self.P_resp = self.P * self.resp_kb[None, :]
        self.P_req = self.P * self.req_kb[None, :]
        self.P_T = np.ascontiguousarray(self.P.T)

        self.active = np.ones((self.n, S), dtype=bool)
        for name in inactive:
            self.active[:, self.index[name]] = False
        self.ready = np.zeros((self.n, S), dtype=np.int64)
        # pending[k, n, s]: pods of service s in copy n created k steps ago, not yet Ready
        self.pending = np.zeros((self.K, self.n, S), dtype=np.int64)
        self.backlog = np.zeros((self.n, S))
        self.t_s = 0.0

    # ------------------------------------------------------------------ state
    @property
    def num_services(self) -> int:
        return len(self.service_names)

    @property
    def replicas(self) -> np.ndarray:
        """(N, S) pods that exist (ready + starting)."""
        return self.ready + self.pending.sum(axis=0)

    def reset(self, replicas: np.ndarray | None = None) -> None:
        """All copies at t=0 with `replicas` (N, S) or (S,) ready pods (default: min)."""
        if replicas is None:
            replicas = np.broadcast_to(self.min_replicas, (self.n, self.num_services))
        self.ready = np.broadcast_to(np.asarray(replicas, dtype=np.int64),
                                     (self.n, self.num_services)).copy()
        self.ready[~self.active] = 0
        self.pending[:] = 0
        self.backlog[:] = 0.0
        self.t_s = 0.0

    def set_active(self, service: str, active: bool, copies: np.ndarray | slice = slice(None),
                   replicas: int | None = None) -> None:
        """Add (active=True) or remove a service in some copies.

        An added service gets `replicas` (default min_replicas) *pending* pods that start
        like any new pod; a removed one loses its pods and backlog at once.
        """
        i = self.index[service]
        self.active[copies, i] = active
        self.ready[copies, i] = 0
        self.pending[:, copies, i] = 0
        self.backlog[copies, i] = 0.0
        if active:
            self.pending[0, copies, i] = self.min_replicas[i] if replicas is None else replicas

    def _scale(self, target: np.ndarray) -> None:
        target = np.where(self.active, np.maximum(target, 0), 0).astype(np.int64)
        delta = target - self.replicas
        up = np.maximum(delta, 0)
        self.pending[0] += up
        down = np.maximum(-delta, 0)
        if down.any():
            # Remove the newest pending pods first, then ready ones.
            for k in range(self.K):
                take = np.minimum(down, self.pending[k])
                self.pending[k] -= take
                down = down - take
            self.ready -= np.minimum(down, self.ready)

    # ------------------------------------------------------------------ traffic
    def propagate(self, entry_rps: np.ndarray, served_share: np.ndarray | None = None
                  ) -> np.ndarray:
        """Offered req/s per service for entry load `entry_rps` (N,), assuming every
        service serves `served_share` (N, S) of what it receives (default all of it).

        Returns: (N, S) req/s; inactive services receive 0 (their callers skip them).
        """
        share = np.ones((self.n, self.num_services)) if served_share is None else served_share
        lam = np.zeros((self.n, self.num_services))
        thr = np.zeros((self.n, self.num_services))
        entry_rps = np.asarray(entry_rps, dtype=float).reshape(self.n)
        for lv in self.levels:
            lam[:, lv] = (entry_rps[:, None] * self.entry_vec[lv] + thr @ self.P[:, lv])
            lam[:, lv] *= self.active[:, lv]
            thr[:, lv] = lam[:, lv] * share[:, lv]
        return lam

    # ------------------------------------------------------------------ step
    def step(self, entry_rps: np.ndarray, target_replicas: np.ndarray | None = None
             ) -> StepMetrics:
        """Advance every copy by one interval.

        Args:
            entry_rps: (N,) or scalar req/s arriving at the entry during this interval.
            target_replicas: (N, S) pod counts to move to at the start of the interval
                (None = keep). Inactive services are forced to 0.

        Returns:
            StepMetrics for the interval.
        """
        dt = self.config.interval_s
        N, S = self.n, self.num_services
        if target_replicas is not None:
            self._scale(np.asarray(target_replicas).reshape(N, S))
        entry = np.maximum(np.broadcast_to(np.asarray(entry_rps, dtype=float), (N,)), 0.0)
        if self.config.arrival_noise:
            # Poisson arrival counts, normal approximation (counts per step are large:
            # 1 req/s x 15 s = 15 already); sd = sqrt(lambda dt).
            z = self.rng.standard_normal(N)
            entry = np.maximum(entry + z * np.sqrt(entry / dt), 0.0)

        eff = self.ready + np.einsum("kns,ks->ns", self.pending, self.pending_frac)
        capacity = eff * self.cap  # req/s
        lam = np.zeros((N, S))
        served = np.zeros((N, S))
        dropped = np.zeros((N, S))
        backlog_start = self.backlog
        backlog_end = np.zeros((N, S))
        for lv in self.levels:
            lam[:, lv] = (entry[:, None] * self.entry_vec[lv] + served[:, :] @ self.P[:, lv]
                          ) * self.active[:, lv]
            work = backlog_start[:, lv] + lam[:, lv] * dt
            cap_dt = capacity[:, lv] * dt
            done = np.minimum(work, cap_dt)
            left = work - done
            # Backlog that would wait longer than the timeout is dropped (errors); with no
            # capacity at all everything fails immediately.
            keep = np.minimum(left, capacity[:, lv] * self.timeout_s[lv])
            dropped[:, lv] = left - keep
            backlog_end[:, lv] = keep
            served[:, lv] = done / dt
        self.backlog = backlog_end

        # ---- latency (seconds), callees first
        cap_safe = np.maximum(capacity, 1e-9)
        lam_pod = np.where(eff > 0, lam / np.maximum(eff, 1e-9), 0.0)
        r_mean, r_var = mm1_sojourn_moments(lam_pod, self.cap)
        # In overload the queue is the fluid backlog (below); the stationary M/M/1 wait
        # does not build up on top of it within a transient (checked against the DES in
        # benchmarks/des_check.py), so only the service time itself remains random.
        over = backlog_end > 0
        if over.any():
            svc_only = 1.0 / self.cap
            r_mean = np.where(over, svc_only, r_mean)
            r_var = np.where(over, svc_only * svc_only, r_var)
        queue_delay = 0.5 * (backlog_start + backlog_end) / cap_safe
        det = self.st_s + np.where(eff > 0, queue_delay, 0.0)
        offered_dt = lam * dt + backlog_start
        drop_share = np.where(offered_dt > 0, dropped / np.maximum(offered_dt, 1e-12), 0.0)
        log_ok = np.log1p(-np.clip(drop_share, 0.0, 1.0 - 1e-12))
        act = self.active
        # (4, N, S): deterministic delay, random mean, random variance, log P(success);
        # callers add their callees' totals, deepest level first.
        tot = np.stack([det, r_mean, r_var, log_ok])
        for lv in reversed(self.levels[:-1]):
            tot[:, :, lv] += (tot * act) @ self.P_T[:, lv]
        tot_det, tot_mean, tot_var, tot_log_ok = tot
        p95_s = tot_det + gamma_p95(tot_mean, tot_var)
        mean_s = tot_det + tot_mean
        fail = -np.expm1(tot_log_ok)
        err_rate = np.where(act & (fail > 0), np.minimum(fail, 1.0), 0.0)

        # ---- resources
        replicas = self.replicas
        cpu_m = self.idle_m * replicas + served * self.cpu_per_req
        mem_mi = self.mem_base * replicas + served * self.mem_per_rps
        if self.config.metric_noise > 0:
            noise = 1.0 + self.config.metric_noise * self.rng.standard_normal((N, S))
            noise = np.maximum(noise, 0.0)
            cpu_m *= noise
            mem_mi *= noise
        # calls go to active callees only: per caller, sum over active d of P[s, d] (x size)
        act_f = act.astype(float)
        out_rps = served * (act_f @ self.P_T)
        # kbit/s: requests in + responses from callees; responses out + requests to callees
        rx_kbps = 8.0 * (lam * self.req_kb + served * (act_f @ self.P_resp.T))
        tx_kbps = 8.0 * (served * self.resp_kb + served * (act_f @ self.P_req.T))

        # ---- edges
        src, dst = self.edge_src, self.edge_dst
        edge_on = act[:, src] & act[:, dst]
        edge_qps = served[:, src] * self.P[src, dst] * edge_on
        edge_p95 = p95_s[:, dst] * 1000.0 * edge_on
        edge_err = err_rate[:, dst] * edge_on
        edge_mtls = np.broadcast_to(self.edge_mtls_vec, edge_qps.shape) * edge_on

        # ---- startup pipeline advances
        done_now = np.einsum("kns,ks->ns", self.pending, self.pending_done.astype(np.int64))
        self.ready += done_now
        keep = self.pending * ~self.pending_done[:, None, :]
        self.pending[1:] = keep[:-1]
        self.pending[0] = 0
        self.t_s += dt

        e = self.index[self.app.entry]
        return StepMetrics(
            replicas=replicas, ready=self.ready.copy(), rps_in=lam, served_rps=served,
            cpu_m=cpu_m, mem_mi=mem_mi, rx_kbps=rx_kbps, tx_kbps=tx_kbps,
            p95_ms=p95_s * 1000.0 * act, mean_ms=mean_s * 1000.0 * act, err_rate=err_rate,
            backlog=self.backlog.copy(), out_rps=out_rps,
            edge_qps=edge_qps, edge_p95_ms=edge_p95, edge_err=edge_err, edge_mtls=edge_mtls,
            e2e_p95_ms=p95_s[:, e] * 1000.0, e2e_mean_ms=mean_s[:, e] * 1000.0,
            e2e_err_rate=err_rate[:, e], active=act.copy(),
        )

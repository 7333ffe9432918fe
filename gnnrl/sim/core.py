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

Two implementations of the same step: ``backend="numba"`` (default) runs it as one compiled
kernel (`gnnrl.sim.kernel`); ``backend="numpy"`` is the vectorised reference it is tested
against (equal to 1e-9; both draw the same random numbers from the same generator).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.sim import kernel, timing
from gnnrl.sim.queueing import gamma_p95, mm1_sojourn_moments
from gnnrl.sim.spec import AppSpec, topological_order
from gnnrl.sim.timing import TIMING_PRESETS, TimingConfig

#: implementations of `BatchedSim.step`
BACKENDS = ("numba", "numpy")


@dataclasses.dataclass
class SimConfig(JsonConfig):
    """Simulator settings.

    Attributes:
        interval_s: control interval, s (Kubernetes HPA's default sync period is 15 s).
        arrival_noise: apply Poisson noise to the number of arrivals per step.
        metric_noise: relative std of CPU/memory measurement noise.
        timing: cluster timing (`gnnrl.sim.timing`): metrics lags and per-pod start-ups;
            ``TimingConfig.ideal()`` (default) or ``TimingConfig.realistic()``, or the
            preset's name (``"ideal"``, ``"realistic"``).
    """

    interval_s: float = 15.0
    arrival_noise: bool = True
    metric_noise: float = 0.02
    timing: TimingConfig = dataclasses.field(default_factory=TimingConfig.ideal)

    def __post_init__(self) -> None:
        if not (self.interval_s > 0 and math.isfinite(self.interval_s)):
            raise ConfigError(f"interval_s: must be > 0, got {self.interval_s}")
        if self.metric_noise < 0:
            raise ConfigError(f"metric_noise: must be >= 0, got {self.metric_noise}")
        if isinstance(self.timing, str):  # a preset's name
            self.timing = TimingConfig.preset(self.timing)
        elif isinstance(self.timing, dict):  # e.g. SimConfig(**json.loads(...))
            self.timing = TimingConfig.from_dict(self.timing)
        if not isinstance(self.timing, TimingConfig):
            raise ConfigError(f"timing: must be a TimingConfig or one of {TIMING_PRESETS}, "
                              f"got {type(self.timing).__name__}")
        if self.timing.per_pod_startup:
            timing.startup_grid_s(self.timing, self.interval_s)  # raises if there is none


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
        backend: ``"numba"`` (one compiled kernel per step, default) or ``"numpy"`` (the
            vectorised reference implementation); same results to float rounding.

    Attributes:
        service_names: list of S names; column order of every (N, S) array.
        edges: list of E (src, dst) column-index pairs (client edges excluded).
    """

    def __init__(self, app: AppSpec, num_copies: int = 1, config: SimConfig | None = None,
                 seed: int | np.random.Generator | None = 0,
                 inactive: set[str] | frozenset[str] = frozenset(),
                 backend: str = "numba") -> None:
        if num_copies < 1:
            raise ConfigError(f"num_copies: must be >= 1, got {num_copies}")
        if backend not in BACKENDS:
            raise ConfigError(f"backend: must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
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
        self.cpu_limit = f("cpu_limit_m")
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
        tcfg = self.config.timing
        if tcfg.per_pod_startup:
            # Pipeline slots by time left until Ready, on a grid that holds both the
            # interval and the probe ticks: slot k has (J - k) grid steps left; a step
            # moves pods `pipeline_shift` slots on. Scaling down takes the slots in
            # order, so the pods with the most time left (mostly the newest) go first.
            self.grid_s = timing.startup_grid_s(tcfg, dt)
            self.pipeline_shift = round(dt / self.grid_s)
            J = max(math.ceil(timing.max_ready_s(tcfg, float(x)) / self.grid_s - 1e-9)
                    for x in self.startup)
            J = max(J, self.pipeline_shift)
            timing.check_grid_slots(J + 1)
            self.K = J + 1
            left = (J - np.arange(self.K)) * self.grid_s
            remaining = np.broadcast_to(left[None, :], (S, self.K))
        else:
            self.pipeline_shift = 1
            self.K = max(1, math.ceil(self.startup.max() / dt) + 1)
            slot = np.arange(self.K)
            remaining = self.startup[:, None] - slot[None, :] * dt  # (S, K) s left at step start
        # (K, S): share of the step a pod in slot k serves; Ready by the step's end
        self.pending_frac = np.ascontiguousarray(np.clip((dt - remaining) / dt, 0.0, 1.0).T)
        self.pending_done = np.ascontiguousarray((remaining <= dt).T)
        # Precomputed matrices: kbit/s of responses from / requests to callees per served req/s
        self.P_resp = self.P * self.resp_kb[None, :]
        self.P_req = self.P * self.req_kb[None, :]
        self.P_T = np.ascontiguousarray(self.P.T)

        # ---- constants of the fast step (all derived from the above; see `step`). The
        # traffic and latency passes run service-major, on (S, N) arrays, so that a level
        # of the call graph is a contiguous block of rows.
        N = self.n
        self._entry_col = self.index[app.entry]
        # per level: the block of P from the callers (rows of shallower levels only: a
        # service is called only by shallower ones, so the other rows are exactly zero),
        # transposed; whether the entry is in the level; the block of P to the callees.
        self._p_in_t = [np.ascontiguousarray(self.P[:lv.start, lv].T) for lv in self.levels]
        self._entry_in = [bool(self.entry_vec[lv].any()) for lv in self.levels]
        self._entry_lv = [np.ascontiguousarray(self.entry_vec[lv][:, None])
                          for lv in self.levels]
        self._p_out = [np.ascontiguousarray(self.P[lv, lv.stop:]) for lv in self.levels]
        # one matmul gives (per caller) calls, response kbit and request kbit to active callees
        self._p_cat = np.ascontiguousarray(np.concatenate([self.P_T, self.P_resp.T,
                                                           self.P_req.T], axis=1))
        self._edge_p = self.P[self.edge_src, self.edge_dst]
        self._pending_done_i = self.pending_done.astype(np.int64)
        self._pending_keep = ~self.pending_done[:, None, :]

        def tiled_sn(v: np.ndarray) -> np.ndarray:  # (S,) -> (S, N), read-only
            out = np.ascontiguousarray(np.broadcast_to(v[:, None], (S, N)))
            out.flags.writeable = False
            return out

        def tiled_ns(v: np.ndarray) -> np.ndarray:  # (S,) -> (N, S), read-only
            out = np.ascontiguousarray(np.broadcast_to(v, (N, S)))
            out.flags.writeable = False
            return out

        # elementwise ops on equal shapes are ~3x faster than broadcasting an (S,) vector
        self._cap_sn, self._timeout_sn = tiled_sn(self.cap), tiled_sn(self.timeout_s)
        self._st_sn = tiled_sn(self.st_s)
        self._svc_only_sn = tiled_sn(1.0 / self.cap)
        self._svc_only_sq_sn = tiled_sn((1.0 / self.cap) * (1.0 / self.cap))
        self._idle_ns, self._cpu_req_ns = tiled_ns(self.idle_m), tiled_ns(self.cpu_per_req)
        self._mem_base_ns, self._mem_rps_ns = tiled_ns(self.mem_base), tiled_ns(self.mem_per_rps)
        self._req_kb_ns, self._resp_kb_ns = tiled_ns(self.req_kb), tiled_ns(self.resp_kb)
        every = np.ones((N, S)) @ self._p_cat
        self._to_callees_all = tuple(np.ascontiguousarray(every[:, j * S:(j + 1) * S])
                                     for j in range(3))
        self._mtls_ne = np.ascontiguousarray(np.broadcast_to(self.edge_mtls_vec,
                                                             (N, len(self.edges))))
        # scratch buffers (never returned to callers)
        self._work = np.empty((S, N))
        self._done = np.empty((S, N))
        self._tot = np.empty((S, 4, N))

        # ---- constants of the compiled kernel (gnnrl.sim.kernel.step_kernel)
        consts = np.empty((kernel.NUM_CONSTS, S))
        for row, v in ((kernel.CAP, self.cap), (kernel.ST_S, self.st_s),
                       (kernel.IDLE_M, self.idle_m), (kernel.CPU_PER_REQ, self.cpu_per_req),
                       (kernel.MEM_BASE, self.mem_base), (kernel.MEM_PER_RPS, self.mem_per_rps),
                       (kernel.REQ_KB, self.req_kb), (kernel.RESP_KB, self.resp_kb),
                       (kernel.TIMEOUT_S, self.timeout_s)):
            consts[row] = v
        in_csr = kernel.csr(self.P, by_column=True)
        out_csr = kernel.csr(self.P, by_column=False)
        consts[kernel.CALLS_ALL:] = kernel.callee_sums(consts, *out_csr)
        tiled = np.ascontiguousarray(np.broadcast_to(
            consts[list(kernel.TILED_FROM)][:, None, :], (kernel.NUM_TILED, N, S)))
        self._kconsts = (
            float(dt), consts, tiled, np.ascontiguousarray(self.pending_frac),
            np.ascontiguousarray(self.pending_done), *in_csr, *out_csr,
            self.edge_src, self.edge_dst, np.ascontiguousarray(self._edge_p, dtype=float),
            np.ascontiguousarray(self.edge_mtls_vec, dtype=float), int(self._entry_col),
            int(self.pipeline_shift))
        self._kwork = np.zeros((kernel.WORK_ROWS, N, S))
        self._no_z = np.zeros(0)
        self._no_noise = np.zeros((0, S))
        self._no_target = np.zeros((0, S), dtype=np.int64)
        self._z_buf, self._noise_buf = np.empty(N), np.empty((N, S))

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
        return self.ready + np.add.reduce(self.pending, axis=0)

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

        An added service arrives with `replicas` (default min_replicas) *Ready* pods: a new
        Deployment is rolled out and becomes Ready before its callers are switched to it
        (the usual order of a rollout behind a readiness-gated Service or a feature flag).
        A removed one loses its pods and backlog at once.
        """
        i = self.index[service]
        self.active[copies, i] = active
        self.ready[copies, i] = 0
        self.pending[:, copies, i] = 0
        self.backlog[copies, i] = 0.0
        if active:
            self.ready[copies, i] = self.min_replicas[i] if replicas is None else replicas

    def _start_pods(self, target_replicas: np.ndarray | None) -> None:
        """With per-pod start-ups: the pods a step adds, each in the pipeline slot of its
        own Ready time (`gnnrl.sim.timing.ready_times_s`, drawn from the simulator's
        generator before the step's noise). Scaling down is left to the step."""
        if target_replicas is None or not self.config.timing.per_pod_startup:
            return
        target = np.maximum(np.asarray(target_replicas).reshape(self.n, self.num_services),
                            0) * self.active
        up = np.maximum(target.astype(np.int64) - self.replicas, 0)
        if not up.any():
            return
        n_idx, s_idx = np.nonzero(up)
        counts = up[n_idx, s_idx]
        n_pod, s_pod = np.repeat(n_idx, counts), np.repeat(s_idx, counts)
        ready_s = timing.ready_times_s(self.config.timing, self.startup[s_pod], self.rng)
        J = self.K - 1
        slot = J - np.rint(ready_s / self.grid_s).astype(np.int64)
        np.add.at(self.pending, (slot, n_pod, s_pod), 1)

    def _scale(self, target: np.ndarray) -> np.ndarray:
        """Move every service's pod count to `target` (N, S); returns the new counts.

        Inactive services are forced to 0. The returned (N, S) int64 array is fresh and
        equals ``ready + pending.sum(axis=0)`` after scaling (pods are only ever added to
        or removed from existing ones, so the new total is the target itself).
        """
        target = np.maximum(target, 0) * self.active
        if target.dtype != np.int64:
            target = target.astype(np.int64)
        delta = target - self.replicas
        self.pending[0] += np.maximum(delta, 0)
        down = np.maximum(-delta, 0)
        if np.count_nonzero(down):
            # Remove the newest pending pods first, then ready ones.
            for k in range(self.K):
                take = np.minimum(down, self.pending[k])
                self.pending[k] -= take
                down -= take
            self.ready -= np.minimum(down, self.ready)
        return target

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

    def _serve(self, entry: np.ndarray, cap_t: np.ndarray, act_t: np.ndarray | None,
               backlog_t: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Offered and served req/s, backlog at the end of the step and dropped requests.

        Callers first, one call-graph depth at a time. Service-major shapes: entry (N,),
        capacity, active flags, backlog at the start and all results (S, N). Returns
        fresh lam, served and backlog_end, and dropped in a scratch buffer.
        """
        dt = self.config.interval_s
        S, N = cap_t.shape
        cap_dt = cap_t * dt
        lam = np.empty((S, N))
        served = np.empty((S, N))
        work, done = self._work, self._done
        last = len(self.levels) - 1
        for k, lv in enumerate(self.levels):
            if k == 0:
                x = self._entry_lv[0] * entry
            else:
                x = self._p_in_t[k] @ served[:lv.start]
                if self._entry_in[k]:
                    x = self._entry_lv[k] * entry + x
            if act_t is None:  # all active: x * 1.0 == x
                lam[lv] = x
            else:
                np.multiply(x, act_t[lv], out=lam[lv])
            np.multiply(lam[lv], dt, out=work[lv])
            np.add(backlog_t[lv], work[lv], out=work[lv])
            np.minimum(work[lv], cap_dt[lv], out=done[lv])
            if k < last:
                np.divide(done[lv], dt, out=served[lv])
        lv = self.levels[last]
        np.divide(done[lv], dt, out=served[lv])
        # Backlog that would wait longer than the timeout is dropped (errors); with no
        # capacity at all everything fails immediately.
        left = np.subtract(work, done, out=work)
        backlog_end = np.minimum(left, cap_t * self._timeout_sn)
        dropped = np.subtract(left, backlog_end, out=done)
        return lam, served, backlog_end, dropped

    def _latency(self, lam: np.ndarray, eff: np.ndarray, cap_t: np.ndarray,
                 backlog_start: np.ndarray, backlog_end: np.ndarray, dropped: np.ndarray,
                 act_t: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(p95 s, mean s, error rate) per service including its callees.

        Service-major: every argument and result is (S, N). p95 and mean are not masked by
        the active flags (the caller does it); the error rate is None when nothing was
        dropped anywhere (then it is exactly 0 everywhere).
        """
        dt = self.config.interval_s
        pos = eff > 0
        lam_pod = np.where(pos, lam / np.maximum(eff, 1e-9), 0.0)
        r_mean, r_var = mm1_sojourn_moments(lam_pod, self._cap_sn)
        # In overload the queue is the fluid backlog (below); the stationary M/M/1 wait
        # does not build up on top of it within a transient (checked against the DES in
        # benchmarks/des_check.py), so only the service time itself remains random.
        over = backlog_end > 0
        any_over = np.count_nonzero(over) > 0
        if any_over:
            np.copyto(r_mean, self._svc_only_sn, where=over)
            np.copyto(r_var, self._svc_only_sq_sn, where=over)
        # (S, 4, N): deterministic delay, random mean, random variance, log P(success);
        # callers add their callees' totals, deepest level first (one 2-D matrix product
        # per level over the (4 x N) columns of the callees' rows).
        tot = self._tot
        if any_over or np.count_nonzero(backlog_start):
            queue_delay = 0.5 * (backlog_start + backlog_end) / np.maximum(cap_t, 1e-9)
            np.add(self._st_sn, np.where(pos, queue_delay, 0.0), out=tot[:, 0])
        else:  # no backlog anywhere: the queueing delay is exactly 0
            tot[:, 0] = self._st_sn
        tot[:, 1] = r_mean
        tot[:, 2] = r_var
        any_drop = np.count_nonzero(dropped) > 0
        if any_drop:
            offered_dt = lam * dt + backlog_start
            drop_share = np.where(offered_dt > 0, dropped / np.maximum(offered_dt, 1e-12), 0.0)
            np.maximum(drop_share, 0.0, out=drop_share)
            np.minimum(drop_share, 1.0 - 1e-12, out=drop_share)
            np.negative(drop_share, out=drop_share)
            np.log1p(drop_share, out=tot[:, 3])
        else:  # without drops log P(success) is exactly 0 everywhere
            tot[:, 3] = 0.0
        S, N = cap_t.shape
        act_rows = None if act_t is None else act_t[:, None, :]
        for k in range(len(self.levels) - 2, -1, -1):
            lv = self.levels[k]
            callees = tot[lv.stop:] if act_rows is None else tot[lv.stop:] * act_rows[lv.stop:]
            callees = callees.reshape(S - lv.stop, 4 * N)
            tot[lv] += (self._p_out[k] @ callees).reshape(lv.stop - lv.start, 4, N)
        p95_s = tot[:, 0] + gamma_p95(tot[:, 1], tot[:, 2])
        mean_s = tot[:, 0] + tot[:, 1]
        err_rate = None
        if any_drop:
            fail = -np.expm1(tot[:, 3])
            failed = fail > 0 if act_t is None else (act_t > 0) & (fail > 0)
            err_rate = np.where(failed, np.minimum(fail, 1.0), 0.0)
        return p95_s, mean_s, err_rate

    # ------------------------------------------------------------------ step
    def step(self, entry_rps: np.ndarray, target_replicas: np.ndarray | None = None
             ) -> StepMetrics:
        """Advance every copy by one interval.

        Args:
            entry_rps: (N,) or scalar req/s arriving at the entry during this interval.
            target_replicas: (N, S) pod counts to move to at the start of the interval
                (None = keep). Inactive services are forced to 0.

        Returns:
            StepMetrics for the interval (fresh arrays the caller may keep).
        """
        if self.backend == "numba":
            return self._step_numba(entry_rps, target_replicas)
        self._start_pods(target_replicas)
        return self._step_numpy(entry_rps, target_replicas)

    def _step_numba(self, entry_rps: np.ndarray, target_replicas: np.ndarray | None
                    ) -> StepMetrics:
        """`step` as one call of `gnnrl.sim.kernel.step_kernel` (same random draws)."""
        out_f, out_i, out_e, out_g = self._step_blocks(entry_rps, target_replicas)
        k = kernel
        return StepMetrics(
            replicas=out_i[k.REPLICAS], ready=out_i[k.READY], rps_in=out_f[k.RPS_IN],
            served_rps=out_f[k.SERVED], cpu_m=out_f[k.CPU_M], mem_mi=out_f[k.MEM_MI],
            rx_kbps=out_f[k.RX_KBPS], tx_kbps=out_f[k.TX_KBPS], p95_ms=out_f[k.P95_MS],
            mean_ms=out_f[k.MEAN_MS], err_rate=out_f[k.ERR_RATE], backlog=out_f[k.BACKLOG],
            out_rps=out_f[k.OUT_RPS], edge_qps=out_e[k.EDGE_QPS],
            edge_p95_ms=out_e[k.EDGE_P95], edge_err=out_e[k.EDGE_ERR],
            edge_mtls=out_e[k.EDGE_MTLS], e2e_p95_ms=out_g[k.E2E_P95],
            e2e_mean_ms=out_g[k.E2E_MEAN], e2e_err_rate=out_g[k.E2E_ERR],
            active=self.active.copy())

    def _step_blocks(self, entry_rps: np.ndarray, target_replicas: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`step` with the compiled kernel, returning its raw output blocks (fresh arrays):
        float (NUM_FLOAT_OUT, N, S), int64 (2, N, S), edges (4, N, E), entry (3, N); rows
        named in `gnnrl.sim.kernel`."""
        N, S = self.n, self.num_services
        cfg = self.config
        self._start_pods(target_replicas)
        if target_replicas is None:
            target = self._no_target
        else:
            target = np.asarray(target_replicas)
            if target.dtype != np.int64:
                target = target.astype(np.int64)
            target = target.reshape(N, S)
            if not (target.flags.c_contiguous and target.flags.writeable):
                target = target.copy()
        entry = np.array(entry_rps, dtype=np.float64, ndmin=1)  # a fresh writable copy
        if entry.shape != (N,):
            entry = np.ascontiguousarray(np.broadcast_to(entry, (N,)))
        # the same draws, in the same order, as the numpy reference
        z, noise = self._no_z, self._no_noise
        if cfg.arrival_noise:
            z = self.rng.standard_normal(out=self._z_buf)
        if cfg.metric_noise > 0:
            noise = self.rng.standard_normal(out=self._noise_buf)
        out_f = np.empty((kernel.NUM_FLOAT_OUT, N, S))
        out_i = np.empty((2, N, S), dtype=np.int64)
        out_e = np.empty((4, N, len(self.edges)))
        out_g = np.empty((3, N))
        kernel.step_kernel(*self._kconsts, self.ready, self.pending, self.backlog,
                           self.active, entry, z, float(cfg.metric_noise), noise, target,
                           self._kwork, out_f, out_i, out_e, out_g)
        self.t_s += cfg.interval_s
        return out_f, out_i, out_e, out_g

    def _step_numpy(self, entry_rps: np.ndarray, target_replicas: np.ndarray | None = None
                    ) -> StepMetrics:
        """`step`, the vectorised reference implementation.

        Implementation note (speed, not semantics): the arithmetic is the model described
        in the module docstring, written with as few numpy calls as possible: constants
        are precomputed in ``__init__``, per-level matrix products use only the blocks of
        the call matrix that can be non-zero, intermediate results go to scratch buffers,
        and terms that are exactly zero (no pending pod, no backlog, no drop) are skipped.
        Results equal the straightforward formulation up to float rounding
        (tests/test_sim_speed_invariants.py).
        """
        dt = self.config.interval_s
        N, S = self.n, self.num_services
        act = self.active
        if target_replicas is not None:
            replicas = self._scale(np.asarray(target_replicas).reshape(N, S))
        else:
            replicas = self.ready + np.add.reduce(self.pending, axis=0)
        entry = np.asarray(entry_rps, dtype=float)
        if entry.shape != (N,):
            entry = np.broadcast_to(entry, (N,))
        entry = np.maximum(entry, 0.0)
        if self.config.arrival_noise:
            # Poisson arrival counts, normal approximation (counts per step are large:
            # 1 req/s x 15 s = 15 already); sd = sqrt(lambda dt).
            z = self.rng.standard_normal(N)
            entry = np.maximum(entry + z * np.sqrt(entry / dt), 0.0)

        pending_any = np.count_nonzero(self.pending) > 0
        if pending_any:
            eff = self.ready + np.einsum("kns,ks->ns", self.pending, self.pending_frac)
        else:
            eff = self.ready.astype(np.float64)
        # all active: multiplying by the active flags is a no-op (then they are not built)
        all_active = np.count_nonzero(act) == act.size
        act_f = None if all_active else act.astype(np.float64)
        # service-major (S, N) copies for the traffic and latency passes
        eff_t = np.ascontiguousarray(eff.T)
        act_t = None if act_f is None else np.ascontiguousarray(act_f.T)
        backlog_t = np.ascontiguousarray(self.backlog.T)
        cap_t = eff_t * self._cap_sn  # req/s
        lam_t, served_t, backlog_end_t, dropped_t = self._serve(entry, cap_t, act_t, backlog_t)
        self.backlog = backlog_end_t.T  # (N, S) view; its .T is contiguous next step
        p95_t, mean_t, err_t = self._latency(lam_t, eff_t, cap_t, backlog_t, backlog_end_t,
                                             dropped_t, act_t)
        lam = np.ascontiguousarray(lam_t.T)
        served = np.ascontiguousarray(served_t.T)
        p95_ms = np.multiply(p95_t.T, 1000.0, out=np.empty((N, S)))
        mean_ms = np.multiply(mean_t.T, 1000.0, out=np.empty((N, S)))
        err_rate = np.zeros((N, S)) if err_t is None else np.ascontiguousarray(err_t.T)
        e = self._entry_col
        e2e_p95, e2e_mean = p95_ms[:, e].copy(), mean_ms[:, e].copy()
        e2e_err = err_rate[:, e].copy()

        # ---- resources
        replicas_f = replicas.astype(np.float64)
        cpu_m = self._idle_ns * replicas_f + served * self._cpu_req_ns
        mem_mi = self._mem_base_ns * replicas_f + served * self._mem_rps_ns
        if self.config.metric_noise > 0:
            noise = 1.0 + self.config.metric_noise * self.rng.standard_normal((N, S))
            np.maximum(noise, 0.0, out=noise)
            cpu_m *= noise
            mem_mi *= noise
        # calls go to active callees only: per caller, sum over active d of P[s, d] (x size)
        if act_f is None:  # all active
            calls, resp_kb, req_kb = self._to_callees_all  # constant (N, S) each
        else:
            to_callees = act_f @ self._p_cat  # (N, 3S): calls, response kbit, request kbit
            calls, resp_kb, req_kb = (to_callees[:, :S], to_callees[:, S:2 * S],
                                      to_callees[:, 2 * S:])
        out_rps = served * calls
        # kbit/s: requests in + responses from callees; responses out + requests to callees
        rx_kbps = 8.0 * (lam * self._req_kb_ns + served * resp_kb)
        tx_kbps = 8.0 * (served * self._resp_kb_ns + served * req_kb)

        # ---- edges
        src, dst = self.edge_src, self.edge_dst
        if act_f is None:  # every edge is on: multiplying by 1.0 is a no-op
            edge_qps = served.take(src, axis=1)
            edge_qps *= self._edge_p
            edge_p95 = p95_ms.take(dst, axis=1)
            edge_err = err_rate.take(dst, axis=1)
            edge_mtls = self._mtls_ne.copy()
        else:
            edge_on = act_f.take(src, axis=1) * act_f.take(dst, axis=1)
            edge_qps = served.take(src, axis=1) * self._edge_p * edge_on
            edge_p95 = p95_ms.take(dst, axis=1) * edge_on
            edge_err = err_rate.take(dst, axis=1) * edge_on
            edge_mtls = self.edge_mtls_vec * edge_on
        if act_f is not None:
            p95_ms *= act_f  # after the edges read the callees' unmasked values
            mean_ms *= act_f

        # ---- startup pipeline advances
        if pending_any:
            self.ready += np.einsum("kns,ks->ns", self.pending, self._pending_done_i)
            keep = self.pending * self._pending_keep
            m = self.pipeline_shift
            self.pending[m:] = keep[:-m]
            self.pending[:m] = 0
        self.t_s += dt

        return StepMetrics(
            replicas=replicas, ready=self.ready.copy(), rps_in=lam, served_rps=served,
            cpu_m=cpu_m, mem_mi=mem_mi, rx_kbps=rx_kbps, tx_kbps=tx_kbps,
            p95_ms=p95_ms, mean_ms=mean_ms, err_rate=err_rate,
            backlog=backlog_end_t.T.copy(), out_rps=out_rps,
            edge_qps=edge_qps, edge_p95_ms=edge_p95, edge_err=edge_err, edge_mtls=edge_mtls,
            e2e_p95_ms=e2e_p95, e2e_mean_ms=e2e_mean, e2e_err_rate=e2e_err,
            active=act.copy(),
        )

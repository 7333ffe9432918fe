"""Seeded random applications: call DAGs of 4-20 services for training on many topologies.

`generate_app(seed)` draws an application that is valid by construction (and checked by
`validate_app_spec`):

* **Call graph**: service ``svc-00`` is the entry; every other service ``i`` is called by
  one randomly chosen earlier service (so every service is reachable from the entry), and
  with probability `GeneratorConfig.extra_edge_prob` by a second one. Calls only go from a
  lower to a higher index, so the graph is acyclic. Calls per request are drawn per edge
  (conditional calls below 1, loops above 1); a service visited more than
  `GeneratorConfig.visit_cap` times per entry request gets its incoming calls scaled down.
* **Services**: each draws a runtime profile (`PROFILES`: CPU cost per request, fixed
  service time and start-up ranges taken from the built-in OnlineBoutique and socialNetwork
  assumptions, docs/simulator.md). A leaf may be a single-instance datastore.
  ``capacity_rps = (cpu_limit - idle) / cpu_ms_per_request``, the same relation the
  simulator uses for CPU (`ServiceSpec.cpu_per_request_m`).
* **Replicas**: ``max_replicas`` lets every service serve `GeneratorConfig.peak_rps` at
  the entry at most `GeneratorConfig.target_util` utilisation (plus a little headroom);
  a service that would need more than `GeneratorConfig.max_replicas_limit` pods (or a
  datastore that would need more than one) gets bigger pods (CPU request and limit
  doubled until it fits).
* **SLO**: the unloaded end-to-end p95 (`unloaded_latency_ms`, computed as `BatchedSim`
  does at zero load) times a factor drawn from `GeneratorConfig.slo_factor`. If the model
  could not meet it at the design peak with max_replicas pods, the target utilisation is
  lowered and the app resized (`generate_app`), so every generated app can meet its SLO.

Built-in names ``generated-<seed>`` resolve through `gnnrl.sim.load_app_spec` with the
default config. Seeds are split between training and evaluation (`gnnrl.contracts.seeds`:
`TRAIN_APP_SEEDS`, `EVAL_APP_SEEDS`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.sim.queueing import gamma_p95, mm1_sojourn_moments
from gnnrl.sim.spec import AppSpec, CallSpec, ServiceSpec, topological_order, validate_app_spec


#: Prefix of the built-in names of generated apps (``generated-<seed>``).
GENERATED_PREFIX = "generated-"


@dataclasses.dataclass(frozen=True)
class Profile:
    """Ranges a service of one runtime draws from (uniform within each range).

    Attributes:
        cpu_ms: CPU cost of one request, ms of CPU (= millicore-seconds).
        service_time_ms: fixed, non-CPU part of a request at this pod, ms.
        startup_s: pod creation to Ready, s.
        mem_request_mi: memory request choices, MiB.
    """

    cpu_ms: tuple[float, float]
    service_time_ms: tuple[float, float]
    startup_s: tuple[float, float]
    mem_request_mi: tuple[int, ...]


#: Runtime profiles. The CPU costs follow the built-in specs' capacities at their CPU
#: limits (docs/simulator.md): Go leaves 400 req/s at 200m (0.5 ms), Node.js 200-350 req/s
#: (0.6-1.0 ms), Python 120 req/s (1.6 ms), Java 250 req/s at 300m (1.2 ms), the C++
#: DeathStarBench services 120-500 req/s at 100m (0.2-0.8 ms), Redis/memcached/MongoDB
#: 300-4000 req/s at 100m. Start-ups: Go 10 s, Node 12 s, Python 15 s, Java 40 s, C++ 5 s,
#: datastores 5-10 s in the built-ins, widened here to cover slower clusters.
PROFILES: dict[str, Profile] = {
    "go": Profile((0.4, 0.8), (1.0, 2.5), (5.0, 15.0), (64, 128)),
    "node": Profile((0.5, 1.2), (1.5, 3.0), (8.0, 20.0), (64, 128)),
    "python": Profile((1.2, 3.0), (2.0, 5.0), (10.0, 30.0), (128, 256)),
    "java": Profile((0.8, 2.0), (2.0, 4.0), (25.0, 60.0), (256, 512)),
    "cpp": Profile((0.2, 1.0), (0.5, 1.5), (5.0, 10.0), (128,)),
    "datastore": Profile((0.03, 0.3), (0.3, 1.5), (5.0, 20.0), (256, 512)),
}
#: The entry renders pages / aggregates responses: OnlineBoutique's frontend costs 3.3 ms
#: of CPU per request (60 req/s at 200m).
ENTRY_PROFILE = Profile((1.5, 5.0), (2.0, 5.0), (5.0, 30.0), (64, 128))
#: CPU request choices, millicores, and limit/request ratios (OnlineBoutique uses 1.5-2x,
#: the DeathStarBench helm chart 1x).
CPU_REQUESTS_M = (100, 200, 250, 500)
LIMIT_RATIOS = (1.0, 1.5, 2.0)


@dataclasses.dataclass
class GeneratorConfig(JsonConfig):
    """Knobs of `generate_app`.

    Attributes:
        min_services / max_services: the app has a uniform number of services in this range.
        peak_rps: entry req/s every generated app can serve within its max_replicas (the
            default is the training recipe's highest default peak).
        target_util: utilisation of every service at `peak_rps` with max_replicas pods.
        max_replicas_limit: no service needs more pods than this at the peak.
        extra_edge_prob: chance that a service has a second caller.
        datastore_prob: chance that a leaf is a single-instance datastore.
        visit_cap: most calls one service receives per entry request.
        slo_factor: (low, high) SLO / unloaded end-to-end p95.
        startup_s: (low, high) clip of every start-up delay, s.
    """

    min_services: int = 4
    max_services: int = 20
    peak_rps: float = 300.0
    target_util: float = 0.6
    max_replicas_limit: int = 30
    extra_edge_prob: float = 0.3
    datastore_prob: float = 0.4
    visit_cap: float = 10.0
    slo_factor: tuple[float, float] = (1.3, 3.0)
    startup_s: tuple[float, float] = (5.0, 60.0)

    def __post_init__(self) -> None:
        self.slo_factor = _float_pair("slo_factor", self.slo_factor)
        self.startup_s = _float_pair("startup_s", self.startup_s)
        if not 2 <= self.min_services <= self.max_services:
            raise ConfigError(f"min_services: must be within 2..max_services, got "
                              f"{self.min_services} (max_services {self.max_services})")
        if not (self.peak_rps > 0 and math.isfinite(self.peak_rps)):
            raise ConfigError(f"peak_rps: must be > 0, got {self.peak_rps}")
        if not 0 < self.target_util < 1:
            raise ConfigError(f"target_util: must be within (0, 1), got {self.target_util}")
        if self.max_replicas_limit < 2:
            raise ConfigError(f"max_replicas_limit: must be >= 2, got {self.max_replicas_limit}")
        for name in ("extra_edge_prob", "datastore_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name}: must be within 0..1, got {getattr(self, name)}")
        if not self.visit_cap >= 1:
            raise ConfigError(f"visit_cap: must be >= 1, got {self.visit_cap}")
        lo, hi = self.slo_factor
        if not 1 < lo <= hi:
            raise ConfigError(f"slo_factor: must be (low, high) with 1 < low <= high, "
                              f"got {self.slo_factor}")
        lo, hi = self.startup_s
        if not 0 <= lo <= hi:
            raise ConfigError(f"startup_s: must be (low, high) with 0 <= low <= high, "
                              f"got {self.startup_s}")


def _float_pair(name: str, value: tuple[float, float]) -> tuple[float, float]:
    """A (low, high) config pair as floats; ConfigError naming the field if not a pair."""
    pair = tuple(float(x) for x in value)
    if len(pair) != 2:
        raise ConfigError(f"{name}: must be (low, high), got {value}")
    return pair[0], pair[1]


def model_latency_ms(app: AppSpec, entry_rps: float = 0.0,
                     replicas: dict[str, int] | None = None) -> tuple[float, float]:
    """(p95, mean) steady-state end-to-end response time at the entry, ms.

    The simulator's latency model (`gnnrl.sim.core`, `gnnrl.sim.queueing`) with every
    request served and no backlog: a service receiving ``lambda`` req/s on ``c`` ready
    pods adds its fixed ``service_time_ms`` and an M/M/1 sojourn at per-pod rate
    ``lambda / c`` (utilisation capped at `RHO_CAP`); a caller adds ``per_request`` times
    each callee's deterministic part, mean and variance (sequential calls); the p95 is the
    deterministic sum plus the gamma p95 of the random part. Equals `BatchedSim`'s
    ``e2e_p95_ms`` / ``e2e_mean_ms`` for a steady interval without arrival noise
    (tests/test_sim_generator.py).

    Args:
        app: the application.
        entry_rps: req/s at the entry.
        replicas: ready pods per service (default: min_replicas).
    """
    names = topological_order(app.service_names, app.calls)
    lam = dict.fromkeys(names, 0.0)
    lam[app.entry] = float(entry_rps)
    for s in names:  # callers first
        for c in app.calls:
            if c.src == s:
                lam[c.dst] += lam[s] * c.per_request
    det, mean, var = {}, {}, {}
    for s in names:
        spec = app.services[s]
        pods = max(1, (replicas or {}).get(s, spec.min_replicas))
        m, v = mm1_sojourn_moments(np.array([lam[s] / pods]), np.array([spec.capacity_rps]))
        det[s], mean[s], var[s] = spec.service_time_ms / 1000.0, float(m[0]), float(v[0])
    for s in reversed(names):  # callees first
        for c in app.calls:
            if c.src == s:
                det[s] += c.per_request * det[c.dst]
                mean[s] += c.per_request * mean[c.dst]
                var[s] += c.per_request * var[c.dst]
    e = app.entry
    p95 = det[e] + float(gamma_p95(np.array([mean[e]]), np.array([var[e]]))[0])
    return 1000.0 * p95, 1000.0 * (det[e] + mean[e])


def unloaded_latency_ms(app: AppSpec) -> tuple[float, float]:
    """(p95, mean) end-to-end response time with no load, ms: `model_latency_ms` at 0 req/s
    (each service's own part is its service time plus an exponential with mean 1/mu)."""
    return model_latency_ms(app, 0.0)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _call_graph(rng: np.random.Generator, n: int, cfg: GeneratorConfig
                ) -> tuple[dict[tuple[int, int], float], np.ndarray]:
    """Edges {(caller, callee): calls per caller request} and visits per entry request (n,).

    Callers have the lower index, so index order is a topological order and every service
    but the entry has at least one caller.
    """
    edges: dict[tuple[int, int], float] = {}
    visits = np.zeros(n)
    visits[0] = 1.0
    for i in range(1, n):
        parents = [int(rng.integers(i))]
        if i >= 2 and rng.random() < cfg.extra_edge_prob:
            other = int(rng.integers(i))
            if other != parents[0]:
                parents.append(other)
        # 60 %: a conditional call (0.2..1 per request); 40 %: 1..4 calls (loops, batches)
        calls = [rng.uniform(0.2, 1.0) if rng.random() < 0.6 else rng.uniform(1.0, 4.0)
                 for _ in parents]
        v = sum(visits[p] * k for p, k in zip(parents, calls, strict=True))
        if v > cfg.visit_cap:  # scale the incoming calls down to the cap
            calls = [k * cfg.visit_cap / v for k in calls]
        for p, k in zip(parents, calls, strict=True):
            edges[(p, i)] = max(round(float(k), 3), 0.001)
        visits[i] = sum(visits[p] * edges[(p, i)] for p in parents)
    return edges, visits


@dataclasses.dataclass(frozen=True)
class _Draw:
    """The random part of one service; `_size` turns it into a ServiceSpec."""

    name: str
    cpu_ms: float
    cpu_request_m: float
    limit_ratio: float
    mem_request_mi: float
    service_time_ms: float
    startup_s: float
    min_replicas: int
    headroom: int
    stateful: bool


def _draw(rng: np.random.Generator, name: str, profile: Profile, stateful: bool,
          cfg: GeneratorConfig) -> _Draw:
    def pick(options):
        return options[int(rng.integers(len(options)))]

    return _Draw(
        name=name, cpu_ms=_uniform(rng, profile.cpu_ms), cpu_request_m=float(pick(CPU_REQUESTS_M)),
        limit_ratio=float(pick(LIMIT_RATIOS)), mem_request_mi=float(pick(profile.mem_request_mi)),
        service_time_ms=round(_uniform(rng, profile.service_time_ms), 3),
        startup_s=round(float(np.clip(_uniform(rng, profile.startup_s), *cfg.startup_s)), 1),
        min_replicas=1 if stateful or rng.random() < 0.7 else 2,
        headroom=int(rng.integers(1, 4)), stateful=stateful)


def _size(d: _Draw, demand_rps: float, util: float, cfg: GeneratorConfig) -> ServiceSpec:
    """The service with max_replicas serving `demand_rps` at utilisation <= `util`.

    A service that would need more than `GeneratorConfig.max_replicas_limit` pods (a
    datastore: more than one) gets its CPU request and limit doubled until it fits.
    """
    limit = 1 if d.stateful else cfg.max_replicas_limit
    req_m = d.cpu_request_m

    def capacity(req: float) -> float:  # idle CPU: ServiceSpec's default 5 % of the request
        return round((req * d.limit_ratio - 0.05 * req) / d.cpu_ms, 2)

    while math.ceil(demand_rps / (util * capacity(req_m))) > limit:
        req_m *= 2.0
    cap = capacity(req_m)
    needed = max(1, math.ceil(demand_rps / (util * cap)))
    max_r = 1 if d.stateful else min(limit, max(needed + d.headroom, d.min_replicas + 1))
    return ServiceSpec(name=d.name, cpu_request_m=req_m, mem_request_mi=d.mem_request_mi,
                       capacity_rps=cap, service_time_ms=d.service_time_ms,
                       startup_s=d.startup_s, min_replicas=d.min_replicas, max_replicas=max_r,
                       cpu_limit_m=req_m * d.limit_ratio)


#: Share of the SLO the model's p95 may reach at the design peak with max_replicas pods
#: (margin for arrival noise and the fluid model's transients).
PEAK_SLO_MARGIN = 0.9


def generate_app(seed: int, config: GeneratorConfig | None = None) -> AppSpec:
    """A random valid application; the same seed and config give an equal spec.

    Sizing: every service is first sized for `GeneratorConfig.target_util` at the design
    peak; if the model's p95 at the peak with max_replicas pods would exceed
    `PEAK_SLO_MARGIN` x the SLO, the target utilisation is lowered (x0.85) and everything
    resized, so that the SLO can be met at the peak.

    Args:
        seed: non-negative integer (see `gnnrl.contracts.seeds`).
        config: GeneratorConfig (default: the one ``generated-<seed>`` names use).

    Returns:
        AppSpec named ``generated-<seed>`` with entry ``svc-00``, 4-20 services (by
        default), a load generator client ``loadgen`` and an SLO within
        ``slo_factor`` x the unloaded end-to-end p95.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed: must be a non-negative integer, got {seed!r}")
    cfg = config or GeneratorConfig()
    rng = np.random.default_rng([int(seed), 0x67656E])  # "gen": a stream of its own
    n = int(rng.integers(cfg.min_services, cfg.max_services + 1))
    edges, visits = _call_graph(rng, n, cfg)
    has_callees = {p for (p, _) in edges}
    runtimes = [k for k in PROFILES if k != "datastore"]
    draws: list[_Draw] = []
    for i in range(n):
        stateful = i > 0 and i not in has_callees and rng.random() < cfg.datastore_prob
        profile = (ENTRY_PROFILE if i == 0 else PROFILES["datastore"] if stateful
                   else PROFILES[runtimes[int(rng.integers(len(runtimes)))]])
        draws.append(_draw(rng, f"svc-{i:02d}", profile, stateful, cfg))
    slo_factor = _uniform(rng, cfg.slo_factor)
    names = [d.name for d in draws]
    calls = [CallSpec("loadgen", names[0], 1.0, mtls=1.0, protocol="http")]
    for (p, c), k in sorted(edges.items()):
        calls.append(CallSpec(names[p], names[c], k, mtls=1.0,
                              protocol="tcp" if draws[c].stateful else "grpc"))

    util = cfg.target_util
    while True:
        services = {d.name: _size(d, cfg.peak_rps * float(v), util, cfg)
                    for d, v in zip(draws, visits, strict=True)}
        app = AppSpec(name=f"{GENERATED_PREFIX}{int(seed)}", entry=names[0], slo_p95_ms=1.0,
                      services=services, calls=tuple(calls), clients=("loadgen",))
        p95, _ = unloaded_latency_ms(app)
        # rounding must not take the SLO out of the promised band
        slo = min(max(round(p95 * slo_factor, 2), cfg.slo_factor[0] * p95),
                  cfg.slo_factor[1] * p95)
        at_peak, _ = model_latency_ms(app, cfg.peak_rps,
                                      {s: x.max_replicas for s, x in services.items()})
        # lower utilisation -> the random part tends to the unloaded one (< 1.3x), so this
        # ends; the floor only guards against a pathological config
        if at_peak <= PEAK_SLO_MARGIN * slo or util < 0.01:
            return validate_app_spec(dataclasses.replace(app, slo_p95_ms=slo))
        util *= 0.85


def generated_app_seed(name: str) -> int | None:
    """The seed of a ``generated-<seed>`` name (digits only); None for any other name, so
    that a file called e.g. ``generated-mine.yaml`` still loads as a file."""
    rest = name[len(GENERATED_PREFIX):] if name.startswith(GENERATED_PREFIX) else ""
    return int(rest) if rest.isascii() and rest.isdigit() else None

"""Calibrate the simulator from collected snapshots: an `AppSpec` and an entry traffic trace.

The fits invert the simulator's own model (`gnnrl.sim.core`, `gnnrl.sim.queueing`):

* **CPU and capacity.** The simulator burns ``cpu_m = idle_cpu_m * replicas +
  cpu_per_request_m * served_rps`` (all pods of a service), with ``cpu_per_request_m =
  (cpu_limit_m - idle_cpu_m) / capacity_rps`` (a pod at capacity runs at its CPU limit). A
  least-squares fit ``cpu_m = a * rps_in + b * replicas`` over snapshots gives ``idle_cpu_m
  = b`` and ``capacity_rps = (cpu_limit_m - b) / a``. Rows where a pod would be above
  `max_utilisation` of that capacity (saturated: served < offered) are dropped and the fit
  redone. CPU limits are not in the snapshots: they come from `--app-base` (or the
  defaults), and the report says so.
* **Memory.** ``mem_mi = mem_base_mi * replicas + mem_per_rps_mi * rps_in``, same fit.
* **Calls per request.** The simulator sends ``per_request`` calls per request served, so
  ``per_request = median over snapshots of edge qps / caller rps_in``.
* **Service time.** An edge's p95 into a service is that service's response time: its fixed
  ``service_time_ms`` plus the M/M/1 sojourn at its per-pod load plus its callees' times
  (deterministic parts added, random parts' moments added, p95 of a gamma with those
  moments). Going callees-first, each service's ``service_time_ms`` is the observed p95
  minus everything else, evaluated with the fitted capacities at the observed loads, at low
  load (utilisation < `low_load_utilisation`, no pod starting), median over snapshots.
* **Trace.** The entry service's ``rps_in`` over time, ``t_s`` from the first snapshot.

A service whose data cannot support a fit (too few points, no load variation, R^2 below
`min_r2`, CPU not growing with traffic) makes `calibrate` raise `CalibrationError` listing
every such service and why, unless `allow_partial` keeps `--app-base`'s values for them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import numpy as np
import pandas as pd

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.data.errors import CalibrationError
from gnnrl.data.fit import LinearFit, fit_linear
from gnnrl.data.missing import MissingPolicy, resolve_missing
from gnnrl.data.reader import SnapshotData
from gnnrl.sim.queueing import gamma_p95, mm1_sojourn_moments
from gnnrl.sim.spec import AppSpec, AppSpecError, CallSpec, load_app_spec, topological_order

#: Node columns calibration cannot do without.
REQUIRED = ("replicas", "ready_replicas", "cpu_m", "rps_in")


@dataclasses.dataclass
class CalibrateConfig(JsonConfig):
    """Calibration settings.

    Attributes:
        app_base: built-in app name or spec path giving what snapshots cannot show (CPU
            request/limit, memory request, start-up time, replica bounds, SLO); None uses the
            `default_*` values for every service.
        name: the output app's name (default: the base's, else ``calibrated``).
        namespace: which namespace to calibrate when the data has several.
        entry: the entry service (default: the target of client edges, else the base's,
            else the service nobody calls).
        min_points: fewest usable snapshots per service fit.
        min_load_cv: least variation of a service's rps_in (std / mean) for a fit.
        min_r2: least R^2 of the CPU-vs-traffic fit.
        max_utilisation: rows with per-pod load above this share of capacity are excluded.
        low_load_utilisation: rows used for service time are below this utilisation.
        allow_partial: keep the base's values for services that cannot be fitted.
        missing: what to do with null required columns (`MissingPolicy`, default refuse).
        slo_p95_ms: SLO of the output (default: the base's, else 250 ms).
        default_*: per-service values when the base does not have the service.
    """

    app_base: str | None = "onlineboutique"
    name: str | None = None
    namespace: str | None = None
    entry: str | None = None
    min_points: int = 8
    min_load_cv: float = 0.05
    min_r2: float = 0.8
    max_utilisation: float = 0.85
    low_load_utilisation: float = 0.5
    allow_partial: bool = False
    missing: MissingPolicy = dataclasses.field(default_factory=MissingPolicy)
    slo_p95_ms: float | None = None
    default_cpu_request_m: float = 100.0
    default_cpu_limit_m: float = 200.0
    default_mem_request_mi: float = 64.0
    default_startup_s: float = 10.0
    default_service_time_ms: float = 2.0
    default_min_replicas: int = 1
    default_max_replicas: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.min_points, int) or self.min_points < 3:
            raise ConfigError(f"min_points: must be an integer >= 3, got {self.min_points!r}")
        for name in ("min_load_cv", "min_r2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("max_utilisation", "low_load_utilisation"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{name}: must be in (0, 1], got {getattr(self, name)!r}")
        if self.default_cpu_limit_m < self.default_cpu_request_m:
            raise ConfigError("default_cpu_limit_m: must be >= default_cpu_request_m")
        if isinstance(self.missing, dict):
            self.missing = MissingPolicy.from_dict(self.missing)


@dataclasses.dataclass
class ServiceFit:
    """Calibration of one service. Units: req/s, millicores, MiB, ms.

    `assumed` lists fields taken from the base/defaults, not from the data; `problem` says
    why the data could not support the CPU fit (None when it could).
    """

    service: str
    n_points: int = 0
    n_saturated: int = 0
    cpu: LinearFit | None = None
    mem: LinearFit | None = None
    capacity_rps: float = float("nan")
    idle_cpu_m: float = float("nan")
    cpu_limit_m: float = float("nan")
    service_time_ms: float = float("nan")
    p95_low_load_ms: float = float("nan")
    n_latency_points: int = 0
    mem_fields: dict[str, float] = dataclasses.field(default_factory=dict)
    assumed: list[str] = dataclasses.field(default_factory=list)
    problem: str | None = None
    #: True when no request rate was observed at all (a tcp-only service such as Redis, or
    #: one idle all along): not bad data, so the base's values are used without
    #: --allow-partial (and the report says so).
    unmeasured: bool = False


@dataclasses.dataclass
class CallFit:
    """Calls per request on one edge: median over `n` snapshots, with the quartiles."""

    src: str
    dst: str
    per_request: float
    q25: float
    q75: float
    n: int
    mtls: float
    protocol: str


@dataclasses.dataclass
class Calibration:
    """The result: the app spec, the trace (columns t_s, rps) and how each part was fitted."""

    app: AppSpec
    trace: pd.DataFrame
    services: dict[str, ServiceFit]
    calls: list[CallFit]
    notes: list[str]

    def report_lines(self) -> list[str]:
        """A table of fit quality per service, then the calls and notes."""
        out = [f"{'service':<24}{'n':>5}{'R^2':>8}{'rmse_m':>9}{'rel':>7}{'max|res|':>10}"
               f"{'cap_rps':>9}{'idle_m':>8}{'svc_ms':>8}{'p95_low':>9}  note"]
        for name, f in self.services.items():
            cpu = f.cpu
            cells = (f"{cpu.r2:>8.4f}{cpu.rmse:>9.2f}{cpu.rel_rmse:>7.1%}"
                     f"{cpu.max_abs_residual:>10.2f}" if cpu
                     else f"{'-':>8}{'-':>9}{'-':>7}{'-':>10}")
            note = f.problem or (f"assumed: {', '.join(f.assumed)}" if f.assumed else "")
            out.append(f"{name:<24}{f.n_points:>5}{cells}{f.capacity_rps:>9.1f}"
                       f"{f.idle_cpu_m:>8.1f}{f.service_time_ms:>8.2f}"
                       f"{f.p95_low_load_ms:>9.1f}  {note}")
        out.append("")
        out.append(f"{'call':<48}{'per_req':>9}{'q25':>8}{'q75':>8}{'n':>6}")
        for c in self.calls:
            out.append(f"{c.src + ' -> ' + c.dst:<48}{c.per_request:>9.3f}{c.q25:>8.3f}"
                       f"{c.q75:>8.3f}{c.n:>6}")
        out.extend(f"note: {n}" for n in self.notes)
        return out


# ------------------------------------------------------------------------------ helpers
def _wide(nodes: pd.DataFrame, column: str) -> pd.DataFrame:
    """(T, S) table of one node column, index ts, columns services."""
    return nodes.pivot_table(index="ts", columns="service", values=column, aggfunc="mean")


def _pick_namespace(data: SnapshotData, namespace: str | None) -> tuple[pd.DataFrame,
                                                                        pd.DataFrame]:
    found = sorted(data.nodes["namespace"].dropna().unique())
    if namespace is None:
        if len(found) > 1:
            raise CalibrationError(f"the data has several namespaces ({', '.join(found)}); "
                                   "choose one with --namespace")
        namespace = found[0]
    elif namespace not in found:
        raise CalibrationError(f"namespace {namespace!r} not in the data ({', '.join(found)})")
    return (data.nodes[data.nodes["namespace"] == namespace],
            data.edges[data.edges["namespace"] == namespace])


def _base_service(base: AppSpec | None, name: str, config: CalibrateConfig) -> dict[str, Any]:
    if base is not None and name in base.services:
        return base.services[name].to_dict()
    return {"cpu_request_m": config.default_cpu_request_m,
            "mem_request_mi": config.default_mem_request_mi,
            "cpu_limit_m": config.default_cpu_limit_m,
            "startup_s": config.default_startup_s,
            "service_time_ms": config.default_service_time_ms,
            "min_replicas": config.default_min_replicas,
            "max_replicas": config.default_max_replicas}


# ------------------------------------------------------------------------------ topology
def _find_entry(services: list[str], client_edges: pd.DataFrame, service_edges: pd.DataFrame,
                rps: pd.DataFrame, base: AppSpec | None, config: CalibrateConfig) -> str:
    if config.entry is not None:
        if config.entry not in services:
            raise CalibrationError(f"--entry {config.entry!r} is not a service in the data")
        return config.entry
    if len(client_edges):
        return str(client_edges.groupby("target")["qps"].sum().idxmax())
    if base is not None and base.entry in services:
        return base.entry
    called = set(service_edges["target"])
    roots = [s for s in services if s not in called]
    if not roots:
        raise CalibrationError("no entry service: every service is called by another; "
                               "give --entry")
    return max(roots, key=lambda s: float(np.nanmean(rps[s])))


def _fit_calls(service_edges: pd.DataFrame, rps: pd.DataFrame, usable: pd.DataFrame
               ) -> list[CallFit]:
    """Median calls per request per (caller, callee), over snapshots where the caller
    is not saturated (`usable`: (T, S) bool)."""
    qps = service_edges.groupby(["source", "target", "ts"])["qps"].sum(min_count=1)
    out = []
    for key, series in qps.groupby(level=[0, 1]):
        src, dst = cast("tuple[str, str]", key)  # grouped on two levels: (caller, callee)
        per_ts = series.droplevel([0, 1])
        caller = rps[src].reindex(per_ts.index)
        ok = usable[src].reindex(per_ts.index).fillna(False).to_numpy(bool)
        ratio = (per_ts / caller).to_numpy(float)
        good = ok & np.isfinite(ratio) & (caller.to_numpy(float) > 0)
        if not good.any():
            continue
        r = ratio[good]
        sel = service_edges[(service_edges.source == src) & (service_edges.target == dst)]
        mtls = float(np.nanmedian(sel["mtls"])) if sel["mtls"].notna().any() else 1.0
        out.append(CallFit(src, dst, float(np.median(r)), float(np.quantile(r, 0.25)),
                           float(np.quantile(r, 0.75)), int(good.sum()), mtls,
                           str(sel["protocol"].mode().iloc[0])))
    return out


def _unmeasured_calls(service_edges: pd.DataFrame, fitted: list[CallFit],
                      base: AppSpec | None, notes: list[str]) -> list[CallFit]:
    """Edges seen in the data without a request rate (tcp: Kiali and Istio report bytes,
    not requests, for tcp): calls per request from the base spec, else 1, and said so."""
    have = {(c.src, c.dst) for c in fitted}
    base_calls = {(c.src, c.dst): c.per_request for c in base.calls} if base else {}
    out = []
    for key, grp in service_edges.groupby(["source", "target"]):
        src, dst = cast("tuple[str, str]", key)  # grouped on two columns: (caller, callee)
        if (src, dst) in have:
            continue
        per = base_calls.get((src, dst))
        notes.append(f"{src} -> {dst}: no request rate in the data ("
                     f"{', '.join(sorted(set(grp['protocol'].astype(str))))}); calls per "
                     + (f"request from --app-base ({per:g})" if per is not None
                        else "request assumed 1"))
        mtls = float(np.nanmedian(grp["mtls"])) if grp["mtls"].notna().any() else 1.0
        out.append(CallFit(str(src), str(dst), 1.0 if per is None else float(per),
                           float("nan"), float("nan"), 0, mtls,
                           str(grp["protocol"].mode().iloc[0])))
    return out


# ------------------------------------------------------------------------------ CPU fit
def _finite_rows(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """(T,) bool: the rows whose `columns` are all finite (neither NaN nor inf)."""
    # a ufunc on a DataFrame returns a DataFrame; numpy's stubs say ndarray
    finite = cast(pd.DataFrame, np.isfinite(df[columns]))
    return finite.all(axis=1)


def _fit_cpu(name: str, df: pd.DataFrame, limit_m: float, config: CalibrateConfig
             ) -> ServiceFit:
    """Fit ``cpu_m = a * rps_in + b * replicas`` for one service (rows: one per ts)."""
    fit = ServiceFit(service=name, cpu_limit_m=limit_m)
    df = df[_finite_rows(df, ["rps_in", "replicas", "cpu_m"])]
    df = df[df["replicas"] > 0]
    fit.n_points = len(df)
    if len(df) < config.min_points:
        fit.problem = f"only {len(df)} usable snapshots (need {config.min_points})"
        return fit
    if not (df["rps_in"] > 0).any():
        fit.problem = ("no request rate observed (tcp-only traffic, e.g. Redis, or idle "
                       "throughout)")
        fit.unmeasured = True
        return fit
    busy = int((df["cpu_m"] > 0).sum())
    if busy < config.min_points:
        fit.problem = f"only {busy} snapshots with CPU > 0 (need {config.min_points})"
        return fit
    rps = df["rps_in"].to_numpy(float)
    mean = float(rps.mean())
    cv = float(rps.std() / mean) if mean > 0 else 0.0
    if cv < config.min_load_cv:
        fit.problem = (f"no load variation (rps_in std/mean = {cv:.3f}, need "
                       f">= {config.min_load_cv}); collect across busy and quiet hours")
        return fit
    keep = np.ones(len(df), dtype=bool)
    for _ in range(3):  # drop saturated rows, refit, until stable
        X = df[["rps_in", "replicas"]].to_numpy(float)[keep]
        lf = fit_linear(X, df["cpu_m"].to_numpy(float)[keep], relative=True)
        a, b = lf.coef
        if a <= 0 or b >= limit_m:
            fit.cpu = lf
            fit.problem = (f"CPU does not grow with traffic (slope {a:.4g} m per req/s, "
                           f"idle {b:.4g} m per pod)")
            return fit
        capacity = (limit_m - max(b, 0.0)) / a
        util = rps / (df["ready_replicas"].clip(lower=1).to_numpy(float) * capacity)
        new_keep = util <= config.max_utilisation
        if (new_keep == keep).all() or new_keep.sum() < config.min_points:
            break
        keep = new_keep
    fit.cpu, fit.n_saturated = lf, int((~keep).sum())
    fit.idle_cpu_m = max(float(b), 0.0)
    fit.capacity_rps = (limit_m - fit.idle_cpu_m) / float(a)
    if lf.r2 < config.min_r2:
        fit.problem = f"CPU vs traffic R^2 = {lf.r2:.3f} is below {config.min_r2}"
    return fit


def _fit_mem(df: pd.DataFrame) -> tuple[LinearFit | None, dict[str, float]]:
    df = df[_finite_rows(df, ["rps_in", "replicas", "mem_mi"]) & (df["mem_mi"] > 0)]
    if len(df) < 3:
        return None, {}
    lf = fit_linear(df[["replicas", "rps_in"]].to_numpy(float), df["mem_mi"].to_numpy(float),
                    relative=True)
    base, per_rps = lf.coef
    if base <= 0:
        return lf, {}
    return lf, {"mem_base_mi": float(base), "mem_per_rps_mi": max(float(per_rps), 0.0)}


# ------------------------------------------------------------------------------ latency
class _Latency:
    """Invert the simulator's response-time model callees-first (module docstring)."""

    def __init__(self, rps: pd.DataFrame, ready: pd.DataFrame, replicas: pd.DataFrame,
                 calls: dict[str, list[tuple[str, float]]]) -> None:
        self.rps, self.ready, self.replicas, self.calls = rps, ready, replicas, calls
        self.tot: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def own_moments(self, s: str, cap: float) -> tuple[np.ndarray, np.ndarray]:
        ready = self.ready[s].to_numpy(float)
        lam_pod = np.where(ready > 0, self.rps[s].to_numpy(float) / np.maximum(ready, 1), 0.0)
        return mm1_sojourn_moments(lam_pod, np.full_like(lam_pod, cap))

    def downstream(self, s: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        T = len(self.rps.index)
        det, mean, var = np.zeros(T), np.zeros(T), np.zeros(T)
        for callee, k in self.calls.get(s, []):
            d, m, v = self.tot[callee]
            det, mean, var = det + k * d, mean + k * m, var + k * v
        return det, mean, var

    def stable(self, s: str) -> np.ndarray:
        """(T,) snapshots where `s` and everything it calls had no starting pod all window
        long: every pod was ready at the window's end *and* at the previous snapshot (a pod
        that became ready mid-window served only part of it)."""
        ready, reps = self.ready[s], self.replicas[s]
        ok = ((ready == reps) & (ready.shift(1) == reps) & (ready > 0)).to_numpy(bool).copy()
        for callee, _ in self.calls.get(s, []):
            ok &= self.stable(callee)
        return ok

    def solve(self, s: str, cap: float, p95_obs_ms: pd.Series, low_util: float
              ) -> tuple[float, float, int]:
        """Service time (ms) of `s`, its observed low-load p95 (ms) and the points used."""
        mean, var = self.own_moments(s, cap)
        d_det, d_mean, d_var = self.downstream(s)
        obs = p95_obs_ms.reindex(self.rps.index).to_numpy(float) / 1000.0
        util = self.rps[s].to_numpy(float) / (np.maximum(self.ready[s].to_numpy(float), 1)
                                              * cap)
        use = np.isfinite(obs) & self.stable(s) & (util < low_util)
        if not use.any():
            return float("nan"), float("nan"), 0
        st = obs - d_det - gamma_p95(mean + d_mean, var + d_var)
        return float(np.median(st[use]) * 1000.0), float(np.median(obs[use]) * 1000.0), \
            int(use.sum())

    def record(self, s: str, cap: float, st_ms: float) -> None:
        mean, var = self.own_moments(s, cap)
        d_det, d_mean, d_var = self.downstream(s)
        self.tot[s] = (st_ms / 1000.0 + d_det, mean + d_mean, var + d_var)


# ------------------------------------------------------------------------------ main
def calibrate(data: SnapshotData, config: CalibrateConfig | None = None) -> Calibration:
    """Fit an application spec and an entry trace to collected snapshots.

    Args:
        data: `read_dataset(root)`.
        config: `CalibrateConfig`.

    Returns:
        `Calibration` (app spec loadable by `gnnrl.sim.load_app_spec`, trace, fit report).

    Raises:
        CalibrationError: the data cannot support the fit (the message lists each service
            and the reason) or the fitted graph is not a valid app (e.g. a call cycle).
        MissingDataError: required columns are null and `config.missing` says refuse.
        ConfigError: `config.app_base` cannot be loaded.
    """
    config = config or CalibrateConfig()
    if data.nodes.empty:
        raise CalibrationError("the dataset has no node rows (only gaps?): nothing to fit")
    try:
        base = load_app_spec(config.app_base) if config.app_base else None
    except AppSpecError as exc:
        raise ConfigError(f"app_base: {exc}") from exc
    nodes, edges = _pick_namespace(data, config.namespace)
    nodes, imputed = resolve_missing(nodes, REQUIRED, config.missing, group_by=["service"],
                                     what="calibrate")
    notes = [f"imputed {n} null {c} values ({config.missing.strategy})"
             for c, n in imputed.items()]
    notes.append("CPU limits/requests, memory requests, start-up times and replica bounds "
                 "are not in snapshots: taken from "
                 + (f"--app-base {config.app_base}" if base else "the --default-* values"))
    rps, ready, replicas = _wide(nodes, "rps_in"), _wide(nodes, "ready_replicas"), \
        _wide(nodes, "replicas")
    services = [str(s) for s in rps.columns]
    quiet = [s for s in services if not np.nanmax(rps[s].to_numpy(float)) > 0]
    senders = set(edges["source"])
    clients = sorted({str(s) for s in senders if s not in services}
                     | {s for s in quiet if s in senders})
    services = [s for s in services if s not in clients]
    self_calls = edges["source"] == edges["target"]
    if self_calls.any():  # the simulator's call graph is acyclic (gnnrl.sim.spec)
        notes.append(f"self-call edge rows dropped: {int(self_calls.sum())}")
    edges = edges[~self_calls]
    client_edges = edges[edges["source"].isin(clients) & edges["target"].isin(services)]
    service_edges = edges[edges["source"].isin(services) & edges["target"].isin(services)]
    entry = _find_entry(services, client_edges, service_edges, rps, base, config)

    fits: dict[str, ServiceFit] = {}
    for s in services:
        b = _base_service(base, s, config)
        limit = float(b.get("cpu_limit_m") or 2.0 * b["cpu_request_m"])
        rows = nodes[nodes["service"] == s].groupby("ts")[[*REQUIRED, "mem_mi"]].mean()
        fits[s] = _fit_cpu(s, rows, limit, config)
        fits[s].mem, fits[s].mem_fields = _fit_mem(rows)
    _refuse_or_fill(fits, base, config, notes)

    cap = pd.Series({s: fits[s].capacity_rps for s in services})
    usable = (rps / (ready.clip(lower=1) * cap)) <= config.max_utilisation
    call_fits = _fit_calls(service_edges, rps, usable)
    call_fits += _unmeasured_calls(service_edges, call_fits, base, notes)
    _fit_service_times(fits, services, call_fits, client_edges, service_edges, rps, ready,
                       replicas, base, config)
    app = _assemble(fits, services, call_fits, client_edges, clients, entry, base, config)
    trace = _trace(rps[entry])
    return Calibration(app=app, trace=trace, services=fits, calls=call_fits, notes=notes)


def _refuse_or_fill(fits: dict[str, ServiceFit], base: AppSpec | None,
                    config: CalibrateConfig, notes: list[str]) -> None:
    bad = {s: f.problem for s, f in fits.items() if f.problem}
    if not bad:
        return
    detail = "; ".join(f"{s}: {p}" for s, p in bad.items())
    real = {s: p for s, p in bad.items() if not fits[s].unmeasured}
    if real and not config.allow_partial:
        listed = "; ".join(f"{s}: {p}" for s, p in real.items())
        raise CalibrationError(f"the data cannot support a fit for {len(real)} service(s): "
                               f"{listed} (--allow-partial keeps --app-base values for them)")
    missing = [s for s in bad if base is None or s not in base.services]
    if missing:
        raise CalibrationError(f"cannot fit {', '.join(missing)} and --app-base has no values "
                               f"for them: {detail}")
    assert base is not None  # else every bad service is missing (raised above)
    for s in bad:
        spec = base.services[s]
        assert spec.idle_cpu_m is not None  # filled in by ServiceSpec.__post_init__
        fits[s].capacity_rps, fits[s].idle_cpu_m = spec.capacity_rps, float(spec.idle_cpu_m)
        fits[s].assumed += ["capacity_rps", "idle_cpu_m"]
    notes.append(f"kept --app-base values for {', '.join(bad)} ({detail})")


def _fit_service_times(fits, services, call_fits, client_edges, service_edges, rps, ready,
                       replicas, base, config) -> None:
    calls: dict[str, list[tuple[str, float]]] = {}
    for c in call_fits:
        calls.setdefault(c.src, []).append((c.dst, c.per_request))
    order = topological_order(services, tuple(CallSpec(c.src, c.dst, c.per_request)
                                              for c in call_fits))
    lat = _Latency(rps, ready.reindex(rps.index), replicas.reindex(rps.index), calls)
    into = pd.concat([client_edges, service_edges])
    p95 = into.groupby(["target", "ts"])["p95_ms"].median()
    for s in reversed(order):
        f = fits[s]
        obs = p95.loc[s] if s in p95.index.get_level_values(0) else pd.Series(dtype=float)
        st, low, n = lat.solve(s, f.capacity_rps, obs, config.low_load_utilisation)
        if n == 0 or not np.isfinite(st):
            st = float(_base_service(base, s, config)["service_time_ms"])
            f.assumed.append("service_time_ms")
        f.service_time_ms, f.p95_low_load_ms, f.n_latency_points = max(st, 0.0), low, n
        lat.record(s, f.capacity_rps, f.service_time_ms)


def _assemble(fits, services, call_fits, client_edges, clients, entry, base, config) -> AppSpec:
    spec_services = {}
    for s in services:
        f = fits[s]
        d = _base_service(base, s, config)
        d.update(capacity_rps=float(f.capacity_rps), idle_cpu_m=float(f.idle_cpu_m),
                 service_time_ms=float(f.service_time_ms), cpu_limit_m=float(f.cpu_limit_m))
        d.update(f.mem_fields)
        for key in ("capacity_rps", "idle_cpu_m", "service_time_ms", "mem_base_mi",
                    "mem_per_rps_mi"):
            d[key] = float(f"{d[key]:.5g}")
        if base is None or s not in base.services:
            f.assumed += ["cpu_request_m", "mem_request_mi", "startup_s", "replica bounds"]
        spec_services[s] = d
    calls = [{"from": c.src, "to": c.dst, "per_request": round(c.per_request, 6),
              "mtls": round(min(max(c.mtls, 0.0), 1.0), 6), "protocol": c.protocol}
             for c in call_fits]
    for (src, dst), grp in client_edges.groupby(["source", "target"]):
        mtls = float(np.nanmedian(grp["mtls"])) if grp["mtls"].notna().any() else 1.0
        calls.append({"from": src, "to": dst, "per_request": 1.0, "mtls": mtls,
                      "protocol": str(grp["protocol"].mode().iloc[0])})
    slo = config.slo_p95_ms or (base.slo_p95_ms if base is not None else 250.0)
    raw = {"name": config.name or (f"{base.name}-calibrated" if base is not None
                                   else "calibrated"),
           "entry": entry, "slo_p95_ms": float(slo), "clients": list(clients),
           "services": spec_services, "calls": calls}
    try:
        return load_app_spec(raw)
    except AppSpecError as exc:
        raise CalibrationError(f"the fitted application is not valid: {exc}") from exc


def _trace(entry_rps: pd.Series) -> pd.DataFrame:
    s = entry_rps.dropna()
    t = (s.index - s.index[0]).total_seconds().to_numpy(float)
    return pd.DataFrame({"t_s": t, "rps": s.to_numpy(float)})

"""The compiled observation builders (schema v2: every column in one kernel pass) equal the
numpy reference bit for bit, on random states the simulator does not make: unknown (NaN)
values, unread v2 fields, services the policy does not own, padded and overflowed slots,
calls without traffic, failures and none, services that come and go in the load history.
"""

from __future__ import annotations

import numpy as np
import pytest

from gnnrl.core.envs import cluster_view
from gnnrl.core.envs.cluster_view import (
    ClusterView,
    ViewSlots,
    observation_from_metrics,
    observation_from_view,
    sim_observables,
    sim_view_index,
    unserved_products,
    view_from_metrics,
    view_slots,
)
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphSpace
from gnnrl.core.envs.obs_extras import (
    BatchedContext,
    BatchedLoadHistory,
    LoadHistory,
    ObservationContext,
)
from gnnrl.core.envs.observation import build_observations, observation_layout
from gnnrl.sim import BatchedSim, load_app_spec

NAMES = tuple(f"svc-{k}" for k in range(14))  # more than the history's first 8 columns


def assert_bitwise_equal(got: dict, want: dict, where: str) -> None:
    assert got.keys() == want.keys(), where
    for key, value in want.items():
        g, w = np.asarray(got[key]), np.asarray(value)
        assert g.dtype == w.dtype and g.shape == w.shape, f"{where}: {key}"
        np.testing.assert_array_equal(g, w, err_msg=f"{where}: {key}")  # NaN == NaN
        np.testing.assert_array_equal(np.signbit(g), np.signbit(w), err_msg=f"{where}: {key}")


def with_unknowns(rng: np.random.Generator, x: np.ndarray, share: float) -> np.ndarray:
    x = np.array(x, dtype=float)
    x[rng.random(len(x)) < share] = np.nan
    return x


def random_view(rng: np.random.Generator, t: int) -> ClusterView:
    """Up to 11 of `NAMES`, random calls between them (some TCP-level, some idle), every
    kind of unknown value; every few steps a v2 field unread or the end-to-end p95
    unknown."""
    S = int(rng.integers(1, 12))
    services = tuple(rng.choice(NAMES, S, replace=False).tolist())
    pairs = sorted({(int(a), int(b)) for a, b in rng.integers(0, S, (3 * S, 2)) if a != b})
    E = len(pairs)
    replicas = rng.integers(0, 6, S).astype(float)
    owned = rng.random(S) < 0.8
    return ClusterView(
        services, with_unknowns(rng, replicas, 0.05),
        with_unknowns(rng, np.minimum(replicas, rng.integers(0, 6, S)), 0.05),
        with_unknowns(rng, rng.uniform(0, 900, S), 0.1),
        with_unknowns(rng, rng.uniform(10, 500, S), 0.1),
        with_unknowns(rng, rng.uniform(0, 300, S) * (rng.random(S) < 0.8), 0.1),
        with_unknowns(rng, rng.uniform(50, 500, S), 0.05),
        np.where(owned, 1.0, np.nan), np.where(owned, 8.0, np.nan),
        np.array([p[0] for p in pairs], dtype=np.int64),
        np.array([p[1] for p in pairs], dtype=np.int64),
        with_unknowns(rng, rng.uniform(0, 100, E) * (rng.random(E) < 0.8), 0.1),
        with_unknowns(rng, rng.uniform(1, 400, E), 0.1),
        with_unknowns(rng, rng.uniform(0, 0.3, E), 0.1), rng.uniform(0, 1, E).round(),
        rng.random(E) < 0.8,
        cpu_limit_m=None if t % 5 == 0 else with_unknowns(rng, rng.uniform(0, 1000, S), 0.1),
        startup_s=None if t % 7 == 0 else with_unknowns(rng, rng.uniform(1, 60, S), 0.1),
        unserved=None if t % 4 == 0 else with_unknowns(rng, rng.uniform(-0.1, 1.2, S), 0.1),
        e2e_p95_ms=np.nan if t % 6 == 0 else float(rng.uniform(10, 900))).check()


def random_slots(rng: np.random.Generator, view: ClusterView, max_nodes: int = 20,
                 max_edges: int = 40) -> ViewSlots:
    """Slots anywhere among the padded ones; some services overflowed (-1), and some edges
    without a slot (their own overflow, or an end without one)."""
    S, E = len(view.services), len(view.edge_src)
    node_slot = rng.permutation(max_nodes)[:S].astype(np.int64)
    node_slot[rng.random(S) < 0.1] = -1
    edge_slot = rng.permutation(max_edges)[:E].astype(np.int64)
    edge_slot[rng.random(E) < 0.1] = -1
    edge_slot[(node_slot[view.edge_src] < 0) | (node_slot[view.edge_dst] < 0)] = -1
    return ViewSlots(node_slot, edge_slot, max_nodes, max_edges)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_view_builder_equals_the_numpy_reference_on_random_views(seed):
    rng = np.random.default_rng(seed)
    histories = {"numba": LoadHistory(), "numpy": LoadHistory()}
    for t in range(80):
        view = random_view(rng, t)
        slots = random_slots(rng, view)
        context = ObservationContext(float(rng.uniform(50, 500)),
                                     float(rng.choice([5.0, 15.0, 30.0])),
                                     float(rng.uniform(0, 1)), float(rng.uniform(-1e5, 3e5)))
        no_past = t % 13 == 7  # an observer without a load history
        got, want = (observation_from_view(
            view, slots, 0.7, backend=backend, context=context,
            history=None if no_past else histories[backend]) for backend in ("numba", "numpy"))
        assert_bitwise_equal(got, want, f"step {t}")
        if t == 40:
            for history in histories.values():
                history.reset()


def stepped_sim(app: str, copies: int, seed: int) -> BatchedSim:
    sim = BatchedSim(load_app_spec(app), copies, seed=seed)
    sim.reset()
    return sim


def load_and_targets(sim: BatchedSim, rng: np.random.Generator, t: int):
    """Idle, moderate and overloading entry loads (failures from step 10 on), random
    pod counts."""
    peak = 30.0 if t < 10 else 1500.0
    target = np.clip(sim.min_replicas + rng.integers(0, 4, (sim.n, sim.num_services)),
                     sim.min_replicas, sim.max_replicas)
    return rng.uniform(0.0, peak, sim.n), target


def with_unknown_metrics(m, rng: np.random.Generator) -> None:
    """NaN metrics in some copies, a call gone idle, an end-to-end p95 unknown. (Services
    0-3 only: both builders leave unobserved services out of the sums, but NaN times 0 is
    NaN in numpy's.)"""
    (N, E), S = m.edge_qps.shape, 4
    m.edge_p95_ms[0, rng.integers(E)] = np.nan
    m.e2e_p95_ms[1 % N] = np.nan
    m.edge_err[2 % N, rng.integers(E)] = np.nan
    m.edge_qps[3 % N, rng.integers(E)] = 0.0
    m.rps_in[0, rng.integers(S)] = np.nan
    m.cpu_m[1 % N, rng.integers(S)] = np.nan


def with_a_failed_call(m, observables, copy: int) -> None:
    """A call into some service failing (in `copy`, or the next copy with a call that
    carried requests), while the end-to-end error rate says nothing: the unserved share
    must count calls, not only the entry's callers. (None in an app whose calls are all
    TCP-level, as socialnetwork's Thrift calls are: a mesh counts no request there.)"""
    for n in np.roll(np.arange(m.edge_qps.shape[0]), -copy):
        live = np.flatnonzero(observables.edge_requests & (m.edge_qps[n] > 0))
        if len(live):
            m.edge_err[n, live[len(live) // 2]] = 0.25
            m.e2e_err_rate[n] = 0.0
            return
    assert not observables.edge_requests.any(), "no call carried requests"


@pytest.mark.parametrize("app", ["onlineboutique", "socialnetwork"])
def test_compiled_batched_builder_equals_the_numpy_reference_with_history_and_unknowns(app):
    N = 4
    sim = stepped_sim(app, N, seed=3)
    rng = np.random.default_rng(3)
    S, E = sim.num_services, len(sim.edges)
    slot = np.stack([rng.permutation(20)[:S] for _ in range(N)])
    slot[1, 4] = -1  # a service without a slot
    eslot = np.tile(np.arange(E), (N, 1))
    eslot[2, 3] = -1  # an edge without one
    histories = {b: BatchedLoadHistory(N, S) for b in ("numba", "numpy")}
    observables = sim_observables(sim)
    layout = observation_layout(sim, slot, eslot, sim.active, 20, 400)
    seen = {"failures": False, "none": False}
    truth = None
    for t in range(24):
        m = sim.step(*load_and_targets(sim, rng, t))
        if t % 3 == 1:
            with_unknown_metrics(m, rng)
        if t in (5, 8):  # at low load: no other failure
            with_a_failed_call(m, observables, copy=t % N)
        failed, offered = unserved_products(m, observables, layout.edge_observed)
        seen["none" if failed is offered else "failures"] = True
        context = BatchedContext(sim.app.slo_p95_ms, 15.0, rng.uniform(0, 1, N),
                                 rng.uniform(-1e5, 2e5, N))
        for history in (histories, None):
            got, want = (build_observations(
                m, sim, slot, eslot, 20, 400, backend=b, context=context,
                history=None if history is None else history[b], truth=truth)
                for b in ("numba", "numpy"))
            assert_bitwise_equal(got, want, f"step {t}, history {history is not None}")
        for history in histories.values():
            history.commit()
            if t == 12:
                history.reset_copy(2)
        truth = m if t % 2 else None  # the metrics shown lag the truth on odd steps
    assert all(seen.values()), seen


@pytest.mark.parametrize("app", ["onlineboutique", "socialnetwork"])
def test_one_copy_view_of_the_metrics_equals_the_numpy_reference(app):
    sim = stepped_sim(app, 3, seed=5)
    rng = np.random.default_rng(5)
    observables = sim_observables(sim)
    for t in range(20):
        m = sim.step(*load_and_targets(sim, rng, t))
        if t % 3 == 1:
            with_unknown_metrics(m, rng)
            m.edge_err[1, rng.integers(m.edge_err.shape[1])] = -0.0
        if t in (5, 8):  # at low load: no other failure
            with_a_failed_call(m, observables, copy=1)
        for copy in range(sim.n):
            index = sim_view_index(sim, sim.service_names, sim.active[copy], observables)
            slots = view_slots(index, _mapped(index))
            got, want = (view_from_metrics(m, index, observables, slots, copy=copy,
                                           backend=b) for b in ("numba", "numpy"))
            for field in ClusterView.__dataclass_fields__:
                g, w = np.asarray(getattr(got[0], field)), np.asarray(getattr(want[0], field))
                np.testing.assert_array_equal(g, w, err_msg=f"step {t}, copy {copy}: {field}")
                np.testing.assert_array_equal(np.signbit(g) if g.dtype.kind == "f" else g,
                                              np.signbit(w) if w.dtype.kind == "f" else w)
            np.testing.assert_array_equal(got[1].edge_slot, want[1].edge_slot)


@pytest.mark.parametrize("app", ["onlineboutique", "socialnetwork"])
def test_one_call_from_metrics_to_observation_equals_the_view_path(app, monkeypatch):
    # the single env's path: no `ClusterView` object, the same numbers (a step with a
    # failure counted takes a second call, with numpy's products of the unserved share)
    calls = []
    kernel = cluster_view.metrics_observation_kernel
    monkeypatch.setattr(cluster_view, "metrics_observation_kernel",
                        lambda *a: calls.append(1) or kernel(*a))
    sim = stepped_sim(app, 2, seed=7)
    rng = np.random.default_rng(7)
    observables = sim_observables(sim)
    histories = {"one call": LoadHistory(), "view": LoadHistory()}
    lagged = None
    for t in range(30):
        m = sim.step(*load_and_targets(sim, rng, t))
        if t % 3 == 1:
            with_unknown_metrics(m, rng)
        if t in (5, 8):
            with_a_failed_call(m, observables, copy=1)
        truth = m if lagged is None else lagged  # the metrics shown lag on some steps
        for copy in range(sim.n):
            index = sim_view_index(sim, sim.service_names, sim.active[copy], observables)
            slots = view_slots(index, _mapped(index))
            context = ObservationContext(sim.app.slo_p95_ms, 15.0, float(rng.uniform(0, 1)),
                                         float(rng.uniform(0, 86_400)))
            view, view_slots_ = view_from_metrics(m, index, observables, slots, copy=copy,
                                                  truth=truth)
            want = observation_from_view(view, view_slots_, 0.7, context=context,
                                         history=histories["view"] if copy else None)
            got = observation_from_metrics(m, index, observables, slots, 0.7, copy=copy,
                                           truth=truth, context=context,
                                           history=histories["one call"] if copy else None)
            assert_bitwise_equal(got, want, f"step {t}, copy {copy}")
        lagged = m if t % 2 else None
    assert 30 * sim.n < len(calls) < 2 * 30 * sim.n  # failures in some steps, not all


def _mapped(index) -> DynamicGraphSpace:
    space = DynamicGraphSpace()
    space.update_node_mapping(index.services)
    space.update_edge_mapping((index.services[s], index.services[d])
                              for s, d in zip(index.edge_src, index.edge_dst, strict=True))
    return space


@pytest.mark.parametrize("history", [LoadHistory, lambda lags: BatchedLoadHistory(2, 3, lags)])
@pytest.mark.parametrize("lags", [(0, 4), (), (-1,)])
def test_a_load_history_must_look_back_at_least_one_interval(history, lags):
    with pytest.raises(ValueError, match="lags"):
        history(lags)

"""The fluid queueing-network core: propagation, start-up delay, overload, determinism."""

import numpy as np
import pytest

from gnnrl.sim import BatchedSim, SimConfig, load_app_spec
from gnnrl.sim.queueing import gamma_p95

QUIET = SimConfig(arrival_noise=False, metric_noise=0.0)


def chain_app(cap_c=100.0, startup_b=10.0):
    """a -> b (2 calls/request), a -> c (0.5), b -> c (1)."""
    svc = lambda cap, st: {"cpu_request_m": 100, "mem_request_mi": 64,  # noqa: E731
                           "capacity_rps": cap, "service_time_ms": 2, "startup_s": st,
                           "timeout_ms": 1000}
    return load_app_spec({
        "name": "chain", "entry": "a", "slo_p95_ms": 200,
        "services": {"a": svc(100, 10), "b": svc(100, startup_b), "c": svc(cap_c, 10)},
        "calls": [{"from": "a", "to": "b", "per_request": 2},
                  {"from": "a", "to": "c", "per_request": 0.5},
                  {"from": "b", "to": "c", "per_request": 1}],
    })


def test_call_graph_propagation_matches_hand_calculation():
    sim = BatchedSim(chain_app(), 1, QUIET)
    sim.reset(np.array([[5, 5, 5]]))
    m = sim.step(np.array([10.0]))
    i = sim.index
    # a: 10; b: 2*10 = 20; c: 0.5*10 + 1*20 = 25 req/s
    assert m.rps_in[0, i["a"]] == pytest.approx(10)
    assert m.rps_in[0, i["b"]] == pytest.approx(20)
    assert m.rps_in[0, i["c"]] == pytest.approx(25)
    assert sim.propagate(np.array([10.0]))[0, i["c"]] == pytest.approx(25)
    edge = {(sim.service_names[s], sim.service_names[d]): k for k, (s, d) in enumerate(sim.edges)}
    assert m.edge_qps[0, edge[("b", "c")]] == pytest.approx(20)


def test_latency_adds_downstream_response_times():
    sim = BatchedSim(chain_app(), 1, QUIET)
    sim.reset(np.array([[5, 5, 5]]))
    m = sim.step(np.array([10.0]))
    i = sim.index
    mean = m.mean_ms[0]
    # mean(a) = own(a) + 2 mean(b) + 0.5 mean(c); own = 2 ms + 1/(mu - lam/pods)
    own = lambda lam, pods: 2.0 + 1000.0 / (100.0 - lam / pods)  # noqa: E731
    c = own(25, 5)
    b = own(20, 5) + c
    a = own(10, 5) + 2 * b + 0.5 * c
    assert mean[i["c"]] == pytest.approx(c)
    assert mean[i["b"]] == pytest.approx(b)
    assert mean[i["a"]] == pytest.approx(a)
    assert m.p95_ms[0, i["a"]] > mean[i["a"]]


def test_single_mm1_hop_p95_is_exact():
    # exponential with mean m: p95 = m ln 20; the gamma fit with shape 1 is within 1 %
    m = np.array([0.01])
    assert gamma_p95(m, m * m)[0] == pytest.approx(0.01 * np.log(20), rel=0.01)


def test_new_replicas_serve_only_after_startup_delay():
    sim = BatchedSim(chain_app(startup_b=40.0), 1, QUIET)  # 40 s = 2.67 steps of 15 s
    sim.reset(np.array([[5, 1, 5]]))
    ready = []
    for _ in range(4):
        m = sim.step(np.array([10.0]), np.array([[5, 4, 5]]) if not ready else None)
        ready.append(int(m.ready[0, sim.index["b"]]))
        assert m.replicas[0, sim.index["b"]] == 4  # pending pods exist (and cost) at once
    # ready after steps 1, 2 (40 s not yet reached at 30 s), 3 (45 s >= 40 s)
    assert ready == [1, 1, 4, 4]


def test_removed_replicas_stop_serving_at_once_pending_first():
    sim = BatchedSim(chain_app(), 1, QUIET)
    sim.reset(np.array([[2, 2, 2]]))
    sim.step(np.array([1.0]), np.array([[4, 2, 2]]))  # 2 pending on a
    m = sim.step(np.array([1.0]), np.array([[2, 2, 2]]))  # remove 2: the pending ones
    assert m.replicas[0, sim.index["a"]] == 2
    assert m.ready[0, sim.index["a"]] == 2


def test_overload_builds_backlog_and_errors_then_drains():
    sim = BatchedSim(chain_app(cap_c=10.0), 1, QUIET)  # c saturates: 1 pod x 10 req/s
    sim.reset(np.array([[5, 5, 1]]))
    i = sim.index["c"]
    m1 = sim.step(np.array([2.0]))  # c gets 0.5*2 + 2*2 = 5 req/s < 10
    assert m1.backlog[0, i] == 0 and m1.err_rate[0, i] == 0
    backlogs, errors, p95 = [], [], []
    for _ in range(4):  # c gets 25 req/s, 2.5x its capacity
        m = sim.step(np.array([10.0]))
        backlogs.append(m.backlog[0, i])
        errors.append(m.e2e_err_rate[0])
        p95.append(m.e2e_p95_ms[0])
    assert backlogs[0] > 0 and p95[0] > m1.e2e_p95_ms[0]
    # backlog is capped at timeout x capacity (1 s x 10 req/s), the rest fails
    assert max(backlogs) == pytest.approx(10.0)
    assert errors[-1] > 0.3
    m = sim.step(np.array([10.0]), np.array([[5, 5, 6]]))  # scale c out: capacity returns
    m = sim.step(np.array([10.0]))
    assert m.backlog[0, i] == 0 and m.e2e_err_rate[0] == 0
    assert m.e2e_p95_ms[0] < p95[-1]


def test_no_ready_pod_fails_requests_immediately():
    sim = BatchedSim(chain_app(), 1, QUIET)
    sim.reset(np.array([[1, 0, 1]]))
    m = sim.step(np.array([5.0]))
    assert m.err_rate[0, sim.index["b"]] == pytest.approx(1.0)
    assert m.e2e_err_rate[0] == pytest.approx(1.0)


def test_identical_seeds_give_identical_trajectories():
    app = load_app_spec("onlineboutique")

    def run(seed):
        sim = BatchedSim(app, 3, SimConfig(), seed=seed)
        sim.reset()
        out = []
        for t in range(20):
            m = sim.step(np.full(3, 50.0 + t), None)
            out.append((m.cpu_m.copy(), m.e2e_p95_ms.copy()))
        return out

    a, b, c = run(7), run(7), run(8)
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
               for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))


def test_batched_copies_are_independent():
    app = load_app_spec("onlineboutique")
    sim = BatchedSim(app, 2, QUIET)
    sim.reset()
    m = sim.step(np.array([10.0, 80.0]))
    one = BatchedSim(app, 1, QUIET)
    one.reset()
    m1 = one.step(np.array([80.0]))
    assert np.allclose(m.e2e_p95_ms[1], m1.e2e_p95_ms[0])
    assert m.e2e_p95_ms[0] < m.e2e_p95_ms[1]

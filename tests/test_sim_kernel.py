"""The compiled kernels compute what the numpy reference computes.

`BatchedSim(backend="numba")` (default) against `backend="numpy"`, the observation kernel
against the numpy observation builder, and the whole Gymnasium env on both, over long
random episodes that pass through every branch of the step: overload with backlog, drops
(timeouts) and total failure, scaling up and down with pods pending, and services removed
and added mid-episode. Both backends draw the same random numbers from the same generator,
so with noise on they must still agree to float rounding.
"""

import subprocess
import sys

import numpy as np
import pytest

from gnnrl.core.envs import OnlineBoutique
from gnnrl.core.envs.obs_extras import BatchedContext
from gnnrl.core.envs.observation import build_observations
from gnnrl.core.envs.vector import BatchedEnvPool
from gnnrl.sim import BatchedSim, Scenario, SimConfig, TopologyEvent, load_app_spec
from gnnrl.sim.onlineboutique import reviewservice
from gnnrl.sim.scenario import universe
from gnnrl.sim.timing import TimingConfig

REL = 1e-9


def assert_close(a, b, what):
    a, b = np.asarray(a, float), np.asarray(b, float)
    np.testing.assert_allclose(b, a, rtol=REL, atol=1e-12, err_msg=what)


def random_episode(backend: str, copies: int, steps: int, config: SimConfig, seed: int):
    """Metrics of a random episode: load from idle to 3x overload, random scaling (to 0
    pods too), a service removed and re-added in some copies, the review service added."""
    base = load_app_spec("onlineboutique")
    review, calls = reviewservice()
    app, inactive = universe(base, [TopologyEvent(step=1, kind="add", service=review,
                                                  calls=tuple(calls))])
    sim = BatchedSim(app, copies, config, seed=seed, inactive=inactive, backend=backend)
    sim.reset()
    rng = np.random.default_rng(seed + 1)
    S = sim.num_services
    some = np.arange(copies) % 2 == 0
    out = []
    for t in range(steps):
        if t == 20:
            sim.set_active("adservice", False, copies=some)
        if t == 35:
            sim.set_active("reviewservice", True)
        if t == 60:
            sim.set_active("adservice", True, copies=some, replicas=1)
        rps = rng.uniform(0.0, 1200.0, copies) * (t % 40 < 30)
        target = None
        if t % 4:
            target = np.clip(sim.replicas + rng.integers(-4, 5, (copies, S)), 0, 14)
        m = sim.step(rps, target)
        out.append((m, sim.ready.copy(), sim.pending.copy(), np.array(sim.backlog)))
    return out, sim


@pytest.mark.parametrize(("copies", "config"), [
    (1, SimConfig()),
    (4, SimConfig()),
    (3, SimConfig(arrival_noise=False, metric_noise=0.0)),
    (2, SimConfig(interval_s=5.0, metric_noise=0.1)),
    (3, SimConfig(timing=TimingConfig.realistic())),  # per-pod start-ups on probe ticks
])
def test_numba_step_equals_numpy_reference_over_long_random_episodes(copies, config):
    ref, ref_sim = random_episode("numpy", copies, 120, config, seed=11)
    got, got_sim = random_episode("numba", copies, 120, config, seed=11)
    seen = {"backlog": False, "drops": False, "pending": False, "inactive": False}
    for t, ((m0, ready0, pend0, bl0), (m1, ready1, pend1, bl1)) in enumerate(
            zip(ref, got, strict=True)):
        for field, value in vars(m0).items():
            assert_close(value, getattr(m1, field), f"step {t}: {field}")
        np.testing.assert_array_equal(ready1, ready0, err_msg=f"step {t}: ready")
        np.testing.assert_array_equal(pend1, pend0, err_msg=f"step {t}: pending")
        assert_close(bl0, bl1, f"step {t}: backlog state")
        seen["backlog"] |= bool(m0.backlog.any())
        seen["drops"] |= bool(m0.err_rate.any())
        seen["pending"] |= bool(pend0.any())
        seen["inactive"] |= not m0.active.all()
    assert all(seen.values()), seen  # the episode went through every branch
    # the same random numbers were consumed: the generators are in the same state
    assert ref_sim.rng.bit_generator.state == got_sim.rng.bit_generator.state


def test_observation_kernel_equals_numpy_builder_bit_for_bit():
    runs, sim = random_episode("numba", 3, 80, SimConfig(), seed=5)
    rng = np.random.default_rng(0)
    S, E = sim.num_services, len(sim.edges)
    slot = np.tile(rng.permutation(20)[:S], (3, 1))
    slot[1, 4] = -1  # a service without a slot
    eslot = np.tile(np.arange(E), (3, 1))
    eslot[2, 3] = -1
    for t, (m, *_) in enumerate(runs):
        ctx = BatchedContext(sim.app.slo_p95_ms, 15.0, np.full(slot.shape[0], 0.5),
                             np.zeros(slot.shape[0]))
        ref = build_observations(m, sim, slot, eslot, 20, 400, backend="numpy", context=ctx)
        got = build_observations(m, sim, slot, eslot, 20, 400, context=ctx)
        for k, v in ref.items():
            assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
            np.testing.assert_array_equal(got[k], v, err_msg=f"step {t}: {k}")


def overload_add_remove() -> Scenario:
    svc, calls = reviewservice()
    return Scenario("add-remove", "flash", 900.0, (
        TopologyEvent(step=5, kind="add", service=svc, calls=tuple(calls)),
        TopologyEvent(step=25, kind="remove", service_name="adservice"),
        TopologyEvent(step=40, kind="remove", service_name="reviewservice")))


def test_env_on_numba_equals_env_on_numpy_reference():
    envs = [OnlineBoutique(scenario=overload_add_remove(), max_steps=60, sim_backend=b)
            for b in ("numpy", "numba")]
    outs = [env.reset(seed=4) for env in envs]
    rng = np.random.default_rng(2)
    invalid_seen = 0
    for t in range(60):
        action = rng.integers(-1, 17, 20)  # out-of-range and masked moves included
        outs = [env.step(action.copy()) for env in envs]
        (obs0, r0, _, tr0, info0), (obs1, r1, _, tr1, info1) = outs
        assert tr0 == tr1
        assert r1 == pytest.approx(r0, rel=REL, abs=1e-12), t
        for k, v in obs0.items():
            np.testing.assert_allclose(obs1[k], v, rtol=1e-6, err_msg=f"step {t}: {k}")
        assert info0.keys() == info1.keys()
        for k, v in info0.items():
            if isinstance(v, np.ndarray | float):
                assert_close(v, info1[k], f"step {t}: info {k}")
            else:
                assert info1[k] == v, (t, k)
        invalid_seen += info0["invalid_actions"]
    assert invalid_seen > 0


def test_a_new_process_loads_the_compiled_kernels_from_the_cache():
    # this process has compiled (or loaded) them by now; a fresh one must not recompile
    # (the single env steps and observes with five kernels, and builds a view with two more
    # when a failure is counted; the batched pool observes with two others)
    env = OnlineBoutique()
    env.reset(seed=0)
    env.step(np.zeros(20, dtype=np.int64))
    BatchedEnvPool(2, run_seed=0).reset()
    code = (
        "import numpy as np\n"
        "from gnnrl.core.envs import OnlineBoutique, obs_kernel\n"
        "from gnnrl.core.envs.vector import BatchedEnvPool\n"
        "from gnnrl.sim import kernel\n"
        "env = OnlineBoutique(); env.reset(seed=0); env.step(np.zeros(20, dtype=np.int64))\n"
        "BatchedEnvPool(2, run_seed=0).reset()\n"
        "used = [kernel.step_kernel, obs_kernel.observe_kernel, obs_kernel.info_rows_kernel,\n"
        "        obs_kernel.apply_moves_kernel, obs_kernel.metrics_observation_kernel,\n"
        "        obs_kernel.unserved_terms_kernel]\n"
        "fns = [*used, obs_kernel.view_kernel, obs_kernel.metrics_view_kernel]\n"
        "print(sum(len(f.stats.cache_misses) for f in fns),"
        " sum(sum(f.stats.cache_hits.values()) for f in used))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    misses, hits = int(out[0]), int(out[1])
    assert misses == 0 and hits >= 6

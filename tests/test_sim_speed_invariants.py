"""Speed work must not change what the simulator and the env compute.

The reference numbers below were produced by the code *before* the performance work
(commit 386192b) and are hardcoded: a fixed-seed episode through the Gymnasium API and a
fixed-seed batched pool run must give the same rewards, end-to-end p95s, errors, cost and
observations up to float rounding. The scenario overloads the application (flash crowd at
600 req/s: backlog, timeouts, errors) and changes the topology twice, so every branch of
the step (scaling, pending pods, overload, drops, added/removed services) is exercised.
"""

import numpy as np
import pytest

from gnnrl.core.envs import OnlineBoutique
from gnnrl.core.envs.obs_extras import BatchedContext
from gnnrl.core.envs.vector import BatchedEnvPool
from gnnrl.sim import Scenario, TopologyEvent
from gnnrl.sim.onlineboutique import reviewservice

REL = 1e-9


def context(sim, copies: int) -> BatchedContext:
    return BatchedContext(sim.app.slo_p95_ms, 15.0, np.full(copies, 0.5), np.zeros(copies))
# Reference values re-recorded once, when added services became Ready on arrival (an
# intentional model change); the speed work before it matched 386192b to 7.8e-16.


def overload_with_topology_changes() -> Scenario:
    svc, calls = reviewservice()
    return Scenario("add-remove", "flash", 600.0, (
        TopologyEvent(step=3, kind="add", service=svc, calls=tuple(calls)),
        TopologyEvent(step=9, kind="remove", service_name="adservice")))


def random_valid_actions(rng: np.random.Generator, masks_valid: np.ndarray) -> np.ndarray:
    return np.where(masks_valid, rng.random(masks_valid.shape), -1).argmax(-1)


def test_fixed_seed_episode_summary_is_unchanged_by_speed_work():
    env = OnlineBoutique(scenario=overload_with_topology_changes(), max_steps=30)
    rng = np.random.default_rng(1)
    env.reset(seed=7)
    rewards, p95, err, cost, obs_sum, v2_sum = [], [], [], [], 0.0, 0.0
    for _ in range(30):
        action = random_valid_actions(rng, env.action_masks().reshape(20, 15))
        obs, r, _, truncated, info = env.step(action)
        rewards.append(r)
        p95.append(info["e2e_p95_ms"])
        err.append(info["error_rate"])
        cost.append(info["cost"])
        obs_sum += float(obs["svc_df"][:, :6].astype(float).sum()
                         + obs["edge_df"].astype(float).sum()
                         + obs["global_feats"][:4].astype(float).sum())
        v2_sum += float(obs["svc_df"][:, 6:].astype(float).sum()
                        + obs["global_feats"][4:].astype(float).sum())
    assert truncated
    assert sum(rewards) == pytest.approx(-72.99568523169967, rel=REL)
    assert sum(p95) == pytest.approx(215484.817594712, rel=REL)
    assert max(p95) == pytest.approx(68278.07672346733, rel=REL)
    assert sum(err) == pytest.approx(2.0079985649792222, rel=REL)
    assert sum(cost) == pytest.approx(282.20000000000005, rel=REL)
    # float32 observations: summed over 30 steps, rounding stays far below 1e-6.
    # Re-recorded once when the observation became what a cluster can observe (TCP-level
    # calls show no request numbers; docs/internals.md, "Observation"): an intentional
    # change of the observation, not of the simulator (every number above is unchanged).
    assert obs_sum == pytest.approx(647552.3001641184, rel=1e-6)
    # the columns observation schema v2 appended (recorded when they were added)
    assert v2_sum == pytest.approx(128559.27817884891, rel=1e-6)


def test_fixed_seed_batched_pool_summary_is_unchanged_by_speed_work():
    pool = BatchedEnvPool(3, run_seed=2, max_steps=10, scenarios=[
        overload_with_topology_changes(), Scenario("d", "diurnal", 150.0)])
    pool.reset()
    rng = np.random.default_rng(5)
    total_reward, total_p95 = 0.0, 0.0
    for _ in range(25):  # crosses two episode boundaries (auto-reset)
        valid = pool.obs["invalid_action_mask"].reshape(3, 20, 15) == 0
        step = pool.step(random_valid_actions(rng, valid))
        total_reward += float(step.rewards.sum())
        total_p95 += sum(i["e2e_p95_ms"] for i in step.infos)
    assert total_reward == pytest.approx(-167.43477500262563, rel=REL)
    assert total_p95 == pytest.approx(376673.21969909663, rel=REL)


@pytest.mark.parametrize("copies", [1, 3])
def test_step_results_are_not_changed_by_later_steps(copies):
    """Scratch buffers are reused inside the simulator; what it returns must never be one."""
    from gnnrl.core.envs.observation import build_observations
    from gnnrl.sim import BatchedSim, load_app_spec

    sim = BatchedSim(load_app_spec("onlineboutique"), copies, seed=0)
    sim.reset()
    slot = np.tile(np.arange(sim.num_services), (copies, 1))
    eslot = np.tile(np.arange(len(sim.edges)), (copies, 1))
    overload = np.full(copies, 900.0)  # backlog, drops and errors: every branch runs
    sim.step(overload, sim.replicas + 2)  # pending pods
    kept = sim.step(overload)
    kept_obs = build_observations(kept, sim, slot, eslot, 20, 400, context=context(sim, copies))
    frozen = {k: v.copy() for k, v in vars(kept).items()}
    frozen_obs = {k: v.copy() for k, v in kept_obs.items()}
    assert frozen["backlog"].any() and frozen["err_rate"].any()
    sim.reset()  # zeroes the state in place
    for rps in (10.0, 900.0, 50.0):
        m = sim.step(np.full(copies, rps), sim.replicas + 1)
        build_observations(m, sim, slot, eslot, 20, 400, context=context(sim, copies))
    sim.set_active("adservice", False)
    sim.step(np.full(copies, 10.0))
    for k, v in frozen.items():
        np.testing.assert_array_equal(getattr(kept, k), v, err_msg=k)
    for k, v in frozen_obs.items():
        np.testing.assert_array_equal(kept_obs[k], v, err_msg=k)


def test_env_observations_and_infos_are_not_changed_by_later_steps():
    """The env caches topology-dependent arrays; what it returns must be the caller's."""
    env = OnlineBoutique(scenario=overload_with_topology_changes(), max_steps=12)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    obs, _, _, _, info = env.step(random_valid_actions(rng, env.action_masks().reshape(20, 15)))
    frozen_obs = {k: np.array(v, copy=True) for k, v in obs.items()}
    frozen_info = {k: np.array(v, copy=True) for k, v in info.items()
                   if isinstance(v, np.ndarray)}
    for _ in range(11):  # crosses both topology events
        env.step(random_valid_actions(rng, env.action_masks().reshape(20, 15)))
    env.reset(seed=4)
    for k, v in frozen_obs.items():
        np.testing.assert_array_equal(obs[k], v, err_msg=k)
    for k, v in frozen_info.items():
        np.testing.assert_array_equal(info[k], v, err_msg=k)

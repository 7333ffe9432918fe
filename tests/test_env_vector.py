"""The batched pool runs the same model as the Gymnasium env, B copies at once."""

import numpy as np
import pytest

from gnnrl.core.envs import OnlineBoutique
from gnnrl.core.envs.vector import BatchedEnvPool, _episode_seed
from gnnrl.sim import Scenario, SimConfig, TopologyEvent
from gnnrl.sim.onlineboutique import reviewservice

QUIET = SimConfig(arrival_noise=False, metric_noise=0.0)


def scenarios():
    svc, calls = reviewservice()
    return [Scenario("flash", "flash", 120.0),
            Scenario("diurnal-add", "diurnal", 90.0,
                     (TopologyEvent(step=4, kind="add", service=svc, calls=tuple(calls)),)),
            Scenario("ramp-remove", "ramp", 110.0,
                     (TopologyEvent(step=3, kind="remove", service_name="adservice"),))]


def test_batched_pool_matches_single_envs_step_for_step():
    pool = BatchedEnvPool(4, run_seed=3, scenarios=scenarios(), max_steps=8, sim_config=QUIET)
    envs = [OnlineBoutique(scenario=scenarios(), max_steps=8, sim_config=QUIET)
            for _ in range(4)]
    obs, infos = pool.reset()
    singles = [env.reset(seed=_episode_seed(3, i, 0)) for i, env in enumerate(envs)]
    rng = np.random.default_rng(0)
    for _ in range(7):
        for i, (o, info) in enumerate(singles):
            assert infos[i]["slot_names"] == info["slot_names"]
            for k in ("svc_df", "edge_df", "invalid_action_mask", "global_feats"):
                np.testing.assert_allclose(obs[k][i], o[k], rtol=1e-5, atol=1e-4, err_msg=k)
        valid = pool.obs["invalid_action_mask"].reshape(4, 20, 15) == 0
        actions = np.where(valid, rng.random(valid.shape), -1).argmax(-1)
        step = pool.step(actions)
        singles = []
        for i, env in enumerate(envs):
            o, r, _, _, info = env.step(actions[i])
            assert step.rewards[i] == pytest.approx(r, rel=1e-6)
            assert info["topology_events"] == step.infos[i]["topology_events"]
            singles.append((o, info))
        obs, infos = step.obs, step.infos


def test_batched_pool_resets_finished_episodes_and_returns_final_obs():
    pool = BatchedEnvPool(3, run_seed=0, max_steps=2)
    pool.reset()
    noop = np.zeros((3, 20), np.int64)
    assert not pool.step(noop).truncated.any()
    step = pool.step(noop)
    assert step.truncated.all() and all(f is not None for f in step.final_obs)
    assert pool.all_at_episode_start()
    assert (pool.episodes == 2).all()

"""A policy evaluated behind the scaler's guard behaves as `gnnrl scaler` would deploy it."""

from __future__ import annotations

import numpy as np

from gnnrl.core.envs import OnlineBoutique
from gnnrl.baselines.guarded import GuardedPolicy
from gnnrl.evaluation.policies import make_policy
from gnnrl.hpa.model_guard import ModelGuardConfig
from gnnrl.scaler.config import ScalerConfig
from gnnrl.sim import SimConfig


class Flapper:
    """Adds one pod to every service on even steps and removes one on odd steps."""

    name = "flapper"

    def reset(self, env):
        self.t = 0

    def act(self, obs, info):
        self.t += 1
        return np.full(len(info["slot_names"]), 1 if self.t % 2 else 8, dtype=np.int64)


def _run(policy, steps=24):
    env = OnlineBoutique(trace=np.full(steps + 1, 100.0), max_steps=steps,
                         sim_config=SimConfig(arrival_noise=False, metric_noise=0.0))
    obs, info = env.reset(seed=1000)
    policy.reset(env)
    slot = info["slot_names"].index("frontend")
    pods = [int(info["replicas"][slot])]
    for _ in range(steps):
        obs, _, _, trunc, info = env.step(policy.act(obs, info))
        pods.append(int(info["replicas"][slot]))
        if trunc:
            break
    return np.array(pods)


def test_a_flapping_policy_does_not_flap_behind_the_guard():
    bare = _run(Flapper())
    assert (np.diff(bare) < 0).sum() >= 10  # +1, -1, +1, -1 ...
    hpa = ScalerConfig.from_dict({"scale_down_window_s": 300.0}).hpa
    guarded = _run(GuardedPolicy(Flapper(), hpa, model_guard=ModelGuardConfig.hpa_only()))
    assert (np.diff(guarded) < 0).sum() == 0  # every drop is inside the 300 s window
    assert guarded[-1] == guarded.max()
    deployed = _run(GuardedPolicy(Flapper()))  # the model's guard: every drop is delayed
    assert (np.diff(deployed) < 0).sum() == 0


def test_the_window_lets_a_sustained_drop_through():
    class Shrinker(Flapper):
        def act(self, obs, info):
            return np.full(len(info["slot_names"]), 8, dtype=np.int64)  # always -1

    cfg = ScalerConfig.from_dict({"scale_down_window_s": 60.0})
    pods = _run(GuardedPolicy(Shrinker(), cfg.hpa, model_guard=ModelGuardConfig.hpa_only()),
                steps=12)
    assert pods[-1] < pods[0]
    # the first recommendation seeds the window: nothing drops during the first 60 s
    assert (pods[:4] == pods[0]).all()
    # the model's guard has its own window, whatever the HPA object's: 300 s by default
    deployed = _run(GuardedPolicy(Shrinker(), cfg.hpa), steps=24)
    assert (deployed[:20] == deployed[0]).all() and deployed[-1] < deployed[0]
    shorter = _run(GuardedPolicy(Shrinker(), cfg.hpa,
                                 model_guard=ModelGuardConfig(scale_down_window_s=120.0)),
                   steps=12)
    assert (shorter[:8] == shorter[0]).all() and shorter[-1] < shorter[0]


def test_gnnrl_spec_is_the_deployed_path_and_raw_is_the_bare_model():
    deployed = make_policy("gnnrl")
    raw = make_policy("gnnrl-raw")
    assert isinstance(deployed, GuardedPolicy) and deployed.name == "gnnrl"
    # the scaler's defaults: what `gnnrl scaler` runs without a config file
    assert ((deployed.hpa, deployed.model_guard, deployed.max_step)
            == (ScalerConfig().hpa, ScalerConfig().model_guard, ScalerConfig().max_step))
    assert not isinstance(raw, GuardedPolicy) and raw.name == "gnnrl-raw"

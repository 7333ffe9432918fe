"""PPO pieces: GAE (hand-computed, incl. truncation), reward scaling, the update trains the GRU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrl.core.agents.configs import PolicyConfig, PPOConfig
from gnnrl.core.agents.ppo import (
    Batch,
    RewardNormalizer,
    TrainingNaNError,
    compute_gae,
    explained_variance,
    ppo_update,
)
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.encoders.graph_batch import obs_to_tensors
from gnnrl.testing.observation import make_observation, stack_observations

# rewards [1, 2, 3], values [0.5, 1, 1.5], V(after last step) = 2, gamma = lambda = 0.5.
# The episode ends at step 1; on truncation V(final obs) = 4 is bootstrapped.
#   truncated:  d2 = 3 + .5*2 - 1.5 = 2.5; r1' = 2 + .5*4 = 4, d1 = 4 - 1 = 3 (no carry);
#               d0 = 1 + .5*1 - .5 = 1, A0 = 1 + .25*3 = 1.75
#   terminated: d1 = 2 - 1 = 1, A0 = 1 + .25*1 = 1.25
#   neither:    d1 = 2 + .5*1.5 - 1 = 1.75, A1 = 1.75 + .25*2.5 = 2.375, A0 = 1 + .25*2.375
GAE_CASES = [
    ("truncated", [0, 1, 0], [0, 0, 0], [1.75, 3.0, 2.5]),
    ("terminated", [0, 0, 0], [0, 1, 0], [1.25, 1.0, 2.5]),
    ("continuing", [0, 0, 0], [0, 0, 0], [1.59375, 2.375, 2.5]),
]


@pytest.mark.parametrize(("name", "trunc", "term", "expected"), GAE_CASES)
def test_gae_matches_hand_computed_advantages(name, trunc, term, expected):
    col = lambda xs: np.asarray(xs, np.float32)[:, None]  # noqa: E731
    final_values = col([0.0, 4.0, 0.0])
    adv, ret = compute_gae(col([1, 2, 3]), col([0.5, 1.0, 1.5]), col(term).astype(bool),
                           col(trunc).astype(bool), final_values, np.array([2.0]),
                           gamma=0.5, gae_lambda=0.5)
    np.testing.assert_allclose(adv[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], np.add(expected, [0.5, 1.0, 1.5]), rtol=1e-6)


def test_gae_keeps_envs_independent():
    rewards = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    zeros = np.zeros((2, 2), np.float32)
    done = np.zeros((2, 2), bool)
    adv, _ = compute_gae(rewards, zeros, done, done, zeros, np.zeros(2), 0.9, 1.0)
    assert adv[:, 1].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(adv[:, 0], [1.9, 1.0])


def test_reward_normalizer_scales_by_return_std_and_resets_on_done():
    norm = RewardNormalizer(num_envs=2, gamma=0.99)
    rng = np.random.default_rng(0)
    out = [norm(rng.normal(-5.0, 1.0, 2), np.zeros(2)) for _ in range(2000)]
    # scaled by the std of the discounted return (~5/(1-0.99) in mean, large std) not mean
    assert 0.0 < np.abs(np.asarray(out[-100:])).mean() < 1.0
    norm(np.ones(2), np.array([1.0, 0.0]))
    assert norm.returns[0] == 0.0 and norm.returns[1] != 0.0
    clone = RewardNormalizer(2, 0.99)
    clone.load_state_dict(norm.state_dict())
    assert clone.var == norm.var and np.array_equal(clone.returns, norm.returns)


def test_explained_variance_of_perfect_and_useless_predictions():
    y = np.array([1.0, 2.0, 3.0])
    assert explained_variance(y, y) == 1.0
    assert explained_variance(np.full(3, 2.0), y) == 0.0


def _batch(model: PPO_GNN, n: int = 16) -> Batch:
    rng = np.random.default_rng(0)
    obs = []
    for _ in range(n):
        nodes = rng.uniform(1, 200, (3, 6))
        edges = [(0, 1, *rng.uniform(1, 50, 2), 0.0, 1.0), (1, 2, *rng.uniform(1, 50, 2), 0.0, 1.0)]
        obs.append(make_observation(nodes, edges, max_nodes=4, max_edges=4))
    t, _ = obs_to_tensors(stack_observations(obs))
    d = model.config.tgn.memory_dim
    memory = (torch.randn(n, 4, d) * 0.5, torch.zeros(n, 4), torch.full((n,), 3.0))
    actions, logp, value, _ = model.sample(t, memory)
    return Batch(t, memory, actions, logp, value, torch.randn(n), torch.randn(n))


def test_ppo_update_trains_the_tgn_gru():
    torch.manual_seed(0)
    model = PPO_GNN(config=PolicyConfig(max_nodes=4, max_edges=4, hidden_dim=16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gru = model.tgn.memory.gru
    before = gru.weight_ih.detach().clone()
    cfg = PPOConfig(num_envs=4, num_steps=4, num_minibatches=1, update_epochs=1)
    stats = ppo_update(model, opt, _batch(model), cfg, torch.Generator().manual_seed(0))
    assert gru.weight_ih.grad is not None and gru.weight_ih.grad.abs().sum() > 0
    assert model.tgn.memory.time_enc.lin.weight.grad.abs().sum() > 0
    assert not torch.equal(before, gru.weight_ih.detach())
    assert set(stats) >= {"approx_kl", "clip_frac", "explained_variance", "entropy"}


def test_ppo_update_stops_on_a_non_finite_loss():
    torch.manual_seed(0)
    model = PPO_GNN(config=PolicyConfig(max_nodes=4, max_edges=4, hidden_dim=16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = _batch(model)
    batch.advantages[3] = float("nan")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = PPOConfig(num_envs=4, num_steps=4, num_minibatches=1, update_epochs=1)
    with pytest.raises(TrainingNaNError, match="non-finite PPO loss"):
        ppo_update(model, opt, batch, cfg, torch.Generator().manual_seed(0))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing stepped

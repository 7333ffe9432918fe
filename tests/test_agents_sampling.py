"""PPO_GNN.sample draws from the masked categorical distribution of its logits."""

from __future__ import annotations

import pytest
import torch

from gnnrl.config import ConfigError
from gnnrl.core.agents.configs import PolicyConfig
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.encoders.graph_batch import obs_to_tensors
from gnnrl.testing.observation import make_observation, stack_observations

NODES = [[2, 3, 150, 100, 50, 80], [1, 1, 40, 60, 30, 0], [3, 2, 200, 120, 80, 40]]
EDGES = [(0, 1, 30, 20, 0.0, 1.0), (0, 2, 50, 40, 0.01, 1.0)]


def test_sampled_moves_are_the_categorical_draws_of_the_masked_logits():
    torch.manual_seed(0)
    model = PPO_GNN(config=PolicyConfig(max_nodes=5, max_edges=4, hidden_dim=16)).eval()
    torch.nn.init.zeros_(model.head.actor[-1].weight)  # the move prior alone: spread moves
    obs = stack_observations([make_observation(NODES, EDGES, max_nodes=5, max_edges=4)] * 64)
    t, _ = obs_to_tensors(obs)
    with torch.no_grad():
        logits, _, _ = model(t, None)
    torch.manual_seed(7)
    actions, logp, _, _ = model.sample(t, None)
    torch.manual_seed(7)
    expected = torch.distributions.Categorical(logits=logits).sample()
    expected[:, 3:] = 0  # padded slots hold
    assert torch.equal(actions, expected)
    assert len(set(actions[:, 0].tolist())) > 3  # genuinely random moves
    lp = torch.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(logp, lp[:, :3].sum(-1))


def test_a_sampling_temperature_below_one_sharpens_the_draws_and_the_update_scores_them():
    """PPO at ``sample_temperature`` T samples from softmax(logits / T) and its update
    evaluates the same distribution (a ratio of 1 before any step); a low T draws the
    served (arg-max) move far more often."""
    from gnnrl.core.agents.configs import PPOConfig

    torch.manual_seed(0)
    model = PPO_GNN(config=PolicyConfig(max_nodes=5, max_edges=4, hidden_dim=16)).eval()
    obs = stack_observations([make_observation(NODES, EDGES, max_nodes=5, max_edges=4)] * 256)
    t, _ = obs_to_tensors(obs)
    with torch.no_grad():
        logits, _, _ = model(t, None)
    served = logits.argmax(-1)[:, :3]
    agree = {}
    for temp in (1.0, 0.25):
        torch.manual_seed(7)
        actions, logp, _, _ = model.sample(t, None, temperature=temp)
        agree[temp] = float((actions[:, :3] == served).float().mean())
        lp = torch.log_softmax(logits / temp, -1).gather(-1, actions.unsqueeze(-1))
        torch.testing.assert_close(logp, lp.squeeze(-1)[:, :3].sum(-1))
        with torch.no_grad():
            again, _, _ = model.evaluate_update(model.prepare_update(t, None, actions), temp)
        torch.testing.assert_close(again, logp, rtol=1e-5, atol=1e-4)
    assert agree[0.25] > agree[1.0] + 0.1, agree
    for bad in (0.0, -1.0):
        with pytest.raises(ConfigError, match="sample_temperature"):
            PPOConfig(sample_temperature=bad)


def test_served_margins_make_the_training_draws_follow_the_served_decision():
    """With ``served_margins`` PPO samples (and its update scores) the distribution whose
    mode is the *served* decision: the hold margins come off the logits of additions and
    removals. Borderline moves the served policy would hold are drawn far less often, the
    log-probs of the draws are the update's, and the flag is checked."""
    from gnnrl.core.agents.configs import PPOConfig
    from gnnrl.contracts.moves import MAX_STEP

    torch.manual_seed(0)
    config = PolicyConfig(max_nodes=5, max_edges=4, hidden_dim=16, hold_margin=1.0,
                          hold_margin_down=2.5)
    model = PPO_GNN(config=config).eval()
    torch.nn.init.zeros_(model.head.actor[-1].weight)  # spread moves: many borderline ones
    obs = stack_observations([make_observation(NODES, EDGES, max_nodes=5, max_edges=4)] * 512)
    t, _ = obs_to_tensors(obs)
    with torch.no_grad():
        logits, _, _ = model(t, None)
    shifted = model.sampling_logits(logits, served=True)
    torch.testing.assert_close(shifted[..., 0], logits[..., 0])
    torch.testing.assert_close(shifted[..., 1:MAX_STEP + 1], logits[..., 1:MAX_STEP + 1] - 1.0)
    torch.testing.assert_close(shifted[..., MAX_STEP + 1:], logits[..., MAX_STEP + 1:] - 2.5)
    holds = {}
    for served in (False, True):
        torch.manual_seed(3)
        actions, logp, _, _ = model.sample(t, None, served=served)
        holds[served] = float((actions[:, :3] == 0).float().mean())
        with torch.no_grad():
            again, _, _ = model.evaluate_update(model.prepare_update(t, None, actions), 1.0,
                                                served)
        torch.testing.assert_close(again, logp, rtol=1e-5, atol=1e-4)
    assert holds[True] > holds[False] + 0.1, holds
    # with one margin for both directions the mode is exactly the served decision
    symmetric = PPO_GNN(config=PolicyConfig(max_nodes=5, max_edges=4, hidden_dim=16,
                                            hold_margin=1.5)).eval()
    noisy = torch.randn(256, 5, 15) * 2.0
    mask = torch.ones(256, 5, dtype=torch.bool)
    assert torch.equal(symmetric.sampling_logits(noisy, 0.5, served=True).argmax(-1),
                       symmetric.decide(noisy, mask))
    assert not torch.equal(noisy.argmax(-1), symmetric.decide(noisy, mask))
    with pytest.raises(ConfigError, match="served_margins"):
        PPOConfig(served_margins="yes")  # type: ignore[arg-type]

"""GNNEncoder / batching on tiny hand-built graphs: equivariance, padding, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrl.core.agents.configs import PolicyConfig
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.encoders.graph_batch import build_graph_batch, masked_pool, obs_to_tensors
from gnnrl.testing.observation import make_observation, stack_observations

NODES = [
    [2, 3, 150, 100, 50, 80],
    [1, 1, 40, 60, 30, 0],
    [3, 2, 200, 120, 80, 40],
    [1, 2, 90, 30, 5, 0],
]
EDGES = [(0, 1, 30, 20, 0.0, 1.0), (0, 2, 50, 40, 0.01, 1.0), (2, 3, 5, 10, 0.0, 0.5)]


def _model(use_tgn: bool) -> PPO_GNN:
    torch.manual_seed(0)
    cfg = PolicyConfig(max_nodes=6, max_edges=8, hidden_dim=16)
    model = PPO_GNN(use_tgn=use_tgn, config=cfg)
    # Make the head's output large enough that differences would be visible.
    torch.nn.init.normal_(model.head.actor[-1].weight, std=1.0)
    return model.eval()


def _probs(model: PPO_GNN, obs, memory=None):
    t, _ = obs_to_tensors(obs)
    logits, value, new_memory = model(t, memory)
    return torch.softmax(logits, -1)[0], value[0], new_memory


@pytest.mark.parametrize("use_tgn", [False, True])
def test_relabelling_services_permutes_action_probabilities(use_tgn):
    model = _model(use_tgn)
    slots = [0, 1, 2, 3]
    perm = [4, 0, 5, 2]  # service i -> slot perm[i]
    obs_a = make_observation(NODES, EDGES, slots=slots, max_nodes=6, max_edges=8)
    obs_b = make_observation(NODES, list(reversed(EDGES)), slots=perm, max_nodes=6, max_edges=8)
    with torch.no_grad():
        pa, va, ma = _probs(model, obs_a)
        pb, vb, mb = _probs(model, obs_b)
        torch.testing.assert_close(pa[slots], pb[perm], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(va, vb, atol=1e-5, rtol=1e-4)
        if use_tgn:  # a second step runs through the (permuted) memory
            t_a = (ma[0], ma[1], torch.full((1,), 2.0))
            t_b = (mb[0], mb[1], torch.full((1,), 2.0))
            pa2, _, _ = _probs(model, obs_a, t_a)
            pb2, _, _ = _probs(model, obs_b, t_b)
            torch.testing.assert_close(pa2[slots], pb2[perm], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("use_tgn", [False, True])
def test_padded_nodes_do_not_influence_active_ones(use_tgn):
    model = _model(use_tgn)
    clean = make_observation(NODES, EDGES, max_nodes=6, max_edges=8)
    dirty = {k: np.array(v, copy=True) for k, v in clean.items()}
    dirty["svc_df"][4:] = 1e4  # garbage in padded slots 4, 5
    # a padded edge row pointing into an active node, and one from a padded slot
    dirty["edge_df"][5] = [4, 0, 1.0, 1e4, 1e3, 0.9, 0.0]
    dirty["edge_df"][6] = [5, 1, 1.0, 1e4, 1e3, 0.9, 0.0]
    dirty["edge_mask"][6] = 1  # marked active, but its source slot is not
    with torch.no_grad():
        p_clean, v_clean, _ = _probs(model, clean)
        p_dirty, v_dirty, _ = _probs(model, dirty)
    torch.testing.assert_close(p_clean[:4], p_dirty[:4])
    torch.testing.assert_close(v_clean, v_dirty)


def test_padded_slots_may_only_do_nothing():
    model = _model(True)
    obs = make_observation(NODES, EDGES, max_nodes=6, max_edges=8)
    with torch.no_grad():
        p, _, _ = _probs(model, obs)
    assert torch.equal(p[4:, 0], torch.ones(2))


def test_batched_forward_equals_one_observation_at_a_time():
    model = _model(True)
    obs = [
        make_observation(NODES, EDGES, max_nodes=6, max_edges=8),
        make_observation(NODES[:2], EDGES[:1], slots=[3, 1], max_nodes=6, max_edges=8),
        make_observation(NODES[::-1], [], max_nodes=6, max_edges=8),
    ]
    with torch.no_grad():
        batch, _ = obs_to_tensors(stack_observations(obs))
        logits_b, value_b, _ = model(batch, None)
        for i, o in enumerate(obs):
            t, _ = obs_to_tensors(o)
            logits, value, _ = model(t, None)
            torch.testing.assert_close(logits_b[i], logits[0], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(value_b[i], value[0], atol=1e-5, rtol=1e-4)


def test_graph_batch_offsets_each_observation_by_max_nodes():
    obs = stack_observations([
        make_observation(NODES, EDGES, max_nodes=6, max_edges=8),
        make_observation(NODES[:2], EDGES[:1], slots=[3, 1], max_nodes=6, max_edges=8),
    ])
    t, _ = obs_to_tensors(obs)
    g = build_graph_batch(t["edge_df"], t["edge_mask"], t["node_mask"], reverse=False)
    assert g.num_nodes == 12
    assert g.edge_index.tolist() == [[0, 0, 2, 9], [1, 2, 3, 7]]
    assert g.edge_rows.tolist() == [0, 1, 2, 8]


def test_masked_pool_ignores_padded_rows():
    h = torch.tensor([[[1.0, -1.0], [3.0, 5.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert masked_pool(h, mask).tolist() == [[2.0, 2.0, 3.0, 5.0]]

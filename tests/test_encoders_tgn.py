"""DynamicTGNEncoder: PyG TGNMemory math, remapping by name, resets, per-env memory."""

from __future__ import annotations

import torch

from gnnrl.core.agents.configs import PolicyConfig
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.encoders.graph_batch import build_graph_batch, obs_to_tensors
from gnnrl.testing.observation import make_observation, stack_observations
from gnnrl.encoders.tgn_encoder import RAW_MSG_DIM, DynamicTGNEncoder, MemoryBank

NODES = [[2, 3, 150, 100, 50, 80], [1, 1, 40, 60, 30, 0],
         [3, 2, 200, 120, 80, 40], [1, 2, 90, 30, 5, 0]]


def _graph(edges, max_nodes=4):
    obs = make_observation(NODES, edges, max_nodes=max_nodes, max_edges=6)
    t, _ = obs_to_tensors(obs)
    g = build_graph_batch(t["edge_df"], t["edge_mask"], t["node_mask"])
    attr = torch.randn(g.edge_rows.numel(), RAW_MSG_DIM + 1)
    attr[:, RAW_MSG_DIM] = g.forward
    half = g.edge_rows.numel() // 2
    attr[half:, :RAW_MSG_DIM] = attr[:half, :RAW_MSG_DIM]  # reverse edges: same raw row
    return g, attr


def test_functional_memory_update_matches_pyg_tgn_memory():
    torch.manual_seed(0)
    enc = DynamicTGNEncoder(max_nodes=4, hidden_dim=8, memory_dim=6, time_dim=4)
    ref = enc.memory
    ref.eval()
    ref.reset_state()
    mem = torch.zeros(1, 4, 6)
    last = torch.zeros(1, 4)
    # one event per node per step, so PyG's LastAggregator has no tie to break
    for step, edges in ((1, [(0, 1, 5, 1, 0, 1), (2, 3, 7, 1, 0, 1)]),
                        (3, [(1, 2, 9, 1, 0, 1)])):
        g, attr = _graph(edges)
        fwd = g.forward > 0.5
        with torch.no_grad():
            mem, last = enc.memory_update(mem, last, torch.tensor([float(step)]), g, attr)
            ref.update_state(g.edge_index[0, fwd], g.edge_index[1, fwd],
                             torch.full((int(fwd.sum()),), step, dtype=torch.long),
                             attr[fwd, :RAW_MSG_DIM])
        torch.testing.assert_close(mem[0], ref.memory, atol=1e-6, rtol=1e-5)
        assert last[0].tolist() == ref.last_update.float().tolist()
    assert last[0].tolist() == [1.0, 3.0, 3.0, 1.0]  # node 0 and 3 kept step-1 time


def test_memory_of_surviving_services_survives_remap_and_new_ones_start_at_zero():
    bank = MemoryBank(num_envs=2, max_nodes=4, memory_dim=3)
    bank.update_node_mapping(["a", "b", "c", None], env=1)
    bank.memory[1] = torch.arange(12.0).reshape(4, 3) + 1
    bank.last_update[1] = torch.tensor([5.0, 6.0, 7.0, 0.0])
    before_env0 = bank.memory[0].clone()
    # "b" removed, "c" moves to slot 0, "a" stays, "d" is new in slot 2
    bank.update_node_mapping(["c", "a", "d", None], env=1)
    assert bank.memory[1, 0].tolist() == [7.0, 8.0, 9.0]
    assert bank.memory[1, 1].tolist() == [1.0, 2.0, 3.0]
    assert bank.memory[1, 2].tolist() == [0.0, 0.0, 0.0]
    assert bank.last_update[1].tolist() == [7.0, 5.0, 0.0, 0.0]
    assert torch.equal(bank.memory[0], before_env0)  # other envs untouched


def test_memory_resets_at_episode_start_for_that_env_only():
    bank = MemoryBank(num_envs=2, max_nodes=2, memory_dim=2)
    bank.memory += 1.0
    bank.t += 4.0
    bank.reset([0])
    assert bank.memory[0].abs().sum() == 0 and bank.t[0] == 0
    assert bank.memory[1].abs().sum() == 4 and bank.t[1] == 4


def test_each_vectorised_env_keeps_its_own_memory():
    torch.manual_seed(1)
    model = PPO_GNN(config=PolicyConfig(max_nodes=4, max_edges=6, hidden_dim=8)).eval()
    busy = make_observation(NODES, [(0, 1, 50, 10, 0, 1), (2, 3, 70, 10, 0, 1)],
                            max_nodes=4, max_edges=6)
    quiet = make_observation(NODES, [], max_nodes=4, max_edges=6)
    model.act(stack_observations([busy, quiet]))
    bank = model._bank
    assert bank.memory[0].abs().sum() > 0  # events updated env 0's memory
    assert bank.memory[1].abs().sum() == 0  # no events, env 1's memory untouched
    assert bank.t.tolist() == [1.0, 1.0]


def test_a_slot_that_empties_forgets_its_service():
    torch.manual_seed(2)
    model = PPO_GNN(config=PolicyConfig(max_nodes=4, max_edges=6, hidden_dim=8)).eval()
    obs = make_observation(NODES, [(0, 1, 50, 10, 0, 1), (2, 3, 70, 10, 0, 1)],
                           max_nodes=4, max_edges=6)
    model.act(obs)
    assert model._bank.memory[0, 3].abs().sum() > 0
    gone = make_observation(NODES[:3], [(0, 1, 50, 10, 0, 1)], max_nodes=4, max_edges=6)
    model.act(gone)
    assert model._bank.memory[0, 3].abs().sum() == 0
    assert model._bank.last_update[0, 3] == 0

"""Dense message passing equals PyG's sparse TransformerConv / the functional TGN update.

Random padded graphs with call cycles (a -> b and b -> a), self-calls, padded slots, stale
edge rows pointing at padded slots and inactive rows; values and gradients.
"""

from __future__ import annotations

import pytest
import torch

from gnnrl.contracts.observation import GLOBAL_DIM_RAW, NODE_DIM_RAW
from gnnrl.encoders.dense_graph import (
    build_dense_graph,
    dense_transformer_conv,
    message_edge_attr,
    select_active_slots,
)
from gnnrl.encoders.features import EDGE_DIM
from gnnrl.encoders.graph_batch import build_graph_batch
from gnnrl.encoders.tgn_encoder import RAW_MSG_DIM, DynamicTGNEncoder
from torch_geometric.nn import TransformerConv

N, E = 7, 12


def _random_batch(seed: int, b: int = 5):
    g = torch.Generator().manual_seed(seed)
    node_mask = torch.rand(b, N, generator=g) < 0.7
    node_mask[0] = False  # one empty observation
    node_mask[1] = True  # and a full one
    edge_df = torch.zeros(b, E, 7)
    edge_df[..., 0] = torch.randint(0, N, (b, E), generator=g).float()
    edge_df[..., 1] = torch.randint(0, N, (b, E), generator=g).float()
    edge_df[1, 0, :2] = torch.tensor([2.0, 2.0])  # self-call
    edge_df[1, 1, :2] = torch.tensor([3.0, 4.0])  # a cycle 3 <-> 4
    edge_df[1, 2, :2] = torch.tensor([4.0, 3.0])
    edge_df[..., 2:] = torch.rand(b, E, 5, generator=g)
    edge_df[1, :3, 3] = 0.5  # equal traffic: the TGN tie-break decides
    edge_mask = torch.rand(b, E, generator=g) < 0.6
    edge_mask[1, :3] = True
    edge_mask[:, -1] = False  # a row no observation uses
    return edge_df, edge_mask, node_mask


def _sparse_attr(edge_df, graph, feats):
    """Edge attributes in the order of build_graph_batch (forward edges, then reverses)."""
    flat = feats.reshape(-1, feats.shape[-1])[graph.edge_rows]
    return torch.cat([flat, graph.forward.unsqueeze(-1)], -1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("compact", [False, True])
def test_dense_transformer_conv_equals_pyg_values_and_gradients(seed, compact):
    torch.manual_seed(seed)
    edge_df, edge_mask, node_mask = _random_batch(seed)
    b = edge_df.shape[0]
    conv = TransformerConv(5, 4, heads=2, edge_dim=EDGE_DIM)
    x = torch.randn(b, N, 5, requires_grad=True)
    feats = torch.randn(b, E, EDGE_DIM - 1)
    sparse = build_graph_batch(edge_df, edge_mask, node_mask)
    ref = conv(x.reshape(b * N, 5), sparse.edge_index, _sparse_attr(edge_df, sparse, feats))
    ref = ref.reshape(b, N, -1) * node_mask.unsqueeze(-1)
    slots = select_active_slots(node_mask) if compact else None
    dense = build_dense_graph(edge_df, edge_mask, node_mask, slots)
    xin = x if slots is None else slots.take(x)
    got = dense_transformer_conv(conv, xin, dense, message_edge_attr(feats[:, dense.rows]))
    if slots is not None:
        got = slots.put(got, torch.zeros(b, N, got.shape[-1]))
    got = got * node_mask.unsqueeze(-1)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(ref)
    grads_ref = torch.autograd.grad((ref * weights).sum(), [x, *conv.parameters()])
    grads_got = torch.autograd.grad((got * weights).sum(), [x, *conv.parameters()])
    for a, c in zip(grads_got, grads_ref, strict=True):
        torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("seed", [0, 3])
def test_dense_memory_update_equals_the_functional_tgn_update(seed):
    torch.manual_seed(seed)
    edge_df, edge_mask, node_mask = _random_batch(seed)
    b = edge_df.shape[0]
    enc = DynamicTGNEncoder(max_nodes=N, hidden_dim=8, memory_dim=6, time_dim=4)
    memory = torch.randn(b, N, 6, requires_grad=True)
    last = torch.randint(0, 3, (b, N)).float()
    t = torch.full((b,), 4.0)
    feats = torch.randn(b, E, RAW_MSG_DIM)
    feats[1, :3, 1] = 0.7  # equal traffic on the self-call and the cycle
    sparse = build_graph_batch(edge_df, edge_mask, node_mask)
    ref_mem, ref_last = enc.memory_update(memory, last, t, sparse,
                                          _sparse_attr(edge_df, sparse, feats))
    dense = build_dense_graph(edge_df, edge_mask, node_mask)
    got_mem, got_last = enc.memory_update_dense(memory, last, t, dense, feats[:, dense.rows])
    torch.testing.assert_close(got_mem, ref_mem, atol=1e-6, rtol=1e-5)
    assert torch.equal(got_last, ref_last)
    assert (got_last[1] == 4.0).any() and (got_last[0] == last[0]).all()  # events / none
    g_ref = torch.autograd.grad(ref_mem.square().sum(), [memory, *enc.memory.gru.parameters()])
    g_got = torch.autograd.grad(got_mem.square().sum(), [memory, *enc.memory.gru.parameters()])
    for a, c in zip(g_got, g_ref, strict=True):
        torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-4)


def test_active_slots_come_first_and_put_restores_the_slot_layout():
    node_mask = torch.tensor([[False, True, False, True], [True, False, False, False]])
    slots = select_active_slots(node_mask)
    assert slots.index.tolist() == [[1, 3], [0, 1]]
    x = torch.arange(8.0).reshape(2, 4, 1)
    back = slots.put(slots.take(x), torch.full_like(x, -1.0))
    assert back[..., 0].tolist() == [[-1.0, 1.0, -1.0, 3.0], [4.0, 5.0, -1.0, -1.0]]
    assert select_active_slots(torch.ones(2, 4, dtype=torch.bool)) is None


@pytest.mark.parametrize("use_tgn", [False, True])
def test_large_and_small_batches_take_different_encoders_with_the_same_results(use_tgn):
    from gnnrl.core.agents.configs import PolicyConfig
    from gnnrl.core.agents.ppo_gnn import DENSE_MAX_BATCH, PPO_GNN

    torch.manual_seed(4)
    model = PPO_GNN(use_tgn=use_tgn, config=PolicyConfig(max_nodes=N, max_edges=E,
                                                         hidden_dim=16)).eval()
    torch.nn.init.normal_(model.head.actor[-1].weight, std=1.0)
    b = DENSE_MAX_BATCH + 8
    edge_df, edge_mask, node_mask = _random_batch(5, b)
    node_mask[:, 0] = False  # every observation has a padded slot: the encoders compact
    t = {"svc_df": torch.rand(b, N, NODE_DIM_RAW) * 100, "edge_df": edge_df, "edge_mask": edge_mask,
         "global_feats": torch.rand(b, GLOBAL_DIM_RAW) * 100, "node_mask": node_mask,
         "invalid_action_mask": torch.rand(b, N * 15) < 0.2}
    memory = (torch.randn(b, N, model.config.tgn.memory_dim),
              torch.rand(b, N), torch.full((b,), 3.0))
    with torch.no_grad():
        big = model(t, memory)
        for i in (0, 1, 2, b - 1):
            one = model({k: v[i:i + 1] for k, v in t.items()},
                        tuple(m[i:i + 1] for m in memory))
            torch.testing.assert_close(torch.softmax(big[0][i], -1),
                                       torch.softmax(one[0][0], -1), atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(big[1][i], one[1][0], atol=1e-5, rtol=1e-4)
            if use_tgn:
                torch.testing.assert_close(big[2][0][i], one[2][0][0], atol=1e-5, rtol=1e-4)


def test_a_batch_without_any_call_edge_is_encoded_by_both_encoders_alike():
    from gnnrl.core.agents.configs import PolicyConfig
    from gnnrl.core.agents.ppo_gnn import DENSE_MAX_BATCH, PPO_GNN

    torch.manual_seed(6)
    model = PPO_GNN(config=PolicyConfig(max_nodes=N, max_edges=E, hidden_dim=16)).eval()
    b = DENSE_MAX_BATCH + 1
    node_mask = torch.ones(b, N, dtype=torch.bool)
    node_mask[:, -2:] = False
    t = {"svc_df": torch.rand(b, N, NODE_DIM_RAW) * 100, "edge_df": torch.zeros(b, E, 7),
         "edge_mask": torch.zeros(b, E, dtype=torch.bool),
         "global_feats": torch.rand(b, GLOBAL_DIM_RAW),
         "node_mask": node_mask, "invalid_action_mask": torch.zeros(b, N * 15, dtype=torch.bool)}
    with torch.no_grad():
        big = model(t, None)
        one = model({k: v[:1] for k, v in t.items()}, None)
    torch.testing.assert_close(big[0][:1], one[0], atol=1e-5, rtol=1e-4)
    assert big[2][1].eq(0.0).all()  # no event: memory clock untouched (zero), memory kept

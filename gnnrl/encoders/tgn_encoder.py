"""DynamicTGNEncoder: temporal memory per service (TGN) + a graph-attention read-out.

Memory model: PyTorch Geometric's ``TGNMemory`` (Rossi et al., "Temporal Graph Networks",
https://arxiv.org/abs/2006.10637) with ``IdentityMessage`` and ``LastAggregator``. Every
active call edge of a decision step is an *event* ``(src, dst, t, raw_msg)``: ``raw_msg`` is
the scaled edge row [active, log qps, log p95, err, mtls] and ``t`` is the step index of the
episode (decision steps, 1 at the first observation after a reset).

Why a functional form. ``TGNMemory`` keeps its memory and message stores as module state,
with per-node Python dictionaries (``_update_msg_store``/``_compute_msg`` loop over node
ids). PPO needs (a) one memory per vectorised env and (b) gradients through the memory
update during the loss, on minibatches of shuffled steps. We therefore keep the
``TGNMemory`` module for its parameters (the GRU cell and the time encoder) and evaluate the
*same* math in a vectorised, differentiable function (`DynamicTGNEncoder.memory_update`):

    msg_s(e) = [m[src], m[dst], raw_e, cos(W (t - last[src]) + b)]   (for node src)
    msg_d(e) = [m[dst], m[src], raw_e, cos(W (t - last[dst]) + b)]   (for node dst)
    a[i]     = the latest message of node i (LastAggregator)
    m'[i]    = GRUCell(a[i], m[i]) if node i had an event this step, else m[i]
    last'[i] = t if node i had an event, else last[i]

``tests/test_encoders_tgn.py`` checks this against ``TGNMemory.update_state`` itself. One
deliberate difference: all events of a step share one timestamp, so "latest" is a tie;
PyG breaks it by event order, which would make the policy depend on slot numbering. We
break it by the event's traffic (highest qps wins), which keeps the encoder permutation
equivariant.

Training the GRU: the rollout stores the *pre-step* memory and last-update times of each
step; the PPO loss recomputes that step's memory update from them, so the GRU and time
encoder receive gradients (one-step truncated back-propagation through time).

Node identity across topology changes: `MemoryBank.update_node_mapping` remaps memory rows
by service name: survivors keep memory and last-update time, new services start at zero,
removed services are dropped. Memory resets at episode start; each vectorised env has its
own memory rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import TransformerConv
from torch_geometric.nn.models.tgn import IdentityMessage, LastAggregator, TGNMemory

from gnnrl.encoders.dense_graph import DenseGraph, dense_transformer_conv
from gnnrl.encoders.features import EDGE_DIM, NODE_DIM
from gnnrl.encoders.graph_batch import GraphBatch
from gnnrl.encoders.narrow_linear import use_narrow_input_backward

#: raw message = scaled edge row without the direction flag
RAW_MSG_DIM = EDGE_DIM - 1


class DynamicTGNEncoder(nn.Module):
    """Temporal node embeddings from a GRU memory updated by each step's call events.

    Args:
        max_nodes: slots per observation N.
        hidden_dim: output width H (divisible by ``heads``).
        memory_dim: memory width D.
        time_dim: width of the cosine time encoding.
        heads: attention heads of the read-out ``TransformerConv`` (concatenated to H).
    """

    def __init__(self, max_nodes: int = 20, hidden_dim: int = 64, memory_dim: int = 32,
                 time_dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.max_nodes = max_nodes
        self.memory_dim = memory_dim
        self.memory = TGNMemory(
            num_nodes=max_nodes,
            raw_msg_dim=RAW_MSG_DIM,
            memory_dim=memory_dim,
            time_dim=time_dim,
            message_module=IdentityMessage(RAW_MSG_DIM, memory_dim, time_dim),
            aggregator_module=LastAggregator(),
        )
        self.conv = TransformerConv(memory_dim + NODE_DIM, hidden_dim // heads, heads=heads,
                                    edge_dim=EDGE_DIM)
        use_narrow_input_backward(self.conv.lin_edge)  # 6 inputs: faster weight gradient

    def train(self, mode: bool = True) -> DynamicTGNEncoder:
        """Switch the read-out's mode only.

        ``TGNMemory.train(False)`` flushes its internal message store into its (unused)
        memory buffer; our memory lives in `MemoryBank`, so the PyG module stays as is.
        """
        self.training = mode
        self.conv.train(mode)
        return self

    def memory_update(self, memory: Tensor, last_update: Tensor, t: Tensor, graph: GraphBatch,
                      edge_attr: Tensor) -> tuple[Tensor, Tensor]:
        """One step of the TGN memory update (differentiable).

        Shapes:
            memory ``(B, N, D)``, last_update ``(B, N)`` (steps), t ``(B,)`` (steps);
            graph/edge_attr as built by the policy (forward edges carry flag 1.0);
            returns ``(B, N, D)`` and ``(B, N)``.
        """
        b, n, d = memory.shape
        mem = memory.reshape(b * n, d)
        last = last_update.reshape(b * n)
        fwd = graph.forward > 0.5
        src = graph.edge_index[0, fwd]
        dst = graph.edge_index[1, fwd]
        raw = edge_attr[fwd, :RAW_MSG_DIM]
        t_node = t.repeat_interleave(n)  # (B*N,) each node's current time
        t_ev = t_node[src]
        enc = self.memory.time_enc
        msg_s = torch.cat([mem[src], mem[dst], raw, enc(t_ev - last[src])], dim=-1)
        msg_d = torch.cat([mem[dst], mem[src], raw, enc(t_ev - last[dst])], dim=-1)
        idx = torch.cat([src, dst])
        msg = torch.cat([msg_s, msg_d])
        # LastAggregator with a traffic tie-break (column 1 of raw = scaled log qps).
        key = torch.cat([raw[:, 1], raw[:, 1]])
        best = torch.full((b * n,), float("-inf"), dtype=key.dtype, device=key.device)
        best = best.scatter_reduce(0, idx, key, reduce="amax", include_self=True)
        pos = torch.arange(idx.numel(), device=idx.device)
        cand = torch.where(key >= best[idx], pos, torch.full_like(pos, idx.numel()))
        pick = torch.full((b * n,), idx.numel(), dtype=pos.dtype, device=pos.device)
        pick = pick.scatter_reduce(0, idx, cand, reduce="amin", include_self=True)
        has = pick < idx.numel()
        aggr = msg.new_zeros((b * n, msg.shape[-1]))
        aggr[has] = msg[pick[has]]
        updated = self.memory.gru(aggr, mem)
        new_mem = torch.where(has.unsqueeze(-1), updated, mem)
        new_last = torch.where(has, t_node, last)
        return new_mem.reshape(b, n, d), new_last.reshape(b, n)

    def memory_update_events(self, memory: Tensor, has_event: Tensor, event: Tensor,
                             event_dt: Tensor) -> Tensor:
        """`memory_update`'s new memory from precomputed winning events.

        `gnnrl.encoders.update_batch.prepare_update` picks each node's event and gathers
        the data part of its message once per PPO update; what depends on weights (the
        time encoding and the GRU) runs here. Nodes without an event keep their memory.

        Shapes: memory ``(B, k, D)``, has_event ``(B, k)`` bool, event ``(B, k, 2 D +
        RAW_MSG_DIM)``, event_dt ``(B, k, 1)`` steps -> ``(B, k, D)``.
        """
        b, k, d = memory.shape
        enc = self.memory.time_enc(event_dt.reshape(b * k, 1))
        aggr = torch.cat([event.reshape(b * k, -1), enc], -1)
        updated = self.memory.gru(aggr, memory.reshape(b * k, d))
        return torch.where(has_event.unsqueeze(-1), updated.view(b, k, d), memory)

    def memory_update_dense(self, memory: Tensor, last_update: Tensor, t: Tensor,
                            graph: DenseGraph, edge_feats: Tensor) -> tuple[Tensor, Tensor]:
        """`memory_update` on a `DenseGraph`: the same math, as batched matrix products.

        Message m < Ec is edge row m's event seen by its caller, Ec + m the same event
        seen by its callee (the order of `memory_update`, so ties break the same way).

        Shapes:
            memory ``(B, N, D)``, last_update ``(B, N)``, t ``(B,)`` (steps);
            edge_feats ``(B, Ec, RAW_MSG_DIM)`` scaled edge rows of ``graph.rows``;
            returns ``(B, N, D)`` and ``(B, N)``.
        """
        b, n, d = memory.shape
        ec = graph.num_rows
        owner = graph.msg_src  # (B, 2Ec, N): the node each message is for
        own = owner @ memory  # (B, 2Ec, D)
        other = torch.cat([own[:, ec:], own[:, :ec]], 1)
        own_last = (owner @ last_update.unsqueeze(-1)).squeeze(-1)  # (B, 2Ec)
        dt = t.unsqueeze(-1) - own_last
        enc = self.memory.time_enc(dt).view(b, 2 * ec, -1)
        raw = torch.cat([edge_feats, edge_feats], 1)
        msg = torch.cat([own, other, raw, enc], -1)  # (B, 2Ec, 2D + RAW + T)
        # LastAggregator with the traffic tie-break: the highest-qps message wins, the
        # first one (in message order) among equals.
        target = graph.msg_for  # (B, N, 2Ec)
        key = raw[..., 1].unsqueeze(1).masked_fill(~target, float("-inf"))
        best = key.amax(-1, keepdim=True)
        cand = (key >= best) & target
        pick = cand & (cand.cumsum(-1) == 1)  # first candidate only
        has = graph.has_event  # (B, N): any own message is a candidate
        aggr = pick.to(msg.dtype) @ msg  # (B, N, msg dim)
        updated = self.memory.gru(aggr.reshape(b * n, -1), memory.reshape(b * n, d))
        new_mem = torch.where(has.unsqueeze(-1), updated.view(b, n, d), memory)
        new_last = torch.where(has, t.unsqueeze(-1).expand(b, n), last_update)
        return new_mem, new_last

    def embed_dense(self, memory: Tensor, x: Tensor, graph: DenseGraph, msg_attr: Tensor,
                    projection: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """`embed` on a `DenseGraph`.

        Shapes: memory ``(B, N, D)``, x ``(B, N, NODE_DIM)``, msg_attr ``(B, 2 Ec,
        EDGE_DIM)`` -> ``(B, N, H)``.
        """
        return dense_transformer_conv(self.conv, torch.cat([memory, x], -1), graph, msg_attr,
                                      projection)

    def embed(self, memory: Tensor, x: Tensor, graph: GraphBatch, edge_attr: Tensor) -> Tensor:
        """Read-out: attention over neighbours of [memory, scaled features].

        Shapes: memory ``(B, N, D)``, x ``(B * N, NODE_DIM)`` -> ``(B * N, H)``.
        """
        z = torch.cat([memory.reshape(-1, self.memory_dim), x], dim=-1)
        return self.conv(z, graph.edge_index, edge_attr)


class MemoryBank:
    """The runtime memory of B vectorised envs (not parameters; never saved with the model).

    Shapes: memory ``(B, N, D)``, last_update ``(B, N)``, t ``(B,)`` (steps since reset).
    """

    def __init__(self, num_envs: int, max_nodes: int, memory_dim: int,
                 device: torch.device | str = "cpu") -> None:
        self.memory = torch.zeros(num_envs, max_nodes, memory_dim, device=device)
        self.last_update = torch.zeros(num_envs, max_nodes, device=device)
        self.t = torch.zeros(num_envs, device=device)
        self.names: list[list[str | None] | None] = [None] * num_envs

    @property
    def num_envs(self) -> int:
        return self.memory.shape[0]

    def reset(self, envs: Sequence[int] | None = None) -> None:
        """Zero the memory of the given envs (all when None): an episode starts."""
        ids = range(self.num_envs) if envs is None else envs
        for i in ids:
            self.memory[i].zero_()
            self.last_update[i].zero_()
            self.t[i] = 0.0
            self.names[i] = None

    def update_node_mapping(self, names: Sequence[str | None], env: int = 0) -> None:
        """Remap env ``env``'s memory rows to a new slot -> service-name layout.

        ``names[j]`` is the service in slot j (None = empty). Survivors keep memory and
        last-update time (wherever their slot moved), new services start at zero, removed
        services are dropped.
        """
        names = list(names)
        if len(names) != self.memory.shape[1]:
            raise ValueError(f"names has {len(names)} slots, memory has {self.memory.shape[1]}")
        old = self.names[env]
        if old is not None and old != names:
            where = {name: i for i, name in enumerate(old) if name is not None}
            mem = torch.zeros_like(self.memory[env])
            last = torch.zeros_like(self.last_update[env])
            for j, name in enumerate(names):
                i = where.get(name) if name is not None else None
                if i is not None:
                    mem[j] = self.memory[env, i]
                    last[j] = self.last_update[env, i]
            self.memory[env] = mem
            self.last_update[env] = last
        self.names[env] = names

    def state(self) -> tuple[Tensor, Tensor, Tensor]:
        """Pre-step state for a decision: (memory, last_update, t + 1); copies."""
        return self.memory.clone(), self.last_update.clone(), self.t + 1.0

    def commit(self, memory: Tensor, last_update: Tensor, t: Tensor) -> None:
        """Store the post-step memory returned by the policy (detached)."""
        self.memory.copy_(memory.detach())
        self.last_update.copy_(last_update.detach())
        self.t.copy_(t)

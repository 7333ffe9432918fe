"""PPO_GNN: the graph policy (GNNEncoder + DynamicTGNEncoder + PolicyHead) and its value.

Per-node logits over the 15 moves come from ``[node embedding, pooled graph embedding,
global features]``, so one set of weights serves any number of services (up to the
observation's ``max_nodes``; the weights themselves do not depend on it). Structural (GNN)
and temporal (TGN) node embeddings are summed, as in the design. The value is read from the
pooled graph embedding and the global features.

Invalid moves (``obs["invalid_action_mask"]``, service-major ``(max_nodes * 15,)``, 1 =
invalid) get probability zero in rollouts and in the PPO update alike. Padded slots may only
take move 0 and are excluded from the joint log-probability and entropy, which are sums
over active services.

Speed (docs/policy-speed.md, docs/performance.md): small batches (decisions, rollout
steps) are encoded on the active slots only, as dense per-graph incidence matrices
(`gnnrl.encoders.dense_graph`: a few batched matrix products instead of PyG's scatter
machinery), with the topology-derived structure and the stacked convolution weights cached
for inference; the PPO update computes the parameter-free inputs of a rollout once
(`prepare_update`) and evaluates minibatches of it on PyG's sparse path
(`evaluate_update`). All paths evaluate the very ``TransformerConv`` / ``TGNMemory``
parameters, so saved models are unchanged (``tests/test_agents_default_model_outputs.py``
pins the shipped model, ``tests/test_agents_ppo_update_reference.py`` the PPO update).

Weights are data: `PPO_GNN.save` writes ``weights.pt`` (a ``state_dict``) and
``config.json`` (architecture, observation schema version, SHA-256 of the weights);
`PPO_GNN.load` reads them back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gnnrl
from gnnrl.config import ConfigError, atomic_write_bytes, atomic_write_text
from gnnrl.contracts.moves import MAX_STEP
from gnnrl.core.agents.configs import PolicyConfig
from gnnrl.encoders.features import GLOBAL_DIM, FeatureScaler
from gnnrl.encoders.gnn_encoder import GNNEncoder
from gnnrl.encoders.dense_graph import (
    DenseGraph,
    SlotSelection,
    build_dense_graph,
    fused_projection,
    message_edge_attr,
    select_active_slots,
)
from gnnrl.encoders.graph_batch import (
    PoolMasks,
    build_graph_batch,
    ObservationError,
    check_finite,
    masked_pool,
    obs_to_tensors,
    pool_masks,
)
from gnnrl.encoders.tgn_encoder import DynamicTGNEncoder, MemoryBank
from gnnrl.encoders.update_batch import UpdateBatch, prepare_update

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"
_MASKED = -1e8  # logit of an invalid move (exp underflows to exactly 0 probability)
#: batches up to this size are encoded densely (`_encode_dense`: fewer, larger ops, best for
#: one decision or a rollout step); larger ones (PPO minibatches) on one sparse PyG graph,
#: which does less arithmetic there (benchmarks/bench_policy.py; crossover ~32-64 on CPU)
DENSE_MAX_BATCH = 32
#: topologies whose graph structure `PPO_GNN` keeps for decisions (a few: the envs of a
#: rollout change topology at different steps)
_TOPOLOGY_CACHE_SIZE = 8


def log_softmax_moves(logits: Tensor) -> Tensor:
    """``log_softmax(logits, -1)`` over the 15 moves, computed 16 wide.

    A last dimension of 15 takes PyTorch's slow (non-vectorised) CPU kernel, ~8x slower
    than 16; a -inf column (probability exactly 0, so the normaliser is the same) is
    appended and sliced off again. Shapes: ``(..., 15)`` -> ``(..., 15)``.
    """
    k = logits.shape[-1]
    return torch.log_softmax(F.pad(logits, (0, 1), value=float("-inf")), -1)[..., :k]


def _logp_entropy(logits: Tensor, actions: Tensor, invalid: Tensor) -> tuple[Tensor, Tensor]:
    """Per-slot log-probability of ``actions`` and entropy of the masked categorical.

    The entropy sums ``-p log p`` over valid moves only: invalid log-probabilities are set
    to 0 before the ``exp`` (their ``p log p`` is exactly 0 anyway; ``exp`` of the masked
    -1e8 values is 5-50x slower than of ordinary numbers on CPU).

    Shapes: logits ``(B, N, 15)``, actions ``(B, N)`` int64, invalid ``(B, N, 15)`` bool
    -> two ``(B, N)``.
    """
    logp_all = log_softmax_moves(logits)
    logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    valid_logp = logp_all.masked_fill(invalid, 0.0)
    return logp, -(valid_logp.exp() * valid_logp).sum(-1)


class _Topology(NamedTuple):
    """What `PPO_GNN` derives from a batch's topology alone (masks, edge endpoints).

    used ``(Eu,)`` edge rows any observation marks active; slots: the active-first
    selection (None when every slot is kept); active ``(B, k)`` bool; graph: the dense
    graph over ``edge_df[:, used]`` (dense batches only) and rows ``(Ec,)`` its edge rows
    as indices into the full ``edge_df``; pool: `PoolMasks` of ``active``.
    """

    used: Tensor
    slots: SlotSelection | None
    active: Tensor
    graph: DenseGraph | None
    rows: Tensor | None
    pool: PoolMasks


class ModelLoadError(RuntimeError):
    """A saved model is missing, corrupt (hash mismatch, bad pickle) or does not fit."""


class ObservationSchemaError(ModelLoadError):
    """The model was trained on a different observation schema version than this code's."""


def _ortho(layer: nn.Linear, gain: float) -> nn.Linear:
    # PPO implementation detail: orthogonal init, small gain on the policy output
    # (Huang et al., "The 37 implementation details of PPO", ICLR blog track 2022).
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def move_prior(num_moves: int = 15, hold: float = 2.0, per_replica: float = 0.25) -> Tensor:
    """Initial logit bias of the 15 moves: hold (+2.0), then -0.25 per extra replica.

    An untrained per-service policy with uniform logits would change 14 of 15 services'
    replicas every step (a random walk that piles up pods); with this prior the
    untrained policy holds about a third of the time and prefers small moves, so early
    rollouts look like plausible operations. Learning moves the bias like any weight.
    """
    half = (num_moves - 1) // 2
    size = torch.arange(1, half + 1, dtype=torch.float32)
    steps = -per_replica * (size - 1)
    return torch.cat([torch.tensor([hold]), steps, steps])


class PolicyHead(nn.Module):
    """Per-node move logits and a graph value.

    Shapes:
        h ``(B, N, H)`` node embeddings, g ``(B, H)`` graph embedding, glob ``(B, G)``
        scaled globals, priv ``(B, P)`` the critic's training-only inputs (None: zeros; P =
        ``privileged_dim``, 0 for the symmetric critic) -> logits ``(B, N, num_moves)``,
        value ``(B,)``. The actor never reads ``priv``.
    """

    def __init__(self, hidden_dim: int, num_moves: int = 15, global_dim: int = GLOBAL_DIM,
                 privileged_dim: int = 0):
        super().__init__()
        gain = float(np.sqrt(2.0))
        out = _ortho(nn.Linear(hidden_dim, num_moves), 0.01)
        self.actor = nn.Sequential(
            _ortho(nn.Linear(2 * hidden_dim + global_dim, hidden_dim), gain), nn.Tanh(), out,
        )
        with torch.no_grad():
            out.bias.copy_(move_prior(num_moves))
        self.privileged_dim = privileged_dim
        self.critic = nn.Sequential(
            _ortho(nn.Linear(hidden_dim + global_dim + privileged_dim, hidden_dim), gain),
            nn.Tanh(), _ortho(nn.Linear(hidden_dim, 1), 1.0),
        )

    def forward(self, h: Tensor, g: Tensor, glob: Tensor, priv: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        # The actor's first layer on [h_node; ctx] is W [h; ctx] + b = W_h h + (W_c ctx + b):
        # the graph part once per graph instead of once per node (same parameters, so
        # saved models load unchanged; equal up to float rounding of the split sum).
        ctx = torch.cat([g, glob], dim=-1)
        first = cast(nn.Linear, self.actor[0])  # as built in __init__
        w_node, w_ctx = first.weight.split([h.shape[-1], ctx.shape[-1]], 1)
        z = F.linear(h, w_node) + F.linear(ctx, w_ctx, first.bias).unsqueeze(1)
        critic_in = ctx
        if self.privileged_dim:
            if priv is None:
                priv = ctx.new_zeros(ctx.shape[0], self.privileged_dim)
            critic_in = torch.cat([ctx, priv.to(ctx.dtype)], dim=-1)
        return self.actor[2](self.actor[1](z)), self.critic(critic_in).squeeze(-1)


def fit_critic_input(state: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """``state`` (a state dict) fitted to ``model``'s critic input width.

    A symmetric critic warm-starting an asymmetric one gets zero weights for the extra,
    privileged inputs, so the warm start's values are unchanged at first; an asymmetric
    critic warm-starting a symmetric one loses those columns. Everything else is as given.
    """
    out = dict(state)
    key = "head.critic.0.weight"
    want, have = model.state_dict().get(key), out.get(key)
    if want is None or have is None or have.shape == want.shape or have.shape[0] != want.shape[0]:
        return out
    if have.shape[1] < want.shape[1]:
        out[key] = torch.cat([have, have.new_zeros(have.shape[0],
                                                   want.shape[1] - have.shape[1])], 1)
    else:
        out[key] = have[:, :want.shape[1]].clone()
    return out


class PPO_GNN(nn.Module):
    """The GNNRL actor-critic.

    Args:
        obs_space: the env's ``observation_space`` (a Dict with ``svc_df`` and ``edge_df``);
            may be None when ``config`` gives ``max_nodes``/``max_edges``.
        action_space: ``MultiDiscrete([15] * max_nodes)`` (checked) or None.
        use_tgn: add the temporal memory encoder (overrides ``config.use_tgn``).
        config: `PolicyConfig` (defaults otherwise).
    """

    name = "gnnrl"
    #: The control interval (s) of the simulator the model was trained in; `save` records
    #: it as ``control_interval_s`` and `load` reads it back. Every training run so far used
    #: the simulator's default 15 s (the HPA's sync period), so a model saved before the
    #: field existed was trained at 15 s too.
    trained_interval_s: float = 15.0

    def __init__(self, obs_space: Any = None, action_space: Any = None,
                 use_tgn: bool | None = None, config: PolicyConfig | None = None) -> None:
        super().__init__()
        cfg = config or PolicyConfig()
        if obs_space is not None:
            n_nodes = int(obs_space["svc_df"].shape[0])
            n_edges = int(obs_space["edge_df"].shape[0])
            cfg = cfg.replace(max_nodes=n_nodes, max_edges=n_edges)
        if action_space is not None:
            nvec = np.asarray(getattr(action_space, "nvec", []))
            if nvec.shape != (cfg.max_nodes,) or not (nvec == cfg.num_moves).all():
                raise ConfigError(
                    f"action_space must be MultiDiscrete([{cfg.num_moves}] * {cfg.max_nodes}),"
                    f" got {action_space}"
                )
        if use_tgn is not None:
            cfg = cfg.replace(use_tgn=bool(use_tgn))
        self.config = cfg
        h = cfg.hidden_dim
        self.scaler = FeatureScaler()
        self.gnn = GNNEncoder(h, cfg.gnn_layers, cfg.gnn_heads)
        self.tgn = (
            DynamicTGNEncoder(cfg.max_nodes, h, cfg.tgn.memory_dim, cfg.tgn.time_dim,
                              cfg.tgn.heads)
            if cfg.use_tgn else None
        )
        self.pool = nn.Sequential(nn.Linear(2 * h, h), nn.Tanh())
        self.head = PolicyHead(h, cfg.num_moves, privileged_dim=cfg.privileged_dim)
        self._bank: MemoryBank | None = None
        self._topology_cache: dict[bytes, _Topology] = {}
        self._projection_params: list[Tensor] | None = None
        self._projection_cache: tuple[list, list[tuple[Tensor, Tensor]]] | None = None

    # -- core (batched tensors) -----------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.scaler.node_mean.device  # a buffer: cheaper than walking parameters()

    def new_memory(self, num_envs: int) -> MemoryBank:
        """A zeroed memory bank for ``num_envs`` vectorised envs."""
        dim = self.config.tgn.memory_dim
        return MemoryBank(num_envs, self.config.max_nodes, dim, self.device)

    def forward(self, t: Mapping[str, Tensor], memory: tuple[Tensor, Tensor, Tensor] | None
                ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """Masked logits, value and the post-step memory.

        Args:
            t: batched tensors from `obs_to_tensors`.
            memory: pre-step ``(memory (B, N, D), last_update (B, N), t (B,))`` or None
                (TGN off, or a zero memory at t = 1).

        Returns:
            logits ``(B, N, 15)`` with invalid moves at -1e8, value ``(B,)``, and
            ``(memory (B, N, D), last_update (B, N))`` after this step (None without TGN).
        """
        logits, value, new_memory, topo = self._forward_compact(t, memory)
        slots = topo.slots
        if slots is not None:  # back to slots; the left-out (padded) ones may only hold
            bsz, n = t["node_mask"].shape
            hold = logits.new_full((bsz, n, logits.shape[-1]), _MASKED)
            hold[..., 0] = 0.0
            logits = slots.put(logits, hold)
        return logits, value, self._memory_to_slots(new_memory, topo)

    def _memory_to_slots(self, new_memory: tuple[Tensor, Tensor] | None, topo: _Topology
                         ) -> tuple[Tensor, Tensor] | None:
        """Compact post-step memory back to slots (left-out slots get zeros)."""
        if new_memory is None or topo.slots is None:
            return new_memory
        mem, last = new_memory
        bsz, n = topo.slots.position.shape
        return (topo.slots.put(mem, mem.new_zeros(bsz, n, mem.shape[-1])),
                topo.slots.put(last, last.new_zeros(bsz, n)))

    def _forward_compact(self, t: Mapping[str, Tensor],
                         memory: tuple[Tensor, Tensor, Tensor] | None
                         ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None, _Topology]:
        """`forward` on the compact (active-first) slots: masked logits ``(B, k, 15)``,
        value, compact post-step memory and the topology it used."""
        svc = t["svc_df"]
        bsz, n, _ = svc.shape
        if self.tgn is not None and memory is None:
            d = self.config.tgn.memory_dim
            memory = (svc.new_zeros(bsz, n, d), svc.new_zeros(bsz, n), svc.new_ones(bsz))
        dense = bsz <= DENSE_MAX_BATCH
        topo = self._structure(t, dense)
        slots, active = topo.slots, topo.active
        invalid = t["invalid_action_mask"].reshape(bsz, n, -1)
        if slots is not None:
            svc, invalid = slots.take(svc), slots.take(invalid)
            if memory is not None:
                memory = (slots.take(memory[0]), slots.take(memory[1]), memory[2])
        if dense:
            h, new_memory = self._encode_dense(self.scaler.node(svc), memory, t, topo)
        else:
            if topo.used.numel() < t["edge_mask"].shape[1]:
                used = topo.used
                t = {**t, "edge_df": t["edge_df"][:, used], "edge_mask": t["edge_mask"][:, used]}
            h, new_memory = self._encode_sparse(self.scaler.node(svc), memory, t, slots, active)
        h = h * topo.pool.weight
        g = self.pool(masked_pool(h, active, topo.pool))
        logits, value = self.head(h, g, self.scaler.glob(t["global_feats"]),
                                  t.get("privileged"))
        logits = self.mask_logits(logits, invalid.reshape(bsz, -1), active)
        return logits, value, new_memory, topo

    def _structure(self, t: Mapping[str, Tensor], dense: bool) -> _Topology:
        """The used edge rows, the active-slot selection and (``dense``) the dense graph.

        They depend on the topology only (masks and edge endpoints), which changes rarely
        between decisions; under ``torch.inference_mode`` on CPU the last few are cached,
        keyed by those bytes, so a decision skips rebuilding them.
        """
        cache = self._topology_cache if (dense and torch.is_inference_mode_enabled()
                                         and t["node_mask"].device.type == "cpu") else None
        key = None
        if cache is not None:
            key = b"".join((t["node_mask"].numpy().tobytes(), t["edge_mask"].numpy().tobytes(),
                            t["edge_df"][..., :2].numpy().tobytes(),
                            str(tuple(t["edge_df"].shape)).encode()))
            hit = cache.get(key)
            if hit is not None:
                return hit
        # Only the edge rows some observation marks active can carry messages (a few dozen
        # of max_edges = 400); the others are dropped up front, in row order.
        node_mask, edge_mask = t["node_mask"], t["edge_mask"]
        used = torch.nonzero(edge_mask.any(0)).flatten()
        if used.numel() == 0:  # no edge at all: keep one (inactive) row, shapes stay non-empty
            used = torch.zeros(1, dtype=torch.long, device=used.device)
        # Encode the active slots only (padded ones neither send nor receive messages).
        slots = select_active_slots(node_mask)
        active = node_mask if slots is None else slots.take(node_mask)
        graph = rows = None
        if dense:
            graph = build_dense_graph(t["edge_df"][:, used], edge_mask[:, used], node_mask,
                                      slots)
            rows = used[graph.rows]
        topo = _Topology(used, slots, active, graph, rows, pool_masks(active))
        if cache is not None and key is not None:  # key: set with the cache above
            if len(cache) >= _TOPOLOGY_CACHE_SIZE:
                cache.pop(next(iter(cache)))
            cache[key] = topo
        return topo

    def _encode_dense(self, x: Tensor, memory: tuple[Tensor, Tensor, Tensor] | None,
                      t: Mapping[str, Tensor], topo: _Topology
                      ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """Node embeddings ``(B, k, H)`` and post-step memory on dense per-graph incidence
        matrices (`gnnrl.encoders.dense_graph`)."""
        graph = topo.graph
        assert graph is not None  # a dense topology carries its graph
        edge_feats = self.scaler.edge(t["edge_df"][:, topo.rows])  # (B, Ec, EDGE_DIM - 1)
        msg_attr = message_edge_attr(edge_feats)
        proj = self._projections()
        layers = len(self.gnn.convs)
        h = self.gnn.forward_dense(x, graph, msg_attr, None if proj is None else proj[:layers])
        if self.tgn is None or memory is None:
            return h, None
        mem, last = self.tgn.memory_update_dense(memory[0], memory[1], memory[2], graph,
                                                 edge_feats)
        # A slot that is empty now forgets (the service was removed).
        keep = topo.pool.weight
        mem, last = mem * keep, last * keep[..., 0]
        h = h + self.tgn.embed_dense(mem, x, graph, msg_attr,
                                     None if proj is None else proj[layers])
        return h, (mem, last)

    def _projections(self) -> list[tuple[Tensor, Tensor]] | None:
        """Stacked query/key/value/skip weights of the dense path's convolutions (the GNN
        layers, then the TGN read-out), cached for inference.

        Only under ``torch.inference_mode`` (decisions, rollouts): the cache is rebuilt when
        any of those parameters changed (storage or version counter, which an optimizer
        step or ``load_state_dict`` moves); None otherwise (stacked per call, so gradients
        flow).
        """
        if not torch.is_inference_mode_enabled():
            return None
        convs = [*self.gnn.convs, *([self.tgn.conv] if self.tgn is not None else [])]
        if self._projection_params is None:
            self._projection_params = [lin.weight if k == 0 else lin.bias for conv in convs
                                       for lin in (conv.lin_query, conv.lin_key,
                                                   conv.lin_value, conv.lin_skip)
                                       for k in (0, 1)]
        key = [(p.data_ptr(), p._version) for p in self._projection_params]
        if self._projection_cache is None or self._projection_cache[0] != key:
            self._projection_cache = (key, [fused_projection(conv) for conv in convs])
        return self._projection_cache[1]

    def _encode_sparse(self, x: Tensor, memory: tuple[Tensor, Tensor, Tensor] | None,
                       t: Mapping[str, Tensor], slots: SlotSelection | None, active: Tensor
                       ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """`_encode_dense` on one disjoint PyG graph (`build_graph_batch`): the same math,
        cheaper than the dense form for large batches (the PPO update's minibatches)."""
        bsz, k, _ = x.shape
        edge_df = t["edge_df"] if slots is None else slots.remap_edges(t["edge_df"])
        graph = build_graph_batch(edge_df, t["edge_mask"], active)
        edge_flat = edge_df.reshape(-1, edge_df.shape[-1])[graph.edge_rows]
        edge_attr = torch.cat([self.scaler.edge(edge_flat), graph.forward.unsqueeze(-1)], -1)
        x = x.reshape(bsz * k, -1)
        h = self.gnn(x, graph, edge_attr)
        if self.tgn is None or memory is None:
            return h.reshape(bsz, k, -1), None
        mem, last = self.tgn.memory_update(memory[0], memory[1], memory[2], graph, edge_attr)
        keep = active.to(mem.dtype)
        mem, last = mem * keep.unsqueeze(-1), last * keep
        h = h + self.tgn.embed(mem, x, graph, edge_attr)
        return h.reshape(bsz, k, -1), (mem, last)

    def mask_logits(self, logits: Tensor, invalid: Tensor, node_mask: Tensor) -> Tensor:
        """Set invalid moves to -1e8; padded slots (and any all-invalid row) keep move 0 only.

        A padded slot's row is exactly ``[0, -1e8, ...]`` (whatever the network computed for
        it), so it does not depend on how the batch was laid out.

        Shapes: logits ``(B, N, 15)``, invalid ``(B, N * 15)`` bool, node_mask ``(B, N)``.
        """
        bsz, n, k = logits.shape
        padded = ~node_mask.unsqueeze(-1)
        inv = invalid.reshape(bsz, n, k) | padded
        stuck = inv.all(-1)
        inv[..., 0] &= ~stuck
        return logits.masked_fill(padded, 0.0).masked_fill(inv, _MASKED)

    def evaluate_actions(self, t: Mapping[str, Tensor], actions: Tensor,
                         memory: tuple[Tensor, Tensor, Tensor] | None
                         ) -> tuple[Tensor, Tensor, Tensor]:
        """Joint log-prob, entropy (sums over active services) and value of ``actions``.

        Shapes: actions ``(B, N)`` int64 -> three ``(B,)`` tensors.
        """
        logits, value, _ = self(t, memory)
        logp, ent = _logp_entropy(logits, actions.long(), logits <= _MASKED)
        active = t["node_mask"].to(logits.dtype)
        return (logp * active).sum(-1), (ent * active).sum(-1), value

    # -- the PPO update's path --------------------------------------------------------------
    def prepare_update(self, t: Mapping[str, Tensor], memory: tuple[Tensor, Tensor, Tensor]
                       | None, actions: Tensor) -> UpdateBatch:
        """The parameter-free inputs of a rollout, once per update (`gnnrl.encoders.
        update_batch`); evaluate minibatches of it with `evaluate_update`.

        Shapes: as `evaluate_actions` (M observations).
        """
        if self.tgn is None:
            memory = None
        elif memory is None:
            svc = t["svc_df"]
            bsz, n, _ = svc.shape
            d = self.config.tgn.memory_dim
            memory = (svc.new_zeros(bsz, n, d), svc.new_zeros(bsz, n), svc.new_ones(bsz))
        return prepare_update(self.scaler, dict(t), actions, memory, self.config.num_moves)

    def sampling_logits(self, logits: Tensor, temperature: float = 1.0,
                        served: bool = False) -> Tensor:
        """The logits of the distribution training samples and scores moves from.

        ``softmax(logits / temperature)``; with ``served``, the hold margins are first taken
        off the logits of the moves they guard (``config.hold_margin`` off every addition,
        ``config.hold_margin_down`` off every removal), so the distribution's mode is the
        served decision (`decide`) rather than the bare arg-max. Shapes: ``(..., 15)``.
        """
        if served:
            up = self.config.hold_margin
            down = up if self.config.hold_margin_down is None else self.config.hold_margin_down
            if up > 0.0 or down > 0.0:
                bias = logits.new_zeros(logits.shape[-1])
                bias[1:MAX_STEP + 1] = -up
                bias[MAX_STEP + 1:] = -down
                logits = logits + bias
        return logits if temperature == 1.0 else logits / temperature

    def evaluate_update(self, b: UpdateBatch, temperature: float = 1.0, served: bool = False
                        ) -> tuple[Tensor, Tensor, Tensor]:
        """`evaluate_actions` on a prepared (mini)batch: joint log-prob, entropy, value,
        of the moves' distribution (`sampling_logits` with ``temperature`` and ``served``).

        The same computation as the large-batch forward pass (`_encode_sparse`) without
        its per-call graph building; masked moves get -inf logits here (not -1e8), which
        gives the valid moves the same log-probabilities while sparing the slow ``exp``
        of huge negative numbers. Shapes: three ``(m,)`` for a batch of m.
        """
        m, k, _ = b.x.shape
        graph, edge_attr = b.graph()
        x = b.x.reshape(m * k, -1)
        h = self.gnn(x, graph, edge_attr)
        active = b.active.to(h.dtype)
        if self.tgn is not None and b.memory is not None:
            # prepare_update sets the events together with the memory
            assert b.has_event is not None and b.event is not None and b.event_dt is not None
            mem = self.tgn.memory_update_events(b.memory, b.has_event, b.event, b.event_dt)
            mem = mem * active.unsqueeze(-1)
            h = h + self.tgn.embed(mem, x, graph, edge_attr)
        h = h.reshape(m, k, -1) * active.unsqueeze(-1)
        g = self.pool(masked_pool(h, b.active))
        logits, value = self.head(h, g, b.glob, b.privileged)
        logits = self.sampling_logits(logits, temperature, served)
        logp, ent = _logp_entropy(logits.masked_fill(b.invalid, float("-inf")), b.actions,
                                  b.invalid)
        return (logp * active).sum(-1), (ent * active).sum(-1), value

    @torch.inference_mode()
    def sample(self, t: Mapping[str, Tensor], memory: tuple[Tensor, Tensor, Tensor] | None,
               deterministic: bool = False, temperature: float = 1.0, served: bool = False
               ) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """Actions ``(B, N)``, joint log-prob ``(B,)``, value ``(B,)`` and post-step memory;
        moves are drawn from `sampling_logits` (``softmax(logits / temperature)``, the hold
        margins taken off first with ``served``; the log-prob is theirs).

        Runs under ``torch.inference_mode`` (no autograd bookkeeping at all): the results
        are inference tensors, to be copied (rollout storage, `MemoryBank.commit`) or read,
        not modified in place.
        """
        logits, value, new_memory = self(t, memory)
        logp_all = log_softmax_moves(self.sampling_logits(logits, temperature, served))
        if deterministic:
            actions = logits.argmax(-1)
        else:
            # the draw of torch.distributions.Categorical(logits=logits).sample() (same
            # generator calls), without the distribution object's per-call overhead
            bsz, n, k = logits.shape
            probs = logp_all.exp().reshape(bsz * n, k)
            actions = torch.multinomial(probs, 1, replacement=True).reshape(bsz, n)
        actions = torch.where(t["node_mask"], actions, torch.zeros_like(actions))
        logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        logp = (logp * t["node_mask"].to(logp.dtype)).sum(-1)
        return actions, logp, value, new_memory

    # -- convenience API (numpy in, numpy out; keeps its own memory) ----------------------
    def reset_memory(self) -> None:
        """Forget the temporal memory (call at the start of an episode)."""
        if self._bank is not None:
            self._bank.reset()

    def update_node_mapping(self, names: list[str | None], env: int = 0) -> None:
        """Remap the temporal memory of env ``env`` to a new slot -> service layout."""
        if self.tgn is None:
            return
        if self._bank is None:
            self._bank = self.new_memory(env + 1)
        self._bank.update_node_mapping(names, env)

    @torch.no_grad()
    def act(self, obs: Mapping[str, Any], deterministic: bool = False) -> np.ndarray:
        """Moves for one observation ``-> (max_nodes,)`` or a batch ``-> (B, max_nodes)``.

        Raises `gnnrl.encoders.graph_batch.ObservationError` on missing keys or NaN/inf.
        """
        missing = [k for k in ("svc_df", "edge_df", "global_feats") if k not in obs]
        if missing:
            raise ObservationError(f"observation lacks key(s) {', '.join(missing)}")
        check_finite(obs)
        t, batched = obs_to_tensors(obs, self.device)
        bsz = t["svc_df"].shape[0]
        memory = None
        if self.tgn is not None:
            if self._bank is None or self._bank.num_envs != bsz:
                self._bank = self.new_memory(bsz)
            bank = self._bank  # no copies: the forward pass does not modify its inputs
            memory = (bank.memory, bank.last_update, bank.t + 1.0)
        if deterministic and type(self).forward is PPO_GNN.forward:
            # serving path: no log-prob, decided on the compact slots
            with torch.inference_mode():
                logits, _, new_memory, topo = self._forward_compact(t, memory)
                actions = self.decide(logits, topo.active)
                if topo.slots is not None:
                    actions = topo.slots.put(actions, actions.new_zeros(t["node_mask"].shape))
                new_memory = self._memory_to_slots(new_memory, topo)
        elif deterministic:  # a subclass with its own forward pass
            with torch.inference_mode():
                logits, _, new_memory = self(t, memory)
                actions = self.decide(logits, t["node_mask"])
        else:
            actions, _, _, new_memory = self.sample(t, memory, deterministic)
        if new_memory is not None and self._bank is not None and memory is not None:
            self._bank.commit(new_memory[0], new_memory[1], memory[2])
        out = actions.cpu().numpy().astype(np.int64)
        return out if batched else out[0]

    def decide(self, logits: Tensor, node_mask: Tensor) -> Tensor:
        """Deterministic moves from masked logits ``(B, N, 15)`` -> ``(B, N)`` int64.

        The arg-max move, unless it beats "nothing" (move 0) by no more than
        ``config.hold_margin`` in logit, or ``config.hold_margin_down`` for a removal (then
        the service holds); padded slots hold.
        """
        best = logits.argmax(-1)
        up = self.config.hold_margin
        down = up if self.config.hold_margin_down is None else self.config.hold_margin_down
        if up > 0.0 or down > 0.0:
            gain = logits.gather(-1, best.unsqueeze(-1)).squeeze(-1) - logits[..., 0]
            margin = torch.where(best > MAX_STEP, down, up)  # moves > MAX_STEP remove pods
            best = torch.where(gain > margin, best, 0)
        return torch.where(node_mask, best, 0)

    # -- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``weights.pt`` + ``config.json`` into the directory ``path`` (atomically)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in self.state_dict().items()}, buf)
        data = buf.getvalue()
        atomic_write_bytes(path / WEIGHTS_FILE, data)
        meta = {
            "format": "gnnrl-ppo-gnn",
            "observation_schema_version": gnnrl.OBSERVATION_SCHEMA_VERSION,
            "gnnrl_version": gnnrl.__version__,
            "weights_sha256": hashlib.sha256(data).hexdigest(),
            "policy": self.config.to_dict(),
            "control_interval_s": float(self.trained_interval_s),
            "extra": dict(extra or {}),
        }
        atomic_write_text(path / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> PPO_GNN:
        """Load a model saved by `save`.

        Raises:
            ObservationSchemaError: the model's observation schema differs from
                ``gnnrl.OBSERVATION_SCHEMA_VERSION``.
            ModelLoadError: missing files, hash mismatch, unreadable weights or a
                state_dict that does not fit the config.
        """
        path = Path(path)
        try:
            meta = json.loads((path / CONFIG_FILE).read_text())
            data = (path / WEIGHTS_FILE).read_bytes()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read model at {path}: {exc}") from exc
        version = meta.get("observation_schema_version")
        if version != gnnrl.OBSERVATION_SCHEMA_VERSION:
            raise ObservationSchemaError(
                f"model at {path} was trained on observation schema v{version}; this gnnrl "
                f"reads schema v{gnnrl.OBSERVATION_SCHEMA_VERSION} (it adds the SLO, the "
                f"dial, start-up times and load trends), so the model cannot be served: "
                f"retrain it (`gnnrl train`, or `--warm-start` from a v"
                f"{gnnrl.OBSERVATION_SCHEMA_VERSION} model)"
            )
        digest = hashlib.sha256(data).hexdigest()
        if meta.get("weights_sha256") != digest:
            raise ModelLoadError(f"{path / WEIGHTS_FILE}: SHA-256 mismatch (file corrupt?)")
        try:
            config = PolicyConfig.from_dict(meta["policy"])
            state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
            model = cls(config=config)
            model.load_state_dict(state, strict=True)
        except (KeyError, ConfigError, RuntimeError, ValueError, TypeError) as exc:
            raise ModelLoadError(f"cannot load model at {path}: {exc}") from exc
        model.trained_interval_s = float(meta.get("control_interval_s", cls.trained_interval_s))
        model.to(map_location)
        model.eval()
        return model

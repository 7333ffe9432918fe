"""The parameter-free part of the policy's inputs, computed once per PPO update.

A PPO update evaluates the same rollout ``update_epochs x num_minibatches`` times (16 times
with the defaults) on shuffled minibatches. Everything that does not depend on the
network's trainable weights is computed once for the whole rollout here (`prepare_update`)
and sliced per minibatch (`UpdateBatch.take`):

* the active slots of each observation, gathered in front (`SlotSelection`), and the
  scaled node, edge and global features (the `FeatureScaler` buffers are fitted once
  before training and do not change during an update);
* the call graph: per observation, the compact sender/receiver slot of each of its
  messages (forward messages caller -> callee, then their reverses) and which ones are
  kept (active edge between active slots), over the edge rows any observation uses;
* the TGN partner messages: for every node, the event that wins its `LastAggregator`
  (the traffic tie-break of `gnnrl.encoders.tgn_encoder`) and the data part of its
  message ``[memory[self], memory[partner], raw edge row]``, plus ``t - last_update``.
  Only the time encoding and the GRU (trainable) remain per minibatch.

`UpdateBatch.graph` lays a minibatch's messages out exactly as
`gnnrl.encoders.graph_batch.build_graph_batch` does (forward messages of all
observations in (observation, edge row) order, then the reverses), so PyG's scatter
reductions add in the same order as the per-minibatch path did.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from gnnrl.encoders.dense_graph import SlotSelection, select_active_slots
from gnnrl.encoders.features import FeatureScaler
from gnnrl.encoders.graph_batch import GraphBatch, edge_endpoints
from gnnrl.encoders.tgn_encoder import RAW_MSG_DIM


@dataclass
class UpdateBatch:
    """M observations of a rollout, ready for the policy's training forward pass.

    Shapes (k compact slots per observation, Ec edge rows, D memory width):
        x ``(M, k, NODE_DIM)`` scaled node features; active ``(M, k)`` bool;
        invalid ``(M, k, 15)`` bool, the moves whose probability is 0 (a padded slot may
        only take move 0, a row with every move invalid keeps move 0);
        glob ``(M, GLOBAL_DIM)`` scaled globals;
        ends ``(M, 2, Ec)`` long, compact slot of each edge row's caller (``[:, 0]``) and
        callee (``[:, 1]``); keep ``(M, Ec)`` bool, the row is an active edge between two
        active slots; edge ``(M, Ec, EDGE_DIM - 1)`` scaled edge rows;
        actions ``(M, k)`` long, the moves taken, in compact slots;
        memory ``(M, k, D)`` pre-step TGN memory; has_event ``(M, k)`` bool;
        event ``(M, k, 2 D + RAW_MSG_DIM)`` data part of each node's winning message
        (zeros without an event); event_dt ``(M, k, 1)`` steps since the node's last
        update. The four TGN fields are None without TGN. privileged ``(M, P)`` the
        critic's training-only inputs (None without an asymmetric critic).
    """

    x: Tensor
    active: Tensor
    invalid: Tensor
    glob: Tensor
    ends: Tensor
    keep: Tensor
    edge: Tensor
    actions: Tensor
    memory: Tensor | None = None
    has_event: Tensor | None = None
    event: Tensor | None = None
    event_dt: Tensor | None = None
    privileged: Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, idx: Tensor) -> UpdateBatch:
        """The observations ``idx`` ``(m,)`` (a minibatch)."""
        rows: dict[str, Any] = {f.name: None if getattr(self, f.name) is None
                                else getattr(self, f.name)[idx] for f in fields(self)}
        return UpdateBatch(**rows)

    def tensors(self) -> dict[str, Tensor]:
        """The fields that are set, by name (to ship to another process)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def graph(self) -> tuple[GraphBatch, Tensor]:
        """The disjoint graph of these observations and its message attributes.

        Node ``(b, i)`` is global node ``b * k + i``. Returns the `GraphBatch` (forward
        messages of all observations, then the reverses, as `build_graph_batch` orders
        them) and edge_attr ``(messages, EDGE_DIM)`` (scaled edge row + direction flag).
        """
        b, k = self.active.shape
        keep = self.keep.unsqueeze(0).expand(2, -1, -1)  # (2, B, Ec) direction first
        d, obs, row = torch.nonzero(keep, as_tuple=True)
        offset = obs * k
        src = self.ends[obs, d, row] + offset
        dst = self.ends[obs, 1 - d, row] + offset
        forward = (d == 0).to(self.edge.dtype)
        attr = torch.cat([self.edge[obs, row], forward.unsqueeze(-1)], -1)
        graph = GraphBatch(edge_index=torch.stack([src, dst]), edge_rows=row,
                           forward=forward, num_nodes=b * k)
        return graph, attr


def prepare_update(scaler: FeatureScaler, obs: dict[str, Tensor], actions: Tensor,
                   memory: tuple[Tensor, Tensor, Tensor] | None,
                   num_moves: int = 15) -> UpdateBatch:
    """Compute the `UpdateBatch` of a rollout (no gradients; call once per update).

    Shapes: obs tensors as from `gnnrl.encoders.graph_batch.obs_to_tensors` with batch M;
    actions ``(M, N)``; memory ``(memory (M, N, D), last_update (M, N), t (M,))`` pre-step,
    or None without TGN.
    """
    with torch.no_grad():
        node_mask = obs["node_mask"]
        m, n = node_mask.shape
        slots = select_active_slots(node_mask)
        if slots is None:  # every slot in use somewhere: the identity selection
            index = torch.arange(n, device=node_mask.device).expand(m, n)
            slots = SlotSelection(index=index, position=index)
        k = slots.index.shape[1]
        active = slots.take(node_mask)
        invalid = slots.take(obs["invalid_action_mask"].reshape(m, n, num_moves))
        invalid = invalid | ~active.unsqueeze(-1)
        stuck = invalid.all(-1)
        invalid[..., 0] &= ~stuck
        # edge rows: kept when active with both endpoints active, on the rows some
        # observation uses (as `gnnrl.encoders.dense_graph.build_dense_graph`)
        edge_df = obs["edge_df"]
        src, dst, in_range = edge_endpoints(edge_df, n)
        keep = (obs["edge_mask"] & in_range & torch.gather(node_mask, 1, src)
                & torch.gather(node_mask, 1, dst))
        rows = torch.nonzero(keep.any(0)).flatten()
        if rows.numel() == 0:
            rows = torch.zeros(1, dtype=torch.long, device=edge_df.device)
        keep = keep[:, rows]
        ends = torch.stack([torch.gather(slots.position, 1, src[:, rows]),
                            torch.gather(slots.position, 1, dst[:, rows])], 1)
        ends = ends.clamp_max(k - 1)  # dropped rows may point past k; never used
        edge = scaler.edge(edge_df[:, rows])
        out = UpdateBatch(x=scaler.node(slots.take(obs["svc_df"])), active=active,
                          invalid=invalid, glob=scaler.glob(obs["global_feats"]), ends=ends,
                          keep=keep, edge=edge, actions=slots.take(actions.long()),
                          privileged=obs.get("privileged"))
        if memory is None:
            return out
        mem, last = slots.take(memory[0]), slots.take(memory[1])
        out.memory = mem
        out.event_dt = (memory[2].unsqueeze(-1) - last).unsqueeze(-1)
        out.has_event, out.event = _winning_events(mem, ends, keep, edge[..., :RAW_MSG_DIM])
        return out


def _winning_events(memory: Tensor, ends: Tensor, keep: Tensor, raw: Tensor
                    ) -> tuple[Tensor, Tensor]:
    """Each node's `LastAggregator` event and the data part of its message.

    The rule of `gnnrl.encoders.tgn_encoder.DynamicTGNEncoder.memory_update`: a node's
    messages are its events as caller (message m < Ec) then as callee (Ec + m); the one
    with the highest traffic (scaled log qps, column 1 of the raw row) wins, the first one
    among equals. The data is gathered with one-hot products, which copy values exactly.

    Shapes: memory ``(M, k, D)``, ends ``(M, 2, Ec)``, keep ``(M, Ec)``, raw
    ``(M, Ec, RAW)`` -> has ``(M, k)`` bool, data ``(M, k, 2 D + RAW)``.
    """
    m, k, _ = memory.shape
    ec = keep.shape[1]
    nodes = torch.arange(k, device=memory.device)
    own_slot = ends.reshape(m, 2 * ec)  # the node each message is for
    owner = (own_slot.unsqueeze(-1) == nodes) & torch.cat([keep, keep], 1).unsqueeze(-1)
    owner = owner.to(memory.dtype)  # (M, 2Ec, k) one-hot
    own = owner @ memory  # (M, 2Ec, D)
    other = torch.cat([own[:, ec:], own[:, :ec]], 1)
    raw2 = torch.cat([raw, raw], 1)
    target = owner.transpose(1, 2) > 0.5  # (M, k, 2Ec)
    key = raw2[..., 1].unsqueeze(1).masked_fill(~target, float("-inf"))
    cand = (key >= key.amax(-1, keepdim=True)) & target
    pick = cand & (cand.cumsum(-1) == 1)
    data = pick.to(memory.dtype) @ torch.cat([own, other, raw2], -1)
    return cand.any(-1), data

"""Dense per-graph message passing: PyG's ``TransformerConv`` math on padded graphs.

The policy's graphs are small (``max_nodes`` = 20 slots, a few dozen calls), so the
sparse machinery of PyG (``propagate``, ``scatter``, per-edge ``index_select``) costs far
more in per-op overhead than the arithmetic itself. Here every observation keeps its own
``(N slots) x (Ec edge rows)`` incidence matrices and message passing is a handful of
batched matrix products:

* gathering per-edge node rows is ``incidence @ node_rows`` (a one-hot product, exact);
* the softmax over each node's incoming messages runs on a dense ``(N, 2 Ec)`` score
  matrix per head whose non-incoming entries are ``-inf``;
* aggregation is ``attention @ messages``.

Messages run both ways along each call, as in `gnnrl.encoders.graph_batch`: the forward
message of call ``e`` (caller -> callee) carries direction flag 1.0, its reverse (callee ->
caller) flag 0.0; message ``m < Ec`` is the forward message of edge row ``m`` and
``Ec + m`` its reverse.

`dense_transformer_conv` evaluates a ``TransformerConv`` module's own parameters (so the
saved ``state_dict`` is unchanged); ``tests/test_encoders_dense.py`` checks it against
``TransformerConv.forward`` on random graphs with cycles, self-calls, padding and stale
rows, values and gradients alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import TransformerConv

from gnnrl.encoders.graph_batch import edge_endpoints

#: additive attention bias of a non-edge: exp(-1e30 - x) is exactly 0 in float32
_FAR = -1e30


@dataclass
class DenseGraph:
    """B padded graphs as incidence matrices over the edge rows that any of them uses.

    Shapes:
        rows ``(Ec,)`` edge-row indices into ``edge_df[:, :, :]`` (Ec >= 1);
        keep ``(B, Ec)`` bool, the row is an active edge between two active slots;
        msg_src ``(B, 2 Ec, N)`` float one-hot: slot that sends message m (caller for
        m < Ec, callee for the reverse messages), all zero for dropped rows;
        msg_dst_mask ``(B, 1, N, 2 Ec)`` bool: slot i receives message m;
        msg_bias ``(B, 1, N, 2 Ec)`` float: 0 where slot i receives message m, -1e30 (an
        attention weight of exactly 0) elsewhere;
        no_incoming ``(B, N, 1, 1)`` bool: slot i receives no message at all;
        msg_for ``(B, N, 2 Ec)`` bool: message m is slot i's own event (i sends it), the
        TGN's per-node event set; has_event ``(B, N)`` bool: slot i has at least one.
    """

    rows: Tensor
    keep: Tensor
    msg_src: Tensor
    msg_dst_mask: Tensor
    msg_bias: Tensor
    no_incoming: Tensor
    msg_for: Tensor
    has_event: Tensor

    @property
    def num_rows(self) -> int:
        return int(self.rows.numel())


@dataclass
class SlotSelection:
    """The active slots of each observation first: rows ``0..k-1`` of a compact layout.

    Padded slots have no influence on active ones (they send and receive no messages), so
    the encoders may skip them: with 11 services in 20 slots that is 45 % less work.

    Shapes: index ``(B, k)`` slot of each compact row (active slots in slot order, then
    inactive ones where an observation has fewer than k); position ``(B, N)`` compact row
    of each slot (>= k for the slots left out).
    """

    index: Tensor
    position: Tensor

    def _expand(self, x: Tensor) -> Tensor:
        idx = self.index.view(*self.index.shape, *([1] * (x.dim() - 2)))
        return idx.expand(-1, -1, *x.shape[2:])

    def take(self, x: Tensor) -> Tensor:
        """Rows of the kept slots: ``(B, N, ...)`` -> ``(B, k, ...)``."""
        return x.gather(1, self._expand(x))

    def put(self, x: Tensor, fill: Tensor) -> Tensor:
        """Back to slots: ``(B, k, ...)`` into a copy of ``fill`` ``(B, N, ...)``."""
        return fill.scatter(1, self._expand(x), x)

    def remap_edges(self, edge_df: Tensor) -> Tensor:
        """``edge_df`` with its src/dst slot columns rewritten as compact rows.

        An endpoint outside ``0..N-1`` or left out of the selection becomes -1 (out of
        range), so `gnnrl.encoders.graph_batch.build_graph_batch` drops the edge, as it
        drops an edge to a padded slot. Shapes: ``(B, E, 7)`` -> ``(B, E, 7)``.
        """
        n = self.position.shape[1]
        ends = edge_df[..., :2].round().long()
        bad = (ends < 0) | (ends >= n)
        rows = torch.gather(self.position.unsqueeze(-1).expand(-1, -1, 2), 1, ends.clamp(0, n - 1))
        rows = rows.masked_fill(bad | (rows >= self.index.shape[1]), -1)
        return torch.cat([rows.to(edge_df.dtype), edge_df[..., 2:]], -1)


def select_active_slots(node_mask: Tensor) -> SlotSelection | None:
    """Active slots first (k = the most active slots of any observation); None if k = N.

    Shapes: node_mask ``(B, N)`` bool.
    """
    b, n = node_mask.shape
    k = max(int(node_mask.sum(1).max()), 1) if b else n
    if k >= n:
        return None
    order = torch.argsort((~node_mask).to(torch.int32), dim=1, stable=True)
    position = torch.empty_like(order).scatter_(
        1, order, torch.arange(n, device=order.device).expand(b, n))
    return SlotSelection(index=order[:, :k], position=position)


def build_dense_graph(edge_df: Tensor, edge_mask: Tensor, node_mask: Tensor,
                      slots: SlotSelection | None = None) -> DenseGraph:
    """Incidence matrices of the active edges (same edges as `build_graph_batch` keeps).

    An edge row is kept when it is active, both endpoint slots are in range and both are
    active; the rows no observation of the batch keeps are dropped (Ec >= 1 always).
    With ``slots``, the node axis is the compact one (k rows, `SlotSelection`).

    Shapes: edge_df ``(B, E, 7)`` (columns 0/1 = src/dst slot), edge_mask ``(B, E)`` bool,
    node_mask ``(B, N)`` bool.
    """
    n = node_mask.shape[1]
    src, dst, in_range = edge_endpoints(edge_df, n)
    keep = (edge_mask & in_range & torch.gather(node_mask, 1, src)
            & torch.gather(node_mask, 1, dst))
    rows = torch.nonzero(keep.any(0)).flatten()
    if rows.numel() == 0:  # no edge anywhere: one dropped row keeps the shapes non-empty
        rows = torch.zeros(1, dtype=torch.long, device=edge_df.device)
    keep = keep[:, rows]
    ends = torch.cat([src[:, rows], dst[:, rows]], 1)  # (B, 2Ec) caller then callee
    if slots is not None:
        ends = torch.gather(slots.position, 1, ends)
        n = slots.index.shape[1]
    nodes = torch.arange(n, device=edge_df.device)
    hit = (ends.unsqueeze(-1) == nodes) & torch.cat([keep, keep], 1).unsqueeze(-1)
    ec = rows.numel()
    # message m < Ec goes caller -> callee, message Ec + m callee -> caller
    msg_src = hit.to(edge_df.dtype)
    msg_dst = torch.cat([hit[:, ec:], hit[:, :ec]], 1)
    dst_mask = msg_dst.transpose(1, 2).unsqueeze(1)
    bias = torch.zeros_like(msg_src).transpose(1, 2).unsqueeze(1).masked_fill(~dst_mask, _FAR)
    msg_for = hit.transpose(1, 2)
    return DenseGraph(rows=rows, keep=keep, msg_src=msg_src, msg_dst_mask=dst_mask,
                      msg_bias=bias, no_incoming=~msg_dst.any(1)[:, :, None, None],
                      msg_for=msg_for, has_event=msg_for.any(-1))


def message_edge_attr(edge_feats: Tensor) -> Tensor:
    """Per-message edge attributes: the scaled edge row plus its direction flag.

    Shapes: edge_feats ``(B, Ec, EDGE_DIM - 1)`` -> ``(B, 2 Ec, EDGE_DIM)`` (forward
    messages flag 1.0, then the reverse messages flag 0.0).
    """
    b, ec, _ = edge_feats.shape
    flag = torch.cat([edge_feats.new_ones(b, ec, 1), edge_feats.new_zeros(b, ec, 1)], 1)
    return torch.cat([torch.cat([edge_feats, edge_feats], 1), flag], -1)


def dense_transformer_conv(conv: TransformerConv, x: Tensor, graph: DenseGraph,
                           msg_attr: Tensor,
                           projection: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """``conv(x, edge_index, edge_attr)`` of a PyG ``TransformerConv`` on dense graphs.

    Supports the configuration the encoders use: ``concat=True``, ``beta=False``,
    ``root_weight=True``, ``edge_dim`` set, no dropout at inference.

    ``projection``: `fused_projection` of ``conv`` computed beforehand (a caller that
    evaluates the same weights many times, e.g. decisions, caches it), else stacked here.

    Shapes: x ``(B, N, F)``, msg_attr ``(B, 2 Ec, EDGE_DIM)`` from `message_edge_attr`;
    returns ``(B, N, heads * out_channels)``.
    """
    heads, c = conv.heads, conv.out_channels
    hc = heads * c
    b, n, _ = x.shape
    weight, bias = projection if projection is not None else fused_projection(conv)
    proj = F.linear(x, weight, bias)  # (B, N, 4HC)
    # split, not slices: the backward pass concatenates the parts' gradients instead of
    # zero-filling a full-size buffer per slice
    query, kv, skip = proj.split([hc, 2 * hc, hc], -1)
    kv = graph.msg_src @ kv  # (B, 2Ec, 2HC) each message's sender's key and value
    edge = F.linear(msg_attr, conv.lin_edge.weight)  # (B, 2Ec, HC)
    m = kv.shape[1]
    key, value = (kv.view(b, m, 2, hc) + edge.unsqueeze(2)).view(b, m, 2, heads, c).unbind(2)
    key, value = key.transpose(1, 2), value.transpose(1, 2)  # (B, H, 2Ec, C)
    query = query.reshape(b, n, heads, c).transpose(1, 2)  # (B, H, N, C)
    # softmax(q.k / sqrt(C)) over each node's incoming messages (torch_geometric.utils.
    # softmax), then the attention-weighted sum of the messages: one fused kernel. A node
    # without incoming messages gets a uniform (meaningless) row, zeroed below, as PyG's
    # empty sum is zero.
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=graph.msg_bias,
        dropout_p=conv.dropout if conv.training else 0.0)
    out = out.transpose(1, 2).masked_fill(graph.no_incoming, 0.0).reshape(b, n, hc)
    return out + skip


def fused_projection(conv: TransformerConv) -> tuple[Tensor, Tensor]:
    """The query/key/value/skip weights ``(4 HC, F)`` and biases ``(4 HC,)`` of ``conv``
    stacked into one linear layer."""
    lins = (conv.lin_query, conv.lin_key, conv.lin_value, conv.lin_skip)
    return (torch.cat([lin.weight for lin in lins]), torch.cat([lin.bias for lin in lins]))

"""GNNEncoder: edge-aware message passing over the service call graph.

Each layer is a PyG ``TransformerConv`` with ``edge_dim`` (Shi et al., "Masked Label
Prediction", https://arxiv.org/abs/2009.03509; edge features enter keys and values), with
a residual connection and LayerNorm. Messages flow both ways along each call (caller ->
callee carries offered load, callee -> caller carries latency/back-pressure); a forward
flag in the edge features tells the two directions apart.

One set of weights serves any number of services: the encoder is permutation equivariant
over slots and never looks at ``max_nodes`` except to offset the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import TransformerConv

from gnnrl.encoders.dense_graph import DenseGraph, dense_transformer_conv
from gnnrl.encoders.features import EDGE_DIM, NODE_DIM
from gnnrl.encoders.graph_batch import GraphBatch
from gnnrl.encoders.narrow_linear import use_narrow_input_backward


class GNNEncoder(nn.Module):
    """Structural node embeddings from scaled node and edge features.

    Args:
        hidden_dim: embedding width H (divisible by ``heads``).
        num_layers: message-passing layers (2-3).
        heads: attention heads per layer (concatenated to H).

    Shapes:
        x ``(B * N, NODE_DIM)`` scaled node features; edge_attr ``(M, EDGE_DIM)``;
        returns ``(B * N, H)``.
    """

    def __init__(self, hidden_dim: int = 64, num_layers: int = 2, heads: int = 2,
                 node_dim: int = NODE_DIM, edge_dim: int = EDGE_DIM) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(node_dim, hidden_dim), nn.Tanh())
        self.convs = nn.ModuleList(
            TransformerConv(hidden_dim, hidden_dim // heads, heads=heads, edge_dim=edge_dim)
            for _ in range(num_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim) for _ in range(num_layers))
        for layer in (self.inp[0], *(conv.lin_edge for conv in self.convs)):
            assert isinstance(layer, nn.Module)  # lin_edge: a Linear, as edge_dim is set
            use_narrow_input_backward(layer)  # narrow inputs: faster weight gradient

    def forward(self, x: Tensor, graph: GraphBatch, edge_attr: Tensor) -> Tensor:
        h = self.inp(x)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = norm(h + torch.relu(conv(h, graph.edge_index, edge_attr)))
        return h

    def forward_dense(self, x: Tensor, graph: DenseGraph, msg_attr: Tensor,
                      projections: Sequence[tuple[Tensor, Tensor]] | None = None) -> Tensor:
        """`forward` on a `DenseGraph` (`gnnrl.encoders.dense_graph`): same weights, same math.

        Shapes: x ``(B, N, NODE_DIM)``, msg_attr ``(B, 2 Ec, EDGE_DIM)`` -> ``(B, N, H)``.
        """
        h = self.inp(x)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            proj = None if projections is None else projections[i]
            h = norm(h + torch.relu(dense_transformer_conv(conv, h, graph, msg_attr, proj)))
        return h

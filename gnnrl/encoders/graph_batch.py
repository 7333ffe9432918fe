"""Turn padded observation tensors into one disjoint PyG-style graph, with tensor ops only.

B observations of ``max_nodes`` slots become one graph of ``B * max_nodes`` nodes: node
``(b, i)`` is global node ``b * max_nodes + i``, and every active edge row's ``src``/``dst``
slot is offset by ``b * max_nodes``. No per-graph Python loop and no
``Batch.from_data_list``: collation is a handful of vectorised ops, so its cost stays a
small fraction of the forward pass (see ``benchmarks/bench_policy.py``).

Padded slots get no edges, so they neither send nor receive messages; an edge whose
endpoint slot is inactive (a stale row) is dropped as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gnnrl.contracts.observation import GLOBAL_DIM_RAW, NODE_DIM_RAW, OBSERVATION_SCHEMA_VERSION

#: the observation keys (`gnnrl.contracts.observation.OBS_KEYS`) the encoders read, with
#: their dtype on the model side (``num_nodes`` is not read: the masks carry it)
TENSOR_KEYS: dict[str, torch.dtype] = {
    "svc_df": torch.float32,
    "edge_df": torch.float32,
    "global_feats": torch.float32,
    "node_mask": torch.bool,
    "edge_mask": torch.bool,
    "invalid_action_mask": torch.bool,
}


class ObservationError(ValueError):
    """An observation is missing a key, has the wrong shape, or holds NaN/inf values."""


def obs_to_tensors(
    obs: Mapping[str, Any], device: torch.device | str = "cpu"
) -> tuple[dict[str, Tensor], bool]:
    """Convert a single or batched observation dict to batched tensors.

    Returns ``(tensors, batched)``; ``batched`` is False when ``svc_df`` was 2-D, in which
    case a leading batch axis of 1 was added.

    Shapes (returned): svc_df ``(B, N, 18)``, edge_df ``(B, E, 7)``, global_feats ``(B, 10)``
    (schema v2, `gnnrl.contracts.observation`),
    node_mask ``(B, N)`` bool, edge_mask ``(B, E)`` bool, invalid_action_mask
    ``(B, N * 15)`` bool (True = invalid).
    """
    missing = [k for k in TENSOR_KEYS if k not in obs]
    if missing:
        raise ObservationError(f"observation lacks key(s) {', '.join(missing)}")
    svc = np.asarray(obs["svc_df"])
    if svc.ndim not in (2, 3):
        raise ObservationError(f"svc_df must be (N, {NODE_DIM_RAW}) or (B, N, "
                               f"{NODE_DIM_RAW}), got {svc.shape}")
    widths = (("svc_df", svc.shape[-1], NODE_DIM_RAW),
              ("global_feats", np.shape(obs["global_feats"])[-1], GLOBAL_DIM_RAW))
    for key, width, want in widths:
        if width != want:
            raise ObservationError(
                f"{key} has {width} columns; observation schema "
                f"v{OBSERVATION_SCHEMA_VERSION} has {want} (was it built by an older "
                f"version of gnnrl?)")
    batched = svc.ndim == 3
    # host arrays go to a GPU through pinned memory, asynchronously (the first kernel
    # that reads them waits for the copy, the host does not)
    pinned = torch.device(device).type == "cuda"
    out: dict[str, Tensor] = {}
    for key, dtype in TENSOR_KEYS.items():
        value = obs[key]
        t = value if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))
        if pinned and t.device.type == "cpu":
            t = t.to(dtype).pin_memory().to(device, non_blocking=True)
        else:
            t = t.to(device=device, dtype=dtype)
        if not batched:
            t = t.unsqueeze(0)
        out[key] = t
    return out, batched


def check_finite(obs: Mapping[str, Any]) -> None:
    """Raise `ObservationError` naming the key and batch rows when a float input is NaN/inf.

    Takes the batched tensors of `obs_to_tensors` or the observation itself: numpy arrays
    are checked on the host (cheaper for one observation, and no device synchronisation
    when the tensors live on a GPU).
    """
    batched = len(obs["svc_df"].shape) == 3
    for key in ("svc_df", "edge_df", "global_feats"):
        value = obs[key]
        if isinstance(value, Tensor):
            if bool(torch.isfinite(value).all()):
                continue
            bad = ~torch.isfinite(value).cpu().numpy()
        else:
            value = np.asarray(value)
            if value.dtype.kind != "f" or np.isfinite(value).all():
                continue
            bad = ~np.isfinite(value)
        if not batched:
            bad = bad[None]  # a single observation: row 0
        rows = np.nonzero(bad.reshape(bad.shape[0], -1).any(1))[0].tolist()
        raise ObservationError(f"non-finite values in {key!r} of observation(s) {rows}")


@dataclass
class GraphBatch:
    """A disjoint union of B padded graphs.

    Shapes:
        edge_index ``(2, M)`` global node ids (forward edges then their reverses);
        edge_rows ``(M,)`` flat index into ``edge_df.reshape(B * E, 7)``;
        forward ``(M,)`` 1.0 for caller->callee, 0.0 for the reverse direction;
        num_nodes ``B * max_nodes``.
    """

    edge_index: Tensor
    edge_rows: Tensor
    forward: Tensor
    num_nodes: int


def edge_endpoints(edge_df: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """Source / destination slots of padded edge rows, clamped into ``[0, n)``, and
    whether both were in range. Shapes: edge_df ``(B, E, 7)`` -> three ``(B, E)``."""
    src = edge_df[..., 0].round().long()
    dst = edge_df[..., 1].round().long()
    in_range = (src >= 0) & (src < n) & (dst >= 0) & (dst < n)
    return src.clamp(0, n - 1), dst.clamp(0, n - 1), in_range


def build_graph_batch(edge_df: Tensor, edge_mask: Tensor, node_mask: Tensor,
                      reverse: bool = True) -> GraphBatch:
    """Offset each observation's active edges by ``b * max_nodes`` and stack them.

    Shapes:
        edge_df ``(B, E, 7)`` (columns 0/1 = src/dst slot), edge_mask ``(B, E)`` bool,
        node_mask ``(B, N)`` bool.
    """
    b = edge_df.shape[0]
    n = node_mask.shape[1]
    src, dst, in_range = edge_endpoints(edge_df, n)
    flat_mask = node_mask.reshape(-1)
    offset = (torch.arange(b, device=edge_df.device) * n).unsqueeze(1)
    gsrc = src + offset
    gdst = dst + offset
    keep = edge_mask & in_range & flat_mask[gsrc] & flat_mask[gdst]
    keep_flat = keep.reshape(-1)
    rows = torch.nonzero(keep_flat).flatten()
    s = gsrc.reshape(-1)[rows]
    d = gdst.reshape(-1)[rows]
    if reverse:
        edge_index = torch.stack([torch.cat([s, d]), torch.cat([d, s])])
        edge_rows = torch.cat([rows, rows])
        forward = torch.cat([torch.ones_like(s, dtype=edge_df.dtype),
                             torch.zeros_like(s, dtype=edge_df.dtype)])
    else:
        edge_index = torch.stack([s, d])
        edge_rows = rows
        forward = torch.ones_like(s, dtype=edge_df.dtype)
    return GraphBatch(edge_index=edge_index, edge_rows=edge_rows, forward=forward,
                      num_nodes=b * n)


@dataclass
class PoolMasks:
    """What `masked_pool` derives from the node mask alone (reusable while it holds).

    Shapes: weight ``(B, N, 1)`` 1.0 on active nodes; count ``(B, 1)`` active nodes (>= 1);
    inactive ``(B, N, 1)`` bool; any_active ``(B, 1)`` bool.
    """

    weight: Tensor
    count: Tensor
    inactive: Tensor
    any_active: Tensor


def pool_masks(node_mask: Tensor, dtype: torch.dtype = torch.float32) -> PoolMasks:
    """The `PoolMasks` of ``node_mask`` ``(B, N)`` bool."""
    weight = node_mask.unsqueeze(-1).to(dtype)
    return PoolMasks(weight=weight, count=weight.sum(1).clamp_min(1.0),
                     inactive=~node_mask.unsqueeze(-1), any_active=node_mask.any(1, keepdim=True))


def masked_pool(h: Tensor, node_mask: Tensor, masks: PoolMasks | None = None) -> Tensor:
    """Mean and max over active nodes.

    Shapes: h ``(B, N, H)``, node_mask ``(B, N)`` bool -> ``(B, 2H)``. An observation with
    no active node pools to zeros. ``masks``: `pool_masks` of ``node_mask``, when the caller
    keeps them.
    """
    m = masks if masks is not None else pool_masks(node_mask, h.dtype)
    mean = (h * m.weight).sum(1) / m.count
    mx = h.masked_fill(m.inactive, torch.finfo(h.dtype).min).amax(1)
    mx = torch.where(m.any_active, mx, torch.zeros_like(mx))
    return torch.cat([mean, mx], dim=-1)

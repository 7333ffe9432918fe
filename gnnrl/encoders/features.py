"""Feature scaling that lives inside the model, so training and serving see the same inputs.

The observation carries raw units (replicas, millicores, MiB, req/s, ms, ratios; see
``docs/internals.md``). Rates and resource usage span four orders of magnitude between a
quiet leaf service and a busy frontend, so every non-negative magnitude goes through
``log1p`` and is then standardised with a mean/std that are *buffers* of this module: they
are fitted once on the first rollout of a training run (`FeatureScaler.fit`) and saved in
the model's ``state_dict``. A model loaded by the scaler therefore applies exactly the
transform it was trained with.

Derived node features (computed from the raw row, so no extra observation field is
needed): the HPA pressure ``desired_replicas / num_pods`` (the HPA's own ratio
``ceil(current * metric / target)``, https://kubernetes.io/docs/tasks/run-application/
horizontal-pod-autoscale/#algorithm-details), CPU per pod, requests per pod, and the CPU
utilisation of the request (what the HPA targets; it carries across apps whose absolute
millicores differ).

Schema v2 columns (`gnnrl.contracts.observation`): pod counts, start-up time, CPU request
and limit and the bounds go through ``log1p``; the unserved share stays in 0..1; the SLO
share and slack are clamped to [0, 5]; each load trend becomes ``log`` of its ratio,
clamped to [-3, 3]; the dial and the time of day's sin/cos pass through.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnrl.contracts.observation import (
    EDGE_DIM_RAW,
    GLOBAL,
    GLOBAL_DIM_RAW,
    NODE,
    NODE_DIM_RAW,
    V1_GLOBAL_DIM,
    V1_NODE_DIM,
)

#: v2 node columns, grouped by their transform
_LOG_COLUMNS = [NODE[c] for c in ("ready", "starting", "startup_s", "cpu_request_m",
                                  "cpu_limit_m", "min_replicas", "max_replicas")]
_UNSERVED = NODE["unserved"]
_SLO_SHARE = NODE["slo_share"]
_TRENDS = [NODE["trend_1"], NODE["trend_4"], NODE["trend_16"]]

#: raw rows: `gnnrl.contracts.observation` NODE_COLUMNS / EDGE_COLUMNS / GLOBAL_COLUMNS
RAW_NODE_DIM = NODE_DIM_RAW
RAW_EDGE_DIM = EDGE_DIM_RAW
RAW_GLOBAL_DIM = GLOBAL_DIM_RAW

#: scaled node features: 6 log1p magnitudes + pressure + log1p(cpu/pod) + log1p(rps/pod)
#: + CPU utilisation of the request + the 12 v2 columns
NODE_DIM = 10 + (NODE_DIM_RAW - V1_NODE_DIM)
#: scaled edge features: active, log1p(qps), log1p(p95), err, mtls, forward flag
EDGE_DIM = 6
#: scaled globals: 4 log1p magnitudes + slack, dial, log1p(slo), log1p(interval), sin, cos
GLOBAL_DIM = GLOBAL_DIM_RAW

_CLAMP = 10.0
#: scaled-global index -> (mean, std) set rather than fitted (see `FeatureScaler.fit`)
_FIXED_GLOBALS = {GLOBAL["dial"]: (0.5, 12 ** -0.5), GLOBAL["tod_sin"]: (0.0, 0.5 ** 0.5),
                  GLOBAL["tod_cos"]: (0.0, 0.5 ** 0.5)}
#: raw node columns divided by the pod count: desired replicas, cpu_m, rx_rps
_PER_POD_COLUMNS = [1, 2, 4]


def _safe_log1p(x: Tensor) -> Tensor:
    return torch.log1p(x.clamp_min(0.0))


class FeatureScaler(nn.Module):
    """log1p + standardisation of node, edge and global features (buffers, saved with the model).

    Shapes:
        node ``(..., RAW_NODE_DIM)`` -> ``(..., NODE_DIM)``; edge values ``(..., 7)`` ->
        ``(..., EDGE_DIM - 1)`` (the direction flag is appended by the encoder);
        globals ``(..., RAW_GLOBAL_DIM)`` -> ``(..., GLOBAL_DIM)``.
    """

    # buffers (registered in __init__), declared so they type as tensors
    node_mean: Tensor
    node_std: Tensor
    edge_mean: Tensor
    edge_std: Tensor
    global_mean: Tensor
    global_std: Tensor
    fitted: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("node_mean", torch.zeros(NODE_DIM))
        self.register_buffer("node_std", torch.ones(NODE_DIM))
        self.register_buffer("edge_mean", torch.zeros(EDGE_DIM - 1))
        self.register_buffer("edge_std", torch.ones(EDGE_DIM - 1))
        self.register_buffer("global_mean", torch.zeros(GLOBAL_DIM))
        self.register_buffer("global_std", torch.ones(GLOBAL_DIM))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    # -- raw -> log space --------------------------------------------------------------
    @staticmethod
    def node_log(svc: Tensor) -> Tensor:
        """Raw node rows ``(..., RAW_NODE_DIM)`` -> log-space features ``(..., NODE_DIM)``."""
        per_pod = svc[..., 0:1].clamp_min(1.0)
        # desired, cpu and rps per pod, >= 0 (per_pod >= 1 keeps the sign, so clamping
        # before or after the division is the same): pressure clamp(0, 10), the others log1p
        ratios = (svc[..., _PER_POD_COLUMNS] / per_pod).clamp_min(0.0)
        request = svc[..., NODE["cpu_request_m"]:NODE["cpu_request_m"] + 1]
        util = (ratios[..., 1:2] / request.clamp_min(1.0)).clamp(0.0, 5.0)
        return torch.cat([_safe_log1p(svc[..., :V1_NODE_DIM]),
                          ratios[..., 0:1].clamp_max(10.0), torch.log1p(ratios[..., 1:3]),
                          util, _safe_log1p(svc[..., _LOG_COLUMNS]),
                          svc[..., _UNSERVED:_UNSERVED + 1].clamp(0.0, 1.0),
                          svc[..., _SLO_SHARE:_SLO_SHARE + 1].clamp(0.0, 5.0),
                          torch.log(svc[..., _TRENDS].clamp_min(1e-3)).clamp(-3.0, 3.0)],
                         dim=-1)

    @staticmethod
    def edge_log(edge: Tensor) -> Tensor:
        """Raw edge rows ``(..., 7)`` -> ``(..., EDGE_DIM - 1)`` (src/dst indices dropped)."""
        return torch.cat(
            [
                edge[..., 2:3],
                _safe_log1p(edge[..., 3:4]),
                _safe_log1p(edge[..., 4:5]),
                edge[..., 5:7].clamp(0.0, 1.0),
            ],
            dim=-1,
        )

    @staticmethod
    def global_log(glob: Tensor) -> Tensor:
        """Raw globals ``(..., RAW_GLOBAL_DIM)`` -> ``(..., GLOBAL_DIM)``: the v1 magnitudes,
        the SLO and the interval through log1p; slack clamped to [0, 5]; the dial and the
        time of day as they are."""
        v1 = V1_GLOBAL_DIM
        return torch.cat([_safe_log1p(glob[..., :v1]), glob[..., v1:v1 + 1].clamp(0.0, 5.0),
                          glob[..., v1 + 1:v1 + 2], _safe_log1p(glob[..., v1 + 2:v1 + 4]),
                          glob[..., v1 + 4:v1 + 6]], dim=-1)

    # -- standardised ------------------------------------------------------------------
    def node(self, svc: Tensor) -> Tensor:
        return ((self.node_log(svc) - self.node_mean) / self.node_std).clamp(-_CLAMP, _CLAMP)

    def edge(self, edge: Tensor) -> Tensor:
        return ((self.edge_log(edge) - self.edge_mean) / self.edge_std).clamp(-_CLAMP, _CLAMP)

    def glob(self, glob: Tensor) -> Tensor:
        return ((self.global_log(glob) - self.global_mean) / self.global_std).clamp(
            -_CLAMP, _CLAMP
        )

    @torch.no_grad()
    def fit(self, svc: Tensor, node_mask: Tensor, edge: Tensor, edge_mask: Tensor,
            glob: Tensor) -> None:
        """Fit the standardisation on a batch of observations (active rows only).

        Shapes:
            svc ``(B, N, RAW_NODE_DIM)``, node_mask ``(B, N)``, edge ``(B, E, 7)``,
            edge_mask ``(B, E)``, glob ``(B, RAW_GLOBAL_DIM)``.
        """
        nodes = self.node_log(svc)[node_mask.bool()]
        edges = self.edge_log(edge)[edge_mask.bool()]
        globs = self.global_log(glob).reshape(-1, GLOBAL_DIM)
        for rows, mean, std in (
            (nodes, self.node_mean, self.node_std),
            (edges, self.edge_mean, self.edge_std),
            (globs, self.global_mean, self.global_std),
        ):
            if rows.shape[0] < 2:
                continue
            mean.copy_(rows.mean(0))
            # A constant column (e.g. mtls always 1) keeps unit scale rather than exploding.
            std.copy_(rows.std(0).clamp_min(0.1))
        # Inputs whose range is known are not fitted on a few episodes' draws: the dial is
        # uniform on [0, 1], the time of day a point on the unit circle.
        for k, (mean_k, std_k) in _FIXED_GLOBALS.items():
            self.global_mean[k], self.global_std[k] = mean_k, std_k
        self.fitted.fill_(True)

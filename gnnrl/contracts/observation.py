"""The observation contract (schema v2): keys, column order, units and the dial's place.

Every producer (the simulator env, the batched training pool, the real-cluster env, the
in-cluster scaler) lays out exactly these columns, and every consumer (the model's feature
scaling, the MLflow signature, the scaler's range checks) reads them by these names.
docs/observation.md says where each one comes from on a real cluster.

Schema history:
    1: the seed's 6 node columns and 4 globals.
    2: 12 node columns and 6 globals appended (SLO slack, ready vs starting pods, start-up
       time, CPU request and limit, bounds, unserved share, load trend; the dial, the SLO,
       the control interval and the time of day). A model trained on v1 is refused.
"""

from __future__ import annotations

#: Version of the observation layout (feature order, units, shapes). A model records the
#: version it was trained with; loading one with another version is refused.
OBSERVATION_SCHEMA_VERSION = 2

#: Per-service columns of ``svc_df`` (float32), in order. Units:
#:   num_pods: pods that exist (starting included); desired_replicas: HPA's formula at the
#:   observation's CPU target; cpu_m: millicores, all pods; mem_mi: MiB, all pods;
#:   rx_rps / tx_rps: HTTP/gRPC req/s received / sent; ready / starting: pods serving /
#:   created but not Ready; startup_s: seconds from pod creation to Ready; cpu_request_m /
#:   cpu_limit_m: per pod, millicores; min_replicas / max_replicas: the bounds (the current
#:   count for a service the policy does not own); unserved: share (0..1) of the requests
#:   into the service that the mesh saw fail in the interval (errors, rejections and
#:   timeouts, qps-weighted over its incoming calls; queued requests show only once they
#:   time out); slo_share: the service's p95 as a share of the end-to-end SLO (the largest
#:   p95 of its incoming request-level edges; the entry service: the end-to-end p95);
#:   trend_K: (rx now + 1) / (rx K intervals ago + 1), 1 when that past is unknown.
NODE_COLUMNS: tuple[str, ...] = (
    "num_pods", "desired_replicas", "cpu_m", "mem_mi", "rx_rps", "tx_rps",
    "ready", "starting", "startup_s", "cpu_request_m", "cpu_limit_m",
    "min_replicas", "max_replicas", "unserved", "slo_share",
    "trend_1", "trend_4", "trend_16",
)
#: The seed's (schema v1) node columns come first.
V1_NODE_DIM = 6
#: How many intervals back the load-trend columns look.
TREND_LAGS: tuple[int, ...] = (1, 4, 16)

#: Per-edge columns of ``edge_df`` (float32): slots of the caller and callee, 1 = real,
#: req/s, p95 (ms), error share (0..1), mTLS share (0..1).
EDGE_COLUMNS: tuple[str, ...] = ("src", "dst", "active", "qps", "p95_ms", "err_rate", "mtls")

#: ``global_feats`` (float32), in order: total pods; CPU millicores and memory MiB per
#: pod; entry req/s; slo_slack: end-to-end p95 / SLO; dial: the operator's preference in
#: [0, 1] (0 = cheapest, 1 = safest); slo_ms: the end-to-end p95 objective; interval_s:
#: the control interval; tod_sin / tod_cos: time of day (UTC) on the unit circle.
GLOBAL_COLUMNS: tuple[str, ...] = (
    "total_pods", "avg_cpu_m", "avg_mem_mi", "entry_rps",
    "slo_slack", "dial", "slo_ms", "interval_s", "tod_sin", "tod_cos",
)
V1_GLOBAL_DIM = 4

NODE_DIM_RAW = len(NODE_COLUMNS)
EDGE_DIM_RAW = len(EDGE_COLUMNS)
GLOBAL_DIM_RAW = len(GLOBAL_COLUMNS)

#: Index of each column, by name.
NODE = {name: k for k, name in enumerate(NODE_COLUMNS)}
GLOBAL = {name: k for k, name in enumerate(GLOBAL_COLUMNS)}
#: Where the dial sits in ``global_feats``: a serving policy writes its setting here.
DIAL_INDEX = GLOBAL["dial"]

#: The observation dict's keys.
OBS_KEYS: tuple[str, ...] = ("svc_df", "edge_df", "global_feats", "node_mask", "edge_mask",
                             "num_nodes", "invalid_action_mask")

#: The dial a model serves at when nobody sets one (the middle of the trade-off).
DEFAULT_DIAL = 0.5


def check_dial(value: object) -> float:
    """`value` as a float in [0, 1]; ValueError naming the dial otherwise."""
    try:
        dial = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"dial must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= dial <= 1.0:
        raise ValueError(f"dial must be in [0, 1] (0 = cheapest, 1 = safest), got {value!r}")
    return dial

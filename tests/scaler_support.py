"""Shared fixtures of the scaler tests: a fake cluster over `FakeKubernetes`, model folders
and scripted policies (fakes at the model boundary)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from gnnrl.scaler.clock import FakeClock
from gnnrl.scaler.config import ScalerConfig
from gnnrl.scaler.events import EventRecorder
from gnnrl.scaler.kube import KubeCluster
from gnnrl.scaler.loop import Scaler
from gnnrl.scaler.model_source import LoadedModel, ModelUnavailable
from gnnrl.testing.k8s_fake import FakeKubernetes

NS = "shop"
#: server container 100m + istio-proxy 10m = 110m request per pod in FakeKubernetes
REQUEST_M = 110.0


def usage_for(utilization: float) -> float:
    """server-container CPU per pod (millicores) giving `utilization` of the pod request
    (the fake adds a 5m sidecar)."""
    return utilization * REQUEST_M - 5.0


def fake_cluster(kube: FakeKubernetes, deployments: dict[str, tuple[int, float | None]]) -> None:
    """Create Deployments: name -> (replicas, utilization of the request or None = no metrics)."""
    for name, (replicas, util) in deployments.items():
        kube.add_deployment(name, NS, replicas=replicas)
        if util is not None:
            kube.set_usage(name, NS, cpu_m_per_pod=usage_for(util), mem_mi_per_pod=80)


def config(services: dict[str, tuple[int, int]], **kw: Any) -> ScalerConfig:
    base: dict[str, Any] = {"namespace": NS, "mode": "active", "api_timeout_s": 0.3,
                            "api_backoff_s": (0.5, 1.0, 2.0), "interval_s": 15.0,
                            "services": {n: {"min_replicas": lo, "max_replicas": hi}
                                         for n, (lo, hi) in services.items()}}
    base.update(kw)
    return ScalerConfig.from_dict(base)


def scaler_for(kube: FakeKubernetes, cfg: ScalerConfig, clock: FakeClock | None = None,
               models: Any = None, graph: Any = None, elector: Any = None) -> Scaler:
    clock = clock or FakeClock()
    api = kube.api_client()
    cluster = KubeCluster(api, cfg.namespace, cfg.api_timeout_s, graph=graph)
    events = EventRecorder(api if cfg.mode == "active" else None, cfg.namespace, "test")
    s = Scaler(cfg, cluster, clock, models=models, events=events, elector=elector)
    s.start()
    return s


def scale_requests(kube: FakeKubernetes, method: str, name: str | None = None) -> list[Any]:
    return [r for r in kube.requests if r.method == method and r.path.endswith("/scale")
            and (name is None or f"/deployments/{name}/" in r.path)]


class ScriptedPolicy:
    """A model fake: returns scripted outputs in order (the last one repeats) and counts
    its calls. An output is a callable(obs) -> moves, or a fixed array."""

    def __init__(self, *outputs: Any) -> None:
        self.outputs = list(outputs)
        self.calls = 0

    def act(self, obs: dict[str, Any], deterministic: bool = True) -> Any:
        out = self.outputs[min(self.calls, len(self.outputs) - 1)]
        self.calls += 1
        return out(obs) if callable(out) else out


def hold(obs: dict[str, Any]) -> np.ndarray:
    return np.zeros(len(obs["node_mask"]), dtype=np.int64)


def nan_output(obs: dict[str, Any]) -> np.ndarray:
    return np.full(len(obs["node_mask"]), np.nan)


@dataclasses.dataclass
class StaticModels:
    """A model source that always has the same model (or none, with `error`)."""

    current: LoadedModel | None
    error: ModelUnavailable | None = None

    def poll(self) -> bool:
        return False


def static_models(policy: Any) -> StaticModels:
    return StaticModels(LoadedModel(policy, "test://scripted", "1", "0" * 64))


def save_tiny_model(path: Path) -> Path:
    """A real (untrained) PPO_GNN saved with `PPO_GNN.save`: weights.pt + config.json."""
    import torch

    from gnnrl.core.agents.configs import PolicyConfig
    from gnnrl.core.agents.ppo_gnn import PPO_GNN

    torch.manual_seed(0)
    PPO_GNN(config=PolicyConfig(hidden_dim=16)).save(path)
    return path


def edit_model_config(path: Path, **changes: Any) -> None:
    meta = json.loads((path / "config.json").read_text())
    meta.update(changes)
    (path / "config.json").write_text(json.dumps(meta))


def graph_of(rps: dict[str, float], edges: tuple[tuple[str, str, float], ...] = (),
             entry_p95_ms: float = 20.0) -> Any:
    """A graph source (what Kiali/Prometheus give) returning fixed traffic: service -> req/s;
    the first service is the entry, called by the ingress gateway at its req/s and
    answering in `entry_p95_ms`."""
    import pandas as pd

    from gnnrl.data.snapshot import EDGE_COLUMNS, NODE_COLUMNS, GraphSnapshot

    def source(deadline: float | None = None) -> GraphSnapshot:
        nodes = pd.DataFrame([(n, np.nan, np.nan, np.nan, np.nan, 1.0, 1.0, r)
                              for n, r in rps.items()], columns=list(NODE_COLUMNS))
        entry = next(iter(rps))
        rows = [("istio-ingressgateway.istio-system", entry, "http", rps[entry],
                 entry_p95_ms, 0.0, 1.0)]
        e = pd.DataFrame(rows + [(s, d, "grpc", q, 12.0, 0.0, 1.0) for s, d, q in edges],
                         columns=list(EDGE_COLUMNS))
        return GraphSnapshot(pd.Timestamp("2026-01-01", tz="UTC"), NS, nodes, e)

    return source

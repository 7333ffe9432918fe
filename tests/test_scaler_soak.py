"""Soak: thousands of ticks of the closed loop (`--sim`) with randomly injected faults.

Invariants: no crash; every write inside [min, max]; zero writes in shadow mode; the
fallback is entered only after N consecutive unhealthy ticks and left only after M
consecutive healthy ones, and the model is never used on an unhealthy tick. The default run
does 500 ticks; the 10,000-tick run is marked slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scaler_support import save_tiny_model, static_models

from gnnrl.scaler.clock import FakeClock
from gnnrl.scaler.config import ScalerConfig
from gnnrl.scaler.loop import Scaler, run_forever
from gnnrl.scaler.sim_cluster import SimCluster, SimFaults

FAULTS = SimFaults(conflict=0.05, throttle=0.03, unavailable=0.03, read_unavailable=0.02,
                   missing_pod_metrics=0.05, nan_metrics=0.01, graph_fail=0.02,
                   hand_zero=0.002, hand_restore=0.1, hand_out_of_bounds=0.004,
                   retry_after_s=2.0)
N_FAIL, M_HEAL = 2, 4


class FlakyPolicy:
    """A real model whose output goes bad (NaN) in random bursts: the model-side fault."""

    def __init__(self, inner, seed: int) -> None:
        self.inner, self.rng, self.broken_for = inner, np.random.default_rng(seed), 0

    def act(self, obs, deterministic=True):
        if self.broken_for == 0 and self.rng.random() < 0.02:
            self.broken_for = int(self.rng.integers(1, 8))
        out = self.inner.act(obs, deterministic=deterministic)
        if self.broken_for:
            self.broken_for -= 1
            return np.full(np.shape(out), np.nan)
        return out

    def __getattr__(self, name):  # reset_memory / update_node_mapping of the real model
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `gnnrl scaler run` does (--torch-threads 1)
    yield save_tiny_model(tmp_path_factory.mktemp("soak") / "model")
    torch.set_num_threads(threads)


def soak(model_dir: Path, ticks: int, mode: str, seed: int):
    from gnnrl.core.agents.ppo_gnn import PPO_GNN

    clock = FakeClock(0.0)
    cluster = SimCluster("onlineboutique", clock, faults=FAULTS, seed=seed)
    cfg = ScalerConfig(namespace="sim", source="sim", mode=mode,
                       fallback_after_failures=N_FAIL, recover_after_healthy=M_HEAL,
                       services={n: {"min_replicas": lo, "max_replicas": hi}
                                 for n, (lo, hi) in cluster.limits.items()})
    policy = FlakyPolicy(PPO_GNN.load(model_dir), seed)
    scaler = Scaler(cfg, cluster, clock, models=static_models(policy))
    scaler.start()
    reports = []
    assert run_forever(scaler, clock, lambda: False, max_ticks=ticks,
                       on_tick=reports.append) == ticks
    return cfg, cluster, reports


def check_fallback_hysteresis(reports) -> tuple[int, int]:
    healthy = [r.healthy for r in reports]
    entered = left = 0
    for i, r in enumerate(reports):
        if r.mode == "model":
            assert healthy[i], f"tick {i}: model used on an unhealthy tick"
        if r.transition is None:
            continue
        if r.transition.kind == "entered":
            entered += 1
            assert i + 1 >= N_FAIL and not any(healthy[i - N_FAIL + 1: i + 1]), i
        else:
            left += 1
            assert i + 1 >= M_HEAL and all(healthy[i - M_HEAL + 1: i + 1]), i
    return entered, left


def run_soak(model_dir: Path, ticks: int, seed: int) -> None:
    cfg, cluster, reports = soak(model_dir, ticks, "active", seed)
    assert cluster.writes, "the loop never scaled anything"
    for t, name, replicas in cluster.writes:
        lim = cfg.services[name]
        assert lim.min_replicas <= replicas <= lim.max_replicas, (t, name, replicas)
    entered, left = check_fallback_hysteresis(reports)
    assert entered >= 1 and left >= 1
    modes = {r.mode for r in reports}
    assert modes == {"model", "rule", "hold"}  # hold: a NaN output while the model led
    statuses = {s.result.status for r in reports for s in r.services.values() if s.result}
    assert {"written", "conflict"} <= statuses | {"conflict"}
    skipped = {s.skipped for r in reports for s in r.services.values()}
    assert "scaling_disabled" in skipped  # hands off after a hand-made 0 happened

    _, shadow_cluster, shadow_reports = soak(model_dir, ticks // 5, "shadow", seed)
    assert shadow_cluster.writes == []
    assert any(s.skipped == "shadow" for r in shadow_reports for s in r.services.values())


def test_soak_500_ticks_with_faults_keeps_every_invariant(model_dir):
    run_soak(model_dir, 500, seed=1)


@pytest.mark.slow
def test_soak_10000_ticks_with_faults_keeps_every_invariant(model_dir):
    run_soak(model_dir, 10_000, seed=2)


def test_services_that_come_and_go_remap_the_model_memory_in_the_closed_loop(model_dir):
    from gnnrl.core.agents.ppo_gnn import PPO_GNN

    clock = FakeClock(0.0)
    cluster = SimCluster("onlineboutique", clock, seed=3)
    cfg = ScalerConfig(namespace="sim", source="sim", mode="active", recover_after_healthy=1,
                       services={n: {"min_replicas": lo, "max_replicas": hi}
                                 for n, (lo, hi) in cluster.limits.items()})
    policy = PPO_GNN.load(model_dir)
    scaler = Scaler(cfg, cluster, clock, models=static_models(policy))
    scaler.start()
    run_forever(scaler, clock, lambda: False, max_ticks=5)
    slots = dict(scaler.space.node_mapping)
    assert policy._bank.names[0] == scaler.space.slot_names()
    cluster.remove_service("adservice")
    reports = []
    run_forever(scaler, clock, lambda: False, max_ticks=5, on_tick=reports.append)
    assert "adservice" not in scaler.space.node_mapping
    assert "adservice" not in policy._bank.names[0]  # the TGN memory followed the mapping
    assert all(scaler.space.node_mapping[n] == slots[n] for n in scaler.space.node_mapping)
    assert "adservice" not in reports[-1].services  # 404: skipped, nothing written
    assert reports[-1].mode == "model"  # the rest of the graph is still scaled by the model
    cluster.add_service("adservice")
    run_forever(scaler, clock, lambda: False, max_ticks=3)
    assert "adservice" in scaler.space.node_mapping
    assert policy._bank.names[0] == scaler.space.slot_names()
    for _, name, replicas in cluster.writes:
        lim = cfg.services[name]
        assert lim.min_replicas <= replicas <= lim.max_replicas

"""Policy speed: decision latency and end-to-end training throughput, beside an MLP reference.

Run:  python benchmarks/bench_policy.py [--decisions 500] [--updates 3]

Measures, in one run:
  1. decision latency of `PPO_GNN.act` (TGN on, deterministic) on a 20-service graph with
     31 call edges, one observation at a time on one thread: p50 / p99 in ms; beside it an
     MLP of the same width (64) on the flattened observation through the same masking and
     act path (the reference);
  2. end-to-end training env-steps/s (rollout in 8 OnlineBoutique envs + PPO update,
     torch on --threads threads, default 2) for PPO_GNN with TGN, beside the same
     trainer driving the MLP reference, and beside the env alone stepping with random
     valid moves (the ceiling any policy can reach with these envs). Each is measured
     with both env pools of the trainer (``TrainConfig.env_pool``): "single" (8 Gymnasium
     envs, `EnvPool`, the default) and "batched" (the 8 episodes as rows of one batched
     simulator, `gnnrl.core.agents.sim_pool.SimPool`).
Goals: (1) p50 <= 1 ms, p99 <= 5 ms; (2) >= 1,500 env-steps/s and >= 0.4x the MLP.
``gnnrl benchmark policy|train --json`` runs the same measurements with JSON output.

Numbers on a shared 2-core VM swing by +-30 % with the load of the other tenants; compare
rows of one run (the MLP reference rows are measured in the same run for that reason), and
prefer --threads 1 when another process is busy (two torch threads on one free core stall
each other). Measurements and what they mean: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass

os.environ.setdefault("OMP_NUM_THREADS", "2")
# Run from a checkout: prefer the repository's package over a stale editable install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import torch
from torch import Tensor, nn

from gnnrl.core.agents.configs import PolicyConfig, PPOConfig
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.core.agents.rollout import EnvPool
from gnnrl.core.agents.train import TrainConfig, train
from gnnrl.encoders.features import GLOBAL_DIM, NODE_DIM
from gnnrl.testing.observation import make_observation


class MLPReference(PPO_GNN):
    """Same interface, width and masking as PPO_GNN, but an MLP on the flattened slots."""

    def __init__(self, obs_space=None, action_space=None, use_tgn=None, config=None):
        super().__init__(obs_space, action_space, use_tgn=False, config=config)
        cfg = self.config
        n, h = cfg.max_nodes, cfg.hidden_dim
        self.gnn, self.tgn, self.pool, self.head = None, None, None, None
        self.body = nn.Sequential(nn.Linear(n * NODE_DIM + GLOBAL_DIM, h), nn.Tanh(),
                                  nn.Linear(h, h), nn.Tanh())
        self.pi = nn.Linear(h, n * cfg.num_moves)
        self.v = nn.Linear(h, 1)

    def forward(self, t, memory) -> tuple[Tensor, Tensor, None]:
        svc, mask = t["svc_df"], t["node_mask"]
        x = self.scaler.node(svc) * mask.unsqueeze(-1)
        z = self.body(torch.cat([x.flatten(1), self.scaler.glob(t["global_feats"])], -1))
        logits = self.pi(z).reshape(svc.shape[0], svc.shape[1], -1)
        return self.mask_logits(logits, t["invalid_action_mask"], mask), \
            self.v(z).squeeze(-1), None

    def prepare_update(self, t, memory, actions) -> RawUpdateBatch:
        return RawUpdateBatch(dict(t), actions)

    def evaluate_update(self, b: RawUpdateBatch, temperature: float = 1.0
                        ) -> tuple[Tensor, Tensor, Tensor]:
        if temperature != 1.0:
            raise NotImplementedError("the MLP reference is benchmarked at temperature 1")
        return self.evaluate_actions(b.obs, b.actions, None)


@dataclass
class RawUpdateBatch:
    """The PPO update's minibatch source for `MLPReference`: plain observation tensors (the
    GNN's per-update precomputation does not apply to it)."""

    obs: dict[str, Tensor]
    actions: Tensor

    @property
    def active(self) -> Tensor:
        return self.obs["node_mask"]

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def take(self, idx: Tensor) -> RawUpdateBatch:
        return RawUpdateBatch({k: v[idx] for k, v in self.obs.items()}, self.actions[idx])


def graph_20(seed: int = 0) -> dict:
    """A 20-service observation: a random call DAG with 31 edges."""
    rng = np.random.default_rng(seed)
    nodes = np.column_stack([rng.integers(1, 8, 20), rng.integers(1, 8, 20),
                             rng.uniform(50, 900, 20), rng.uniform(60, 400, 20),
                             rng.uniform(5, 300, 20), rng.uniform(0, 300, 20)])
    edges = [(i - 1, i, *rng.uniform(5, 200, 2), 0.0, 1.0) for i in range(1, 20)]
    while len(edges) < 31:
        a, b = sorted(rng.choice(20, 2, replace=False))
        if all((e[0], e[1]) != (a, b) for e in edges):
            edges.append((a, b, *rng.uniform(5, 200, 2), 0.01, 1.0))
    return make_observation(nodes, edges)


def latency_ms(model: PPO_GNN, obs: dict, n: int, warmup: int = 30) -> tuple[float, float]:
    """p50 and p99 of ``model.act(obs, deterministic=True)`` in ms, observation conversion
    included (what the scaler pays per decision)."""
    model.eval()
    for _ in range(warmup):
        model.act(obs, deterministic=True)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        model.act(obs, deterministic=True)
        times.append(time.perf_counter() - t0)
    p50, p99 = np.percentile(times, [50, 99]) * 1e3
    return float(p50), float(p99)


def train_sps(policy_cls: type[PPO_GNN], updates: int, threads: int,
              env_pool: str = "single", num_steps: int = 120, device: str = "cpu",
              learner_processes: int = 1) -> float:
    """Median env-steps/s over ``updates`` updates of 8 envs x ``num_steps`` (rollout +
    PPO update, as `gnnrl train` runs them; setup excluded)."""
    cfg = TrainConfig(seed=11, eval_every=0, checkpoint_every=0, torch_threads=threads,
                      env_pool=env_pool, device=device, learner_processes=learner_processes,
                      ppo=PPOConfig(total_steps=8 * num_steps * 100, num_envs=8,
                                    num_steps=num_steps))
    with tempfile.TemporaryDirectory() as out:
        train(cfg, out, resume=False, progress=False, stop_after_updates=updates,
              policy_cls=policy_cls)
        with open(os.path.join(out, "metrics.jsonl")) as fh:
            rows = [json.loads(line) for line in fh]
    return float(np.median([r["sps"] for r in rows]))


def env_sps(steps: int = 120, env_pool: str = "single") -> float:
    from gnnrl.core.agents.sim_pool import SimPool
    from gnnrl.core.envs import OnlineBoutique
    from gnnrl.sim import Scenario

    if env_pool == "batched":
        pool = SimPool(8, run_seed=11, scenarios=[Scenario("diurnal", "diurnal", 100.0)])
    else:
        pool = EnvPool([lambda: OnlineBoutique(trace="diurnal")] * 8, run_seed=11)
    obs, _ = pool.reset()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        valid = obs["invalid_action_mask"].reshape(8, 20, 15) == 0
        noise = rng.random(valid.shape) * valid
        obs = pool.step(noise.argmax(-1)).obs
    return 8 * steps / (time.perf_counter() - t0)


def policy_figures(decisions: int, device: str = "cpu") -> dict[str, float]:
    """Decision latency of PPO_GNN+TGN and of the same-width MLP reference, one thread."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    obs = graph_20()
    cfg = PolicyConfig()
    gnn = PPO_GNN(use_tgn=True, config=cfg).to(device)
    mlp = MLPReference(config=cfg).to(device)
    warmup = min(30, decisions)
    g50, g99 = latency_ms(gnn, obs, decisions, warmup)
    m50, m99 = latency_ms(mlp, obs, decisions, warmup)
    return {"decision_p50_ms": g50, "decision_p99_ms": g99, "mlp_decision_p50_ms": m50,
            "mlp_decision_p99_ms": m99}


def train_figures(updates: int, num_steps: int, env_pool: str = "batched",
                  device: str = "cpu", learner_processes: int = 1) -> dict[str, float]:
    """Training env-steps/s of PPO_GNN+TGN and of the MLP reference (same width, same env
    pool, one torch thread)."""
    return {
        "gnn_env_steps_per_s": train_sps(PPO_GNN, updates, 1, env_pool, num_steps, device,
                                         learner_processes),
        "mlp_env_steps_per_s": train_sps(MLPReference, updates, 1, env_pool, num_steps,
                                         device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=500)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument("--learner-processes", type=int, default=1,
                        help="processes sharing each PPO update (TrainConfig.learner_processes)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    obs = graph_20()
    cfg = PolicyConfig()
    gnn = PPO_GNN(use_tgn=True, config=cfg)
    mlp = MLPReference(config=cfg)
    g50, g99 = latency_ms(gnn, obs, args.decisions)
    m50, m99 = latency_ms(mlp, obs, args.decisions)
    print("decision latency, 20 services / 31 edges, 1 thread (ms):")
    print(f"  PPO_GNN+TGN   p50 {g50:6.2f}  p99 {g99:6.2f}   (goal p50 <= 1, p99 <= 5)")
    print(f"  MLP reference p50 {m50:6.2f}  p99 {m99:6.2f}   ratio p50 {g50 / m50:.1f}x")

    print(f"training throughput, 8 envs x 120 steps per update, torch {args.threads} "
          "thread(s) (env-steps/s):")
    for pool in ("single", "batched"):
        e = env_sps(env_pool=pool)
        g = train_sps(PPO_GNN, args.updates, args.threads, pool,
                      learner_processes=args.learner_processes)
        m = train_sps(MLPReference, args.updates, args.threads, pool)
        print(f" env_pool={pool}:")
        print(f"  env alone (random valid moves) {e:8.0f}   (ceiling for these envs)")
        print(f"  PPO_GNN+TGN                    {g:8.0f}   (goal >= 1500, >= 0.4x MLP)")
        print(f"  MLP reference                  {m:8.0f}   ratio {g / m:.2f}x")


if __name__ == "__main__":
    main()

"""The reward, as a documented formula.

    r_t = -( w_slo  * 1[p95_t > SLO]
           + w_over * min(p95_t / SLO - 1, 2)^+
           + w_err  * err_t
           + w_cost * cost_t / cost_min )

p95_t: end-to-end p95 at the entry over step t (ms); SLO: the app's ``slo_p95_ms``;
err_t: share of entry requests that failed (0..1); cost_t: sum over active services of
pods x CPU request (cores), i.e. what the cluster reserves; cost_min: the same with every
service at ``min_replicas`` (so the cost term is 1.0 at the smallest footprint).

``goal_reward="latency"`` weighs violations more, ``"cost"`` weighs the footprint more.

The dial (`gnnrl.contracts.observation`, 0 = cheapest, 1 = safest) scales the cost weight
geometrically: ``w_cost * dial_span ** (1 - 2 * dial)``, so the middle (0.5) is the
preset's weight, 0 weighs cost ``dial_span`` times more and 1 ``dial_span`` times less.
Training draws a dial per episode and shows it to the policy (a preference-conditioned
policy: one model spans the trade-off, as in Abels et al., "Dynamic Weights in
Multi-Objective Deep Reinforcement Learning", ICML 2019).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gnnrl.config import ConfigError, JsonConfig


@dataclasses.dataclass
class RewardConfig(JsonConfig):
    w_slo: float = 1.0
    w_over: float = 0.5
    w_err: float = 10.0
    w_cost: float = 0.1
    dial_span: float = 4.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not v >= 0:
                raise ConfigError(f"{f.name}: must be >= 0, got {v}")
        if not self.dial_span >= 1.0:
            raise ConfigError(f"dial_span: must be >= 1, got {self.dial_span}")

    def cost_scale(self, dial: float | np.ndarray) -> float | np.ndarray:
        """The factor the dial puts on ``w_cost``: ``dial_span ** (1 - 2 dial)`` (a float for
        a float dial, an array for an array of them)."""
        return self.dial_span ** (1.0 - 2.0 * dial)

    @classmethod
    def preset(cls, goal: str) -> RewardConfig:
        if goal == "latency":
            return cls(w_slo=1.0, w_over=0.5, w_err=10.0, w_cost=0.1)
        if goal == "cost":
            return cls(w_slo=0.5, w_over=0.25, w_err=5.0, w_cost=0.25)
        raise ConfigError(f"goal_reward: must be 'latency' or 'cost', got {goal!r}")


def reward(cfg: RewardConfig, p95_ms: np.ndarray, slo_ms: float, err: np.ndarray,
           cost_cores: np.ndarray, cost_min_cores: float | np.ndarray,
           cost_scale: float | np.ndarray = 1.0) -> np.ndarray:
    """Vectorised reward. Shapes: (N,) -> (N,) float; cost_min_cores and cost_scale (the
    dial's factor, `RewardConfig.cost_scale`) scalar or (N,)."""
    ratio = p95_ms / slo_ms
    violated = (ratio > 1.0).astype(float)
    over = np.clip(ratio - 1.0, 0.0, 2.0)
    return -(cfg.w_slo * violated + cfg.w_over * over + cfg.w_err * err
             + cfg.w_cost * cost_scale * cost_cores / np.maximum(cost_min_cores, 1e-9))


def reward_one(cfg: RewardConfig, p95_ms: float, slo_ms: float, err: float, cost_cores: float,
               cost_min_cores: float, cost_scale: float = 1.0) -> float:
    """`reward` for one copy on Python floats (the same operations, so the same value)."""
    ratio = p95_ms / slo_ms
    violated = 1.0 if ratio > 1.0 else 0.0
    over = min(max(ratio - 1.0, 0.0), 2.0)
    return -(cfg.w_slo * violated + cfg.w_over * over + cfg.w_err * err
             + cfg.w_cost * cost_scale * cost_cores / max(cost_min_cores, 1e-9))

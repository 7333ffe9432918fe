"""A small, deterministic evaluation used during training (and by the shipped-model check).

Runs a `Policy` (``name``, ``reset(env)``, ``act(obs, info)``) for one episode per
scenario, with *validation* reset seeds from 5000 up, and reports the numbers the product
is judged on: SLO violations and replica-hours. Training episodes use seeds below 1000 and
the evaluation suite seeds from 1000 (`gnnrl.evaluation.scenarios.EVAL_SEED_BASE`, a
handful per suite), so the trainer's choice of its ``best/`` policy never looks at an
evaluation episode. The full comparison
against every baseline lives in ``gnnrl.evaluation``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gnnrl.contracts.seeds import VALIDATION_SEED_BASE


def run_episode(policy: Any, env: Any, seed: int) -> dict[str, float]:
    """One episode; returns return, SLO-violation rate, replica-hours, core-hours, errors.

    replica_hours = sum over steps of (pods of active services) x interval / 3600;
    core_hours likewise with pods x CPU request (``info["cost"]``, cores).
    """
    obs, info = env.reset(seed=seed)
    policy.reset(env)
    interval_h = float(env.unwrapped.sim_config.interval_s) / 3600.0
    total, steps, violated, rep_h, core_h, err = 0.0, 0, 0, 0.0, 0.0, 0.0
    done = False
    while not done:
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        done = bool(terminated or truncated)
        total += float(reward)
        steps += 1
        violated += int(info["slo_violated"])
        rep_h += float(np.sum(info["replicas"])) * interval_h
        core_h += float(info["cost"]) * interval_h
        err += float(info["error_rate"])
    return {"return": total, "slo_violation_rate": violated / max(steps, 1),
            "replica_hours": rep_h, "core_hours": core_h, "error_rate": err / max(steps, 1)}


def evaluate(policy: Any, make_env: Callable[[Any], Any], scenarios: Sequence[Any],
             seed_base: int = VALIDATION_SEED_BASE) -> dict[str, float]:
    """Mean of `run_episode` over ``scenarios`` (env ``make_env(scenario)``, seed 5000+i)."""
    rows = [run_episode(policy, make_env(sc), seed_base + i) for i, sc in enumerate(scenarios)]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

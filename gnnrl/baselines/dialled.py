"""A rule whose knob follows the operator's dial: the teacher of a preference-conditioned
policy.

The learned policy takes a dial in [0, 1] (0 = cheapest, 1 = safest; the observation's
``dial`` column, `gnnrl.contracts.observation`). To warm-start it by imitation, the teacher
must answer the same dial, so this wrapper builds, at each episode's start, the rule at
the knob the env's dial asks for: a CPU-utilisation target of

    target(dial) = cheap + (safe - cheap) x dial        (90 % -> 50 % by default)

which puts dial 0.5 at 70 %, the HPA default and the rules' default operating point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gnnrl.baselines.base import reset_policy

#: the rule's CPU target (percent of the request) at dial 0 (cheapest) and 1 (safest)
CHEAP_TARGET_PCT = 90
SAFE_TARGET_PCT = 50


def target_pct(dial: float, cheap: int = CHEAP_TARGET_PCT, safe: int = SAFE_TARGET_PCT) -> int:
    """The knob (percent) a dial asks for, rounded to whole percent."""
    return round(cheap + (safe - cheap) * float(dial))


class DialledRule:
    """`make(target_pct)` rebuilt at every reset for the env's dial (``env.unwrapped.dial``).

    Args:
        base: the rule's spec name (``headroom``, ``hpa``), used for the row label.
        make: builds the rule at a CPU target in percent.
    """

    def __init__(self, base: str, make: Callable[[int], Any]) -> None:
        self.name = f"{base}@dial"
        self._make = make
        self.rule: Any = None

    def reset(self, env: Any, history_rps: Any = None) -> None:
        dial = float(getattr(env.unwrapped, "dial", 0.5))
        self.rule = self._make(target_pct(dial))
        reset_policy(self.rule, env, history_rps)

    def act(self, obs: dict, info: dict) -> np.ndarray:
        if self.rule is None:
            raise RuntimeError(f"{self.name}: call reset(env) first")
        return self.rule.act(obs, info)

"""A rule whose knob follows the operator's dial: the teacher of a preference-conditioned
policy.

The learned policy takes a dial in [0, 1] (0 = cheapest, 1 = safest; the observation's
``dial`` column, `gnnrl.contracts.observation`). To warm-start it by imitation, the teacher
must answer the same dial, so this wrapper builds, at each episode's start, the rule at
the knob the env's dial asks for: a CPU-utilisation target of

    target(dial) = cheap + (safe - cheap) x dial        (90 % -> 50 % by default)

which puts dial 0.5 at 70 %, the HPA default and the rules' default operating point.
The clairvoyant oracle (`gnnrl.baselines.oracle`) has no CPU target but an SLO margin (the
share of the SLO its calibrated utilisation may use): 0.95 at dial 0 down to 0.6 at 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gnnrl.baselines.base import reset_policy

#: the rule's CPU target (percent of the request) at dial 0 (cheapest) and 1 (safest)
CHEAP_TARGET_PCT = 90
SAFE_TARGET_PCT = 50
#: the oracle's SLO margin at dial 0 and 1
CHEAP_SLO_MARGIN = 0.95
SAFE_SLO_MARGIN = 0.6


def target_pct(dial: float, cheap: int = CHEAP_TARGET_PCT, safe: int = SAFE_TARGET_PCT) -> int:
    """The knob (percent) a dial asks for, rounded to whole percent."""
    return round(cheap + (safe - cheap) * float(dial))


def slo_margin(dial: float) -> float:
    """The oracle's SLO margin a dial asks for."""
    return CHEAP_SLO_MARGIN + (SAFE_SLO_MARGIN - CHEAP_SLO_MARGIN) * float(dial)


class DialledRule:
    """`make(dial)` rebuilt at every reset for the env's dial (``env.unwrapped.dial``).

    Args:
        base: the rule's spec name (``headroom``, ``hpa``, ``oracle``), for the row label.
        make: builds the rule for a dial in [0, 1] (e.g. at ``target_pct(dial)``).
    """

    def __init__(self, base: str, make: Callable[[float], Any]) -> None:
        self.name = f"{base}@dial"
        self._make = make
        self.rule: Any = None

    def reset(self, env: Any, history_rps: Any = None) -> None:
        dial = float(getattr(env.unwrapped, "dial", 0.5))
        self.rule = self._make(dial)
        reset_policy(self.rule, env, history_rps)

    def act(self, obs: dict, info: dict) -> np.ndarray:
        if self.rule is None:
            raise RuntimeError(f"{self.name}: call reset(env) first")
        return self.rule.act(obs, info)

"""The operator's dial in a serving observation: one model, a chosen cost/SLO trade-off.

A preference-conditioned model reads the dial (0 = cheapest, 1 = safest) from
``global_feats[DIAL_INDEX]`` (`gnnrl.contracts.observation`); whoever serves the model
(the evaluation adapter `GNNRLPolicy`, the in-cluster scaler) writes its setting there just
before inference, into a copy: the caller's observation may be shared (the env keeps its
own, the scaler logs it) and is never changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gnnrl.contracts.observation import DIAL_INDEX, check_dial


class NoDialColumnError(ValueError):
    """The observation has no dial column (an older schema's globals)."""


def with_dial(obs: Mapping[str, Any], dial: float) -> dict[str, Any]:
    """A shallow copy of ``obs`` whose ``global_feats`` is a copy with the dial column set.

    Shapes:
        obs["global_feats"]: (G,) or (B, G) float; the copy has the same shape and dtype,
        with ``[..., DIAL_INDEX] = dial``.

    Raises:
        ValueError: ``dial`` outside [0, 1] or not a number (`check_dial`).
        NoDialColumnError: fewer than ``DIAL_INDEX + 1`` globals (a schema-v1 observation,
            which no model of this version reads either).
    """
    value = check_dial(dial)
    out = dict(obs)
    feats = np.array(obs["global_feats"], copy=True)
    if feats.shape[-1] <= DIAL_INDEX:
        raise NoDialColumnError(
            f"dial {value:g}: the observation has {feats.shape[-1]} globals and no dial "
            f"column (index {DIAL_INDEX}, observation schema v2)")
    feats[..., DIAL_INDEX] = value
    out["global_feats"] = feats
    return out


def parse_dial(text: str) -> float:
    """``"0.25"`` -> 0.25 (a spec's or a flag's dial).

    Raises:
        ValueError: not a number, or outside [0, 1] (`check_dial`'s message).
    """
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"dial must be a number in [0, 1], got {text!r}") from None
    return check_dial(value)  # NaN and inf fail its range check too


def dial_label(dial: float) -> str:
    """The dial as it appears in row names: ``0.25`` -> "0.25", ``1.0`` -> "1", ``0`` ->
    "0" (fixed-point, never an exponent, so ``FAMILY@KNOB`` parses back)."""
    text = f"{check_dial(dial):.6f}".rstrip("0").rstrip(".")
    return text or "0"

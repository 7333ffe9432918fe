"""Fallback state machine: model mode <-> HPA-rule mode, with hysteresis (S1-S5, S20).

After `fallback_after_failures` consecutive unhealthy ticks the scaler enters rule mode with
the last failure's reason; it returns to the model only after `recover_after_healthy`
consecutive healthy ticks (a healthy tick: a model is loaded, the observation is finite and
in range, and the model's output, evaluated but not used, is in the action space). The
shape follows KEDA's fallback (`fallback.failureThreshold`,
https://keda.sh/docs/2.14/reference/scaledobject-spec/#fallback) with a recovery count added
so that a flapping model cannot flap the scaler.
"""

from __future__ import annotations

import dataclasses

#: Reasons exported as `gnnrl_scaler_fallback_active{reason=...}`.
REASONS = (
    "model_missing",       # no model configured / registry unreachable (S2)
    "model_load",          # corrupt file, hash mismatch, weights_only refusal (S1)
    "schema",              # observation schema differs (S3)
    "observation_invalid", # NaN/inf or out-of-training-range features (S4)
    "model_output",        # NaN or out-of-space output, or the model raised (S5)
)


@dataclasses.dataclass(frozen=True)
class Transition:
    """A change of mode: `entered` rule mode (with `reason`) or `left` it."""

    kind: str
    reason: str


@dataclasses.dataclass
class FallbackState:
    """Counts consecutive failures / healthy ticks and decides the mode.

    Attributes:
        mode: "model" or "rule". Starts in "rule" until a model proves healthy, unless
            `start_in_model` is set (a model that loaded fine at start).
        reason: why rule mode is active (one of REASONS), None in model mode.
    """

    failures_to_fallback: int
    healthy_to_recover: int
    mode: str = "rule"
    reason: str | None = "model_missing"
    failures: int = 0
    healthy: int = 0

    def record(self, healthy: bool, reason: str | None = None) -> Transition | None:
        """Record one tick's model health; returns the transition it caused, if any."""
        if not healthy and reason not in REASONS:
            raise ValueError(f"unknown fallback reason {reason!r}")
        if self.mode == "model":
            if healthy:
                self.failures = 0
                return None
            self.failures += 1
            if self.failures >= self.failures_to_fallback:
                self.mode, self.reason, self.healthy = "rule", reason, 0
                return Transition("entered", str(reason))
            return None
        if not healthy:
            self.healthy = 0
            self.reason = reason
            return None
        self.healthy += 1
        if self.healthy >= self.healthy_to_recover:
            previous = str(self.reason)
            self.mode, self.reason, self.failures = "model", None, 0
            return Transition("left", previous)
        return None

    def force(self, reason: str) -> Transition | None:
        """Enter rule mode at once (a model that cannot be loaded at all)."""
        if reason not in REASONS:
            raise ValueError(f"unknown fallback reason {reason!r}")
        self.healthy = 0
        if self.mode == "rule":
            self.reason = reason
            return None
        self.mode, self.reason = "rule", reason
        return Transition("entered", reason)

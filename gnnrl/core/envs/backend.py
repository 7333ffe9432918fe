"""What `OnlineBoutique` needs of the world it scales: the `Backend` interface.

The env is the same Gymnasium env whether it runs on the simulator or on a real cluster;
only where the numbers come from and where the replica counts go differ. Both sides sit
behind this small interface, picked once when the env is built:

* `gnnrl.core.envs.sim_backend.SimBackend`: the simulator (`gnnrl.sim.BatchedSim`), with
  scenarios, traces, topology events and cluster timing;
* `gnnrl.core.envs.cluster_backend.ClusterBackend`: a real namespace through
  `gnnrl.core.envs.k8s_backend.K8sBackend` (Kiali or Prometheus + the Kubernetes API).

One control interval ``t`` (1, 2, ...) is, in this order::

    info_entries = backend.apply_scale(action, t)   # the action's replica counts, applied
    backend.advance(t)                              # the interval passes
    obs, info = backend.observe_state(t)            # what the cluster shows at its end

and an episode starts with ``backend.reset(rng)`` then ``backend.observe_state(0)``. The
env keeps what both share: the action checks, the step counter, the reward, truncation.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gnnrl.core.envs.obs_extras import ObservationContext


@dataclasses.dataclass
class EpisodeSettings:
    """The env's settings a backend reads when it builds an observation.

    Attributes:
        slo_p95_ms: the app's end-to-end p95 objective, ms.
        interval_s: the control interval, s.
        dial_setting: the dial as given to the env: a number in [0, 1] or ``"random"``.
        tod_setting: the episode's starting time of day as given (seconds after 00:00 UTC)
            or ``"random"``.
        dial: this episode's dial (`DEFAULT_DIAL` until a ``"random"`` one is drawn).
        tod0_s: this episode's starting time of day, s (simulated episodes only: a real
            cluster's observation carries its own clock).
    """

    slo_p95_ms: float
    interval_s: float
    dial_setting: float | str
    tod_setting: float | str
    dial: float
    tod0_s: float

    def draw(self, rng: np.random.Generator) -> None:
        """Draw this episode's dial, then its time of day, where they are ``"random"``.

        No draw at all for fixed settings, so they leave the episode's other draws as
        they are."""
        if self.dial_setting == "random":
            self.dial = float(rng.uniform(0.0, 1.0))
        if self.tod_setting == "random":
            self.tod0_s = float(rng.uniform(0.0, 86_400.0))

    def context(self, time_of_day_s: float) -> ObservationContext:
        """The observation's context at `time_of_day_s` (seconds after 00:00 UTC)."""
        return ObservationContext(self.slo_p95_ms, self.interval_s, self.dial, time_of_day_s)


@runtime_checkable
class Backend(Protocol):
    """The simulator or a real cluster, as `OnlineBoutique` drives it.

    Attributes:
        cost_min: cores requested with every service at its ``min_replicas`` (the
            reward's ``cost_min``, `gnnrl.core.envs.reward`); valid after `reset`.
    """

    cost_min: float

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode at step 0 (the env has reset its graph space and history).

        Every random draw comes from `rng` (the env's ``np_random``)."""
        ...

    def apply_scale(self, action: np.ndarray, t: int) -> dict[str, Any]:
        """Apply the action of step `t`: one move per slot, (max_nodes,) int64.

        Moves the current observation's mask marks invalid (and out-of-range ones) are
        executed as "nothing". Returns the info entries of the scaling:
        ``invalid_actions`` (how many moves were replaced), and what the backend adds
        (a real cluster: ``scale_outcomes``).
        """
        ...

    def advance(self, t: int) -> None:
        """Let the control interval of step `t` pass."""
        ...

    def observe_state(self, t: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The observation (the contract of `gnnrl.core.envs.observation`, no batch axis)
        and the info of step `t`, with ``invalid_actions`` 0 and no ``reward`` yet. The
        info holds ``e2e_p95_ms``, ``error_rate`` and ``cost`` (cores), the reward's
        inputs."""
        ...

    def render(self) -> str | None:
        """A text picture of the last step, or None when there is none to show."""
        ...

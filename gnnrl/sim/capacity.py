"""What load an application can carry: the default peak a scenario is scaled to."""

from __future__ import annotations

import numpy as np

from gnnrl.sim.core import BatchedSim
from gnnrl.sim.spec import AppSpec


def default_peak_rps(app: AppSpec) -> float:
    """A peak load every policy can in principle serve: 25 % of the entry load at which
    the bottleneck service, at its max replicas, is fully busy (225 req/s for the
    built-in OnlineBoutique, whose bottleneck is the frontend: 15 pods x 60 req/s).

    Returns: req/s at the application's entry.
    """
    sim = BatchedSim(app, 1)
    unit = sim.propagate(np.ones(1))[0]
    used = unit > 0
    limit = np.min(sim.max_replicas[used] * sim.cap[used] / unit[used])
    return float(round(0.25 * limit))
